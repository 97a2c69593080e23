"""The positions answer shared by the MCP tool, the JSON route and the CLI.

Money is never summed across currencies: every total is per currency, because
converting would need an FX rate we do not have and would be a guess.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from core.errors import BrokerageHubError, InvalidInput
from core.normalized import PROVIDERS
from services.connections import ConnectionRegistry, ConnectionState
from services.overlaps import find_overlaps
from services.position_service import PositionService, PositionsResult

FORMATS = ("full", "summary", "by_account", "list")
TOP_HOLDINGS = 10


def validate_positions_request(format: str, refresh_provider: str | None) -> None:
    """Reject bad arguments before anything can call a provider."""
    if not isinstance(format, str) or format not in FORMATS:
        raise InvalidInput(
            f"unknown format {format!r}: allowed values are {', '.join(FORMATS)}", field="format"
        )
    if refresh_provider is not None and refresh_provider not in PROVIDERS:
        raise InvalidInput(
            f"unknown refresh_provider {refresh_provider!r}: allowed values are "
            f"{', '.join(PROVIDERS)} or null",
            field="refresh_provider",
        )


class PositionViews:
    """What ``get_positions`` answers, for the MCP tool, the JSON route, the CLI and the pages."""

    def __init__(self, positions: PositionService, connections: ConnectionRegistry) -> None:
        self.positions = positions
        self._connections = connections

    def answer(self, format: str = "full", refresh_provider: str | None = None) -> dict[str, Any]:
        """The positions in ``format``, with cache_info; ``refresh_provider`` is fetched first."""
        validate_positions_request(format, refresh_provider)
        service = self.positions
        refresh_error: str | None = None
        if refresh_provider is not None:
            try:
                service.refresh_provider_positions(refresh_provider)
            except ValueError as exc:
                refresh_error = str(exc)
            except BrokerageHubError as exc:
                refresh_error = exc.message
        # The refreshed provider is now fresh; the other is fetched only if its own cache expired.
        result = service.get_all_positions(use_cache=True)
        payload = render_positions(result, format, service.provider_priority)
        add_connection_states(payload["cache_info"], self._connections.list(service.user_email))
        if refresh_provider is not None:
            payload["refresh"] = {
                "provider": refresh_provider,
                "ok": refresh_error is None,
                "error": refresh_error,
            }
        return payload


def render_positions(
    result: PositionsResult, format: str, priority: tuple[str, ...] = ("snaptrade", "plaid")
) -> dict[str, Any]:
    overlaps, duplicates = find_overlaps(result.positions, priority)
    positions = [
        {**_json_position(p), "duplicate": (p["provider"], p["account_id"]) in duplicates}
        for p in result.positions
    ]
    # Every total counts an institution reachable through both providers once.
    counted = [p for p in positions if not p["duplicate"]]
    payload: dict[str, Any] = {"format": format}
    if format == "full":
        payload["positions"] = positions
        payload["totals"] = _totals(counted)
    elif format == "summary":
        payload["summary"] = _summary(counted)
    elif format == "by_account":
        payload["providers"] = _by_account(positions)
        payload["totals"] = _totals(counted)
    else:
        payload["positions"] = [
            {
                "ticker": p["ticker"] or p["name"],
                "quantity": p["quantity"],
                "value": p["market_value"],
                "currency": p["currency"],
                **({"duplicate": True} if p["duplicate"] else {}),
            }
            for p in positions
        ]
        payload["totals"] = _totals(counted)
    payload["position_count"] = len(counted)
    payload["overlaps"] = [overlap.to_dict() for overlap in overlaps]
    payload["cache_info"] = cache_info(result)
    return payload


def cache_info(result: PositionsResult) -> dict[str, Any]:
    info: dict[str, Any] = {}
    for provider, meta in result.cache_metadata.items():
        age = meta.get("cache_age_hours")
        info[provider] = {
            "age_hours": round(age, 1) if age is not None else None,
            "ttl_hours": meta.get("ttl_hours"),
            "from_cache": meta.get("from_cache"),
            "as_of": _iso(meta.get("fetched_at")),
            "next_refresh_after": _iso(meta.get("next_refresh_after")),
            "stale": bool(meta.get("stale")),
            "error": meta.get("error"),
            "warning": meta.get("warning"),
        }
    return info


def add_connection_states(info: dict[str, Any], states: list[ConnectionState]) -> None:
    """Each provider's connections as last seen; one that needs the person says so in attention."""
    for provider, entry in info.items():
        mine = [state for state in states if state.provider == provider]
        entry["connections"] = [
            {
                "id": state.external_id,
                "institution": state.institution_name,
                "type": state.connection_type,
                "status": state.status,
                "error": state.last_error,
            }
            for state in mine
        ]
        needs = [
            f"{state.institution_name or state.external_id}: {state.status}"
            + (f" ({state.last_error})" if state.last_error else "")
            for state in mine
            if state.needs_repair
        ]
        entry["attention"] = "; ".join(needs) or None


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _json_position(position: dict[str, Any]) -> dict[str, Any]:
    row = dict(position)
    del row["user_email"]
    for key in ("as_of", "fetched_at"):
        row[key] = _iso(row.get(key))
    return row


def _add(totals: dict[str, float], currency: str, value: float | None) -> None:
    totals[currency] = round(totals.get(currency, 0.0) + (value or 0.0), 2)


def _totals(positions: Iterable[dict[str, Any]]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for p in positions:
        _add(totals, p["currency"], p["market_value"])
    return dict(sorted(totals.items()))


def _grouped_totals(positions: list[dict[str, Any]], key: str) -> dict[str, dict[str, float]]:
    groups: dict[str, dict[str, float]] = defaultdict(dict)
    for p in positions:
        _add(groups[str(p[key])], p["currency"], p["market_value"])
    return {name: dict(sorted(t.items())) for name, t in sorted(groups.items())}


def _summary(positions: list[dict[str, Any]]) -> dict[str, Any]:
    holdings: dict[tuple[str, str], dict[str, Any]] = {}
    for p in positions:
        if p["security_type"] == "cash":
            continue
        key = (p["ticker"] or p["name"] or "?", p["currency"])
        entry = holdings.setdefault(
            key,
            {
                "ticker": key[0],
                "name": p["name"],
                "currency": key[1],
                "quantity": 0.0,
                "value": 0.0,
            },
        )
        entry["quantity"] = round(entry["quantity"] + p["quantity"], 6)
        entry["value"] = round(entry["value"] + (p["market_value"] or 0.0), 2)
    top = sorted(holdings.values(), key=lambda h: h["value"], reverse=True)[:TOP_HOLDINGS]
    return {
        "totals": _totals(positions),
        "by_provider": _grouped_totals(positions, "provider"),
        "by_institution": _grouped_totals(positions, "institution"),
        "by_security_type": _grouped_totals(positions, "security_type"),
        "by_currency": _totals(positions),
        "top_holdings": top,
        "account_count": len({(p["provider"], p["account_id"]) for p in positions}),
    }


def _by_account(positions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    tree: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = {}
    for p in positions:
        tree.setdefault(p["provider"], {}).setdefault(p["institution"], {}).setdefault(
            p["account_id"], []
        ).append(p)
    providers = []
    for provider, institutions in tree.items():
        institution_list = []
        for institution, accounts in sorted(institutions.items()):
            account_list = []
            for account_id, rows in accounts.items():
                first = rows[0]
                account_list.append(
                    {
                        "account_id": account_id,
                        "duplicate": first["duplicate"],
                        "name": first["account_name"],
                        "type": first["account_type"],
                        "mask": first["account_mask"],
                        "positions": [
                            {
                                k: r[k]
                                for k in (
                                    "ticker",
                                    "name",
                                    "security_type",
                                    "quantity",
                                    "price",
                                    "market_value",
                                    "cost_basis",
                                    "currency",
                                    "as_of",
                                )
                            }
                            for r in rows
                        ],
                        "totals": _totals(rows),
                    }
                )
            institution_rows = [r for rows in accounts.values() for r in rows]
            institution_list.append(
                {
                    "institution": institution,
                    "accounts": account_list,
                    "totals": _totals(institution_rows),
                }
            )
        provider_rows = [r for accts in institutions.values() for rs in accts.values() for r in rs]
        providers.append(
            {
                "provider": provider,
                "institutions": institution_list,
                "totals": _totals(provider_rows),
            }
        )
    return providers
