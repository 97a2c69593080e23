"""A simulated week with webhooks, against cache lifetimes alone.

The assistant reads ``reads_per_day`` times a day, evenly spread, for seven days. Each
Plaid Item's holdings change after the close (22:00) on weekdays, and each SnapTrade
account is synced once a day (06:00), weekends included. With webhooks, each change is
announced through the app's receiver (signature, dedupe, due marks), signed as the
providers sign: an ES256 JWT for Plaid (a key of this run stands in for Plaid's key
endpoint) and the HMAC of the consumer key for SnapTrade, both at the moment of the
change on the run's clock. Without them, only the lifetimes (72 h Plaid, 24 h SnapTrade) decide.

Reported per policy: holdings calls per Item and per account, and how far behind the
provider each answer was when the assistant read it (for each source: zero when the
rows were fetched after the provider's last change, else the time since that change).
"""

from __future__ import annotations

import hashlib
import json
import statistics
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.common import Clock, build, database, emulated

KID = "bench-week"
PLAID_CHANGE_HOUR = 22
SNAPTRADE_SYNC_HOUR = 6
HOLDINGS = "plaid /investments/holdings/get"
POSITIONS = "snaptrade /accounts/{accountId}/positions/all"


def run(kind: str, instance: Path, reads_per_day: int = 24) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for webhooks in (False, True):
        clock = Clock()
        folder = instance / f"webhook-week-{webhooks}"
        folder.mkdir(parents=True, exist_ok=True)
        with emulated(folder) as emulator, database(kind) as database_url:
            services = build(database_url, emulator, clock, folder)
            try:
                week = _Week(services, emulator.controls, clock, webhooks)
                results["webhooks" if webhooks else "lifetimes"] = week.run(reads_per_day)
            finally:
                services.close()
    return results


class _Signer:
    """Deliveries signed as Plaid and SnapTrade sign them, into the app's receiver."""

    def __init__(self, services: Any, clock: Clock) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec
        from jwt.algorithms import ECAlgorithm

        from sandbox import demo
        from services.webhooks.apply import EventEffects
        from services.webhooks.receiver import WebhookReceiver

        self._key = ec.generate_private_key(ec.SECP256R1())
        jwk = ECAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        jwk.update(kid=KID, alg="ES256", use="sig", expired_at=None)
        self._clock = clock
        self._consumer_key = demo.SNAPTRADE_CONSUMER_KEY
        self._user_id = demo.DEMO_USER_EMAIL
        self._client_id = demo.SNAPTRADE_CLIENT_ID
        self.receiver = WebhookReceiver(
            services.engine,
            clock,
            fetch_plaid_key=lambda kid: jwk,
            snaptrade_consumer_key=self._consumer_key,
            effects=EventEffects(
                services.engine, services.connections, services.freshness, lambda t, p: None
            ),
        )

    def plaid_holdings_update(self, item_id: str) -> None:
        import jwt

        body = json.dumps(
            {"webhook_type": "HOLDINGS", "webhook_code": "DEFAULT_UPDATE", "item_id": item_id}
        ).encode()
        claims = {
            "iat": int(self._clock.now.timestamp()),
            "request_body_sha256": hashlib.sha256(body).hexdigest(),
        }
        header = jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": KID})
        _applied(self.receiver.receive_plaid(body, header))

    def snaptrade_holdings_updated(self, account_id: str) -> None:
        from providers.snaptrade.webhooks import signature_of

        at = self._clock.now
        payload = {
            "webhookId": hashlib.sha256(f"{account_id}{at}".encode()).hexdigest()[:32],
            "clientId": self._client_id,
            "eventTimestamp": at.isoformat().replace("+00:00", "Z"),
            "userId": self._user_id,
            "eventType": "ACCOUNT_HOLDINGS_UPDATED",
            "accountId": account_id,
            "details": {"positions": True, "balances": True},
        }
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        _applied(self.receiver.receive_snaptrade(body, signature_of(payload, self._consumer_key)))


def _applied(answer: dict[str, Any]) -> None:
    if answer.get("status") != "applied":
        raise RuntimeError(f"a simulated webhook was not applied: {answer}")


class _Week:
    def __init__(self, services: Any, controls: Any, clock: Clock, webhooks: bool) -> None:
        from sandbox import data

        self.services, self.controls, self.clock = services, controls, clock
        self.signer = _Signer(services, clock) if webhooks else None
        self.items = dict(data.PLAID_ITEM_IDS)  # institution slug -> item id
        self.accounts = dict(data.SNAPTRADE_ACCOUNT_IDS)  # account key -> account id
        self.changed: dict[tuple[str, str], Any] = {}  # (provider, source) -> last change
        self.behind_hours: list[float] = []

    def run(self, reads_per_day: int) -> dict[str, Any]:
        self.services.position_views.answer("summary")  # the caches start filled
        self.controls.reset_counts()
        step = timedelta(days=1) / reads_per_day
        start = self.clock.now
        for read in range(reads_per_day * 7):
            before = self.clock.now
            self.clock.now = start + step * (read + 1)
            self._changes_between(before, self.clock.now)
            self.services.position_views.answer("summary")
            self._note_behind()
        costs = self.services.costs.report()
        return {
            "plaid_holdings_calls_per_item": self.controls.calls(HOLDINGS) / len(self.items),
            "snaptrade_position_calls_per_account": self.controls.calls(POSITIONS)
            / len(self.accounts),
            "behind_hours_mean": round(statistics.fmean(self.behind_hours), 2),
            "behind_hours_max": round(max(self.behind_hours), 2),
            "reads_up_to_date": round(
                sum(1 for h in self.behind_hours if h == 0) / len(self.behind_hours), 3
            ),
            "calls_avoided": {
                p: costs[p]["holdings_calls_avoided_last_30_days"] for p in ("plaid", "snaptrade")
            },
        }

    def _changes_between(self, before: Any, now: Any) -> None:
        """The providers' changes that fall in (before, now], in order, each announced at
        its moment when webhooks are on."""
        day = before.replace(hour=0, minute=0, second=0, microsecond=0)
        moments = []
        while day <= now:
            moments.append((day.replace(hour=SNAPTRADE_SYNC_HOUR), "snaptrade"))
            if day.weekday() < 5:  # markets close on weekdays only
                moments.append((day.replace(hour=PLAID_CHANGE_HOUR), "plaid"))
            day += timedelta(days=1)
        for moment, provider in sorted(moments):
            if before < moment <= now:
                self.clock.now = moment
                self._change(provider)
        self.clock.now = now

    def _change(self, provider: str) -> None:
        if provider == "plaid":
            for slug, item_id in self.items.items():
                self.changed[("plaid", slug)] = self.clock.now
                if self.signer is not None:
                    self.signer.plaid_holdings_update(item_id)
        else:
            for account_id in self.accounts.values():
                self.changed[("snaptrade", account_id)] = self.clock.now
                if self.signer is not None:
                    self.signer.snaptrade_holdings_updated(account_id)

    def _note_behind(self) -> None:
        """How far behind the provider each source's rows are, as this read served them."""
        user_id = self.services.positions.user_id()
        fetched = {
            (r.provider, r.source): r.fetched_at for r in self.services.freshness.read(user_id)
        }
        now = self.clock.now
        for source, change in self.changed.items():
            got = fetched.get(source)
            behind = 0.0 if got is not None and got >= change else (now - change).total_seconds()
            self.behind_hours.append(behind / 3600)


def markdown(per_kind: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| database | policy | Plaid holdings calls per Item | SnapTrade calls per account "
        "| answers up to date | behind the provider, mean / max (h) | calls avoided |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, results in per_kind.items():
        for policy, week in results.items():
            avoided = week["calls_avoided"]
            lines.append(
                f"| {kind} | {policy} | {week['plaid_holdings_calls_per_item']:g} "
                f"| {week['snaptrade_position_calls_per_account']:g} "
                f"| {week['reads_up_to_date']:.0%} "
                f"| {week['behind_hours_mean']:g} / {week['behind_hours_max']:g} "
                f"| Plaid {avoided['plaid']}, SnapTrade {avoided['snaptrade']} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        print(json.dumps(run("sqlite", Path(folder)), indent=2))
