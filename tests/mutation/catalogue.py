"""The named mutations: one line of a guard broken on purpose, and the tests of its area.

``alternatives`` holds (original, mutated) pairs of exact text; the first original found
exactly once in the file is replaced (a guard that is being rewritten can carry its old and
its new wording; when none is found the mutation is reported stale). An original may span
two lines where one line alone is not unique.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str
    alternatives: tuple[tuple[str, str], ...]
    tests: tuple[str, ...]
    breaks: str  # the promise the mutant breaks, in words


def one(
    name: str, path: str, original: str, mutated: str, tests: tuple[str, ...], breaks: str
) -> Mutation:
    return Mutation(name, path, ((original, mutated),), tests, breaks)


TRADING = (
    "tests/trading/test_order_claims.py",
    "tests/trading/test_trading.py",
    "tests/trading/test_order_guards.py",
)
LIMITS = ("tests/trading/test_order_limits.py", "tests/trading/test_order_guards.py")
REDACTION = (
    "tests/security/test_redaction_patterns.py",
    "tests/security/test_secrets_everywhere.py",
)
UNTRUSTED = ("tests/security/test_untrusted_text.py",)
WEBHOOKS = ("tests/webhooks/test_webhooks.py", "tests/webhooks/test_webhook_deliveries.py")
DUPLICATES = ("tests/webhooks/test_webhook_duplicates.py", "tests/webhooks/test_webhooks.py")
LOGIN = ("tests/web_access/test_sessions.py", "tests/web_access/test_web_auth.py")
CURSORS = ("tests/security/test_cursor_forgery.py", "tests/positions/test_position_pages.py")
FX = (
    "tests/fx/test_fx_rates.py",
    "tests/positions/test_portfolio_values.py",
    "tests/fx/test_rate_conversion.py",
)
GAINS = ("tests/positions/test_portfolio_values.py",)
CACHE = ("tests/positions/test_position_service.py", "tests/storage/test_crash_safety.py")
MIGRATION = ("tests/migration/test_holdings_comparison.py", "tests/migration/test_migration.py")
ACTIVITIES = ("tests/activities/test_activities.py",)
PLAID_KEYS = ("tests/webhooks/test_webhook_keys.py",)
DEVICES = ("tests/web_access/test_login_devices.py",)
COOLDOWN = ("tests/positions/test_refresh_cooldown.py",)
HOSTILE = ("tests/security/test_hostile_bodies.py", "tests/security/test_hostile_cursors.py")

MUTATIONS: tuple[Mutation, ...] = (
    # --- orders: confirmation, the claim, limits, the worst-case value ----------------------
    one(
        "order-claim-accepts-rejected",
        "services/trading/audit.py",
        'TradePreview.status == "confirmed",',
        'TradePreview.status.in_(("confirmed", "rejected")),',
        TRADING,
        "a preview rejected after it was loaded can still be claimed and placed",
    ),
    one(
        "order-claim-ignores-expiry",
        "services/trading/audit.py",
        "TradePreview.expires_at > now,\n                    )",
        "TradePreview.expires_at.is_not(None),\n                    )",
        TRADING,
        "a preview that expired after it was loaded can still be claimed",
    ),
    one(
        "order-execute-unconfirmed",
        "services/trading/service.py",
        'recorded = self._unusable(row, allow=("confirmed",))\n        if recorded',
        'recorded = self._unusable(row, allow=("confirmed", "previewed"))\n        if recorded',
        TRADING,
        "execute goes on with a preview nobody confirmed (up to the claim)",
    ),
    one(
        "order-execute-while-trading-disabled",
        "services/trading/service.py",
        '"""Place a confirmed preview, at most once; a repeat returns the recorded order."""\n'
        "        if not self.trading_enabled:",
        '"""Place a confirmed preview, at most once; a repeat returns the recorded order."""\n'
        "        if False:",
        TRADING,
        "an order is placed with TRADING_ENABLED off",
    ),
    one(
        "order-changed-preview-accepted",
        "services/trading/unusable.py",
        'if row_hash(user_email, row) != row["order_hash"]:',
        "if False:",
        TRADING,
        "a preview edited in the database after it was made is placed as edited",
    ),
    one(
        "limit-daily-cap-off",
        "services/trading/limits.py",
        "if total > self.max_daily_value + 0.005:",
        "if False:",
        LIMITS,
        "orders split under MAX_ORDER_VALUE pass MAX_DAILY_ORDER_VALUE",
    ),
    one(
        "limit-daily-cap-forgets-earlier-orders",
        "services/trading/limits.py",
        "total = placed + value_base",
        "total = value_base",
        LIMITS,
        "the day's earlier orders do not count toward the daily cap",
    ),
    one(
        "limit-units-sold-twice",
        "services/trading/limits.py",
        "available = held - open_sells - sold",
        "available = held - open_sells",
        LIMITS,
        "the same units can be sold twice before the holdings show the first sale",
    ),
    one(
        "limit-open-sells-ignored",
        "services/trading/limits.py",
        "available = held - open_sells - sold",
        "available = held - sold",
        LIMITS,
        "units in open sell orders at the broker are sold again",
    ),
    one(
        "value-sell-at-its-limit",
        "services/trading/valuation.py",
        "if limit is not None and (market is None or limit >= market):",
        "if limit is not None:",
        LIMITS,
        "a SELL with a token limit is valued at the limit, far below what it sells",
    ),
    one(
        "value-market-buy-without-buffer",
        "services/trading/valuation.py",
        "price = market * (1 + rules.market_buffer_percent / 100)",
        "price = market",
        LIMITS,
        "a Market BUY is valued at the last price, not its worst case",
    ),
    one(
        "value-lowest-known-price",
        "services/trading/valuation.py",
        "price, source = max(priced)",
        "price, source = min(priced)",
        LIMITS,
        "an order is valued at the lowest of the known prices",
    ),
    one(
        "value-far-limit-unchecked",
        "services/trading/valuation.py",
        "if discount is not None and discount >= rules.far_limit_percent and not allow_far_limit:",
        "if False:",
        LIMITS,
        "a SELL limit far below the market goes through without the flag",
    ),
    # --- secrets: redaction -------------------------------------------------------------------
    one(
        "redact-plaid-token-pattern-off",
        "core/redaction.py",
        "text = _PLAID_TOKEN.sub(MASK, text)",
        "text = text",
        REDACTION,
        "an unregistered access-/public- token reaches a log line or an error",
    ),
    one(
        "redact-name-value-pattern-off",
        "core/redaction.py",
        'text = _KEY_VALUE.sub(lambda m: m.group("key") + MASK, text)',
        "text = text",
        REDACTION,
        "userSecret=..., secret: ... and the like pass unmasked unless registered",
    ),
    one(
        "redact-url-query-kept",
        "core/redaction.py",
        "(key, MASK if key.lower() in SENSITIVE_KEYS else value)",
        "(key, value)",
        REDACTION,
        "a URL's userSecret query field is kept by redact_url",
    ),
    Mutation(
        "redact-traceback-unmasked",
        "core/redaction.py",
        (
            (
                "record.exc_text = redact_text(_traceback_text(record.exc_info))",
                "record.exc_text = _traceback_text(record.exc_info)",
            ),
            (
                "redact_text(logging.Formatter().formatException(record.exc_info))",
                "logging.Formatter().formatException(record.exc_info)",
            ),
        ),
        REDACTION,
        "a traceback in a log line carries the credential its exception quoted",
    ),
    # --- provider text made inert ---------------------------------------------------------------
    one(
        "untrusted-fast-path-skips-markup",
        "core/untrusted.py",
        "if len(text) <= limit and _NEEDS_WORK.search(text) is None:",
        "if len(text) <= limit:",
        UNTRUSTED,
        "a short provider name keeps its line breaks, tags and bidi characters",
    ),
    one(
        "untrusted-decoded-controls-kept",
        "core/untrusted.py",
        '"&#x202E;").\n    text = _INVISIBLE.sub("", _CONTROL.sub(" ", text))',
        '"&#x202E;").\n    text = text',
        UNTRUSTED,
        "an encoded line break (&#10;) or bidi override survives decoding",
    ),
    one(
        "untrusted-tags-kept",
        "core/untrusted.py",
        'text = _TAG.sub(" ", text)',
        "text = text",
        UNTRUSTED,
        "HTML tag names stay in provider text",
    ),
    one(
        "untrusted-unbounded",
        "core/untrusted.py",
        "return text[: max(limit - 1, 0)].rstrip() + ELLIPSIS",
        "return text",
        UNTRUSTED,
        "a huge provider value reaches a model uncut",
    ),
    # --- webhooks: verification and dedupe --------------------------------------------------------
    one(
        "webhook-plaid-any-age",
        "providers/plaid/webhooks.py",
        'raise WebhookRejected("the Plaid webhook is more than 5 minutes old")',
        "pass",
        WEBHOOKS,
        "a replayed Plaid delivery of any age is accepted",
    ),
    one(
        "webhook-plaid-body-unchecked",
        "providers/plaid/webhooks.py",
        'raise WebhookRejected("the Plaid webhook body does not match its signature")',
        "pass",
        WEBHOOKS,
        "a Plaid body other than the one signed is accepted",
    ),
    one(
        "webhook-snaptrade-signature-unchecked",
        "providers/snaptrade/webhooks.py",
        'raise WebhookRejected("the SnapTrade webhook signature does not verify")',
        "pass",
        WEBHOOKS,
        "a forged SnapTrade delivery is accepted",
    ),
    one(
        "webhook-snaptrade-any-age",
        "providers/snaptrade/webhooks.py",
        'raise WebhookRejected("the SnapTrade webhook is more than 5 minutes old")',
        "pass",
        WEBHOOKS,
        "a replayed SnapTrade delivery of any age is accepted",
    ),
    one(
        "webhook-duplicate-reapplied",
        "services/webhooks/receiver.py",
        '        except Duplicate:\n            return {"status": "duplicate", "kind": kind}',
        "        except Duplicate:\n"
        '            return {"status": "duplicate", "kind": kind, "effect": effect.apply(sent_at)}',
        DUPLICATES,
        "a duplicate SnapTrade delivery runs its effect again while answering duplicate",
    ),
    one(
        "webhook-plaid-duplicate-reapplied",
        "services/webhooks/receiver.py",
        '                return {"status": "duplicate", "kind": kind}',
        '                return {"status": "duplicate", "kind": kind, '
        '"effect": plaid_effects(payload, self._effects).apply(sent_at)}',
        DUPLICATES,
        "a duplicate Plaid delivery runs its effect again while answering duplicate",
    ),
    one(
        "webhook-snaptrade-dedupe-by-raw-body",
        "services/webhooks/receiver.py",
        'payload.get("webhookId") or hashlib.sha256(canonical_json(payload).encode()).hexdigest()',
        'payload.get("webhookId") or hashlib.sha256(body).hexdigest()',
        WEBHOOKS,
        "a SnapTrade delivery without webhookId re-sent with other whitespace is applied again",
    ),
    one(
        "webhook-plaid-claims-after-lookup",
        "providers/plaid/webhooks.py",
        "    _check_claims(claimed, body, now)\n",
        "    pass\n",
        PLAID_KEYS,
        "a forged body or stale claims cost a Plaid key lookup before they are refused",
    ),
    # --- webhooks: Plaid verification keys ------------------------------------------------------
    one(
        "plaid-key-any-subject",
        "services/webhooks/plaid_keys.py",
        "if not self._knows_subject(payload):",
        "if False:",
        PLAID_KEYS,
        "an unknown kid about no Item or link of this hub is looked up at Plaid",
    ),
    one(
        "plaid-key-no-minute-budget",
        "services/webhooks/plaid_keys.py",
        "if self._lookups_last_minute(conn, now) > LOOKUPS_PER_MINUTE:",
        "if False:",
        PLAID_KEYS,
        "Plaid key lookups are not held to LOOKUPS_PER_MINUTE across processes",
    ),
    one(
        "plaid-key-failed-lookup-forgotten",
        "services/webhooks/plaid_keys.py",
        "& (PlaidWebhookKey.looked_up_at <= now - RETRY_FAILED_AFTER),",
        "& (PlaidWebhookKey.looked_up_at <= now),",
        PLAID_KEYS,
        "a kid Plaid did not know is looked up again at once, not after RETRY_FAILED_AFTER",
    ),
    one(
        "plaid-key-expired-accepted",
        "services/webhooks/plaid_keys.py",
        "if row.expired_at is not None and as_utc(row.expired_at) <= now:",
        "if False:",
        PLAID_KEYS,
        "a kept key past the expired_at Plaid gave it still verifies",
    ),
    one(
        "plaid-key-retryable-failure-kept",
        "services/webhooks/plaid_keys.py",
        'if getattr(exc, "retryable", False):',
        "if False:",
        PLAID_KEYS,
        "a lookup Plaid could not answer (timeout, 5xx, 429) blocks the kid as failed",
    ),
    one(
        "webhook-older-event-applied",
        "services/webhooks/apply.py",
        "if newer_applied(conn, provider, subject, family, sent_at):",
        "if False:",
        WEBHOOKS,
        "a connection event delivered late moves the state backwards",
    ),
    # --- logins, sessions, CSRF, READ_ONLY -------------------------------------------------------
    one(
        "brake-never-engages",
        "services/web_access/brake.py",
        "if len(times) <= limit:",
        "if True:",
        LOGIN,
        "password guessing is never slowed down",
    ),
    one(
        "session-idle-forever",
        "services/web_access/sessions.py",
        "or now - last_seen_at >= self.rules.idle",
        "or False",
        LOGIN,
        "an idle session never ends",
    ),
    one(
        "session-no-absolute-lifetime",
        "services/web_access/sessions.py",
        "or now - created_at >= self.rules.lifetime",
        "or False",
        LOGIN,
        "a session kept in use never ends",
    ),
    one(
        "session-epoch-ignored",
        "services/web_access/sessions.py",
        "session_epoch != (user_epoch or 0)",
        "False",
        LOGIN,
        "a session from before a new password lives on",
    ),
    one(
        "device-cookie-signature-unchecked",
        "services/web_access/devices.py",
        "if not secrets.compare_digest(signature.encode(), self._signature(body).encode()):",
        "if False:",
        DEVICES,
        "a device cookie with any signature is taken as a known device",
    ),
    one(
        "csrf-token-unchecked",
        "routes/security.py",
        "raise CSRFError()",
        "pass",
        ("tests/web_access/test_web_auth.py",),
        "a state-changing form from another site is accepted",
    ),
    one(
        "read-only-offers-every-tool",
        "mcp_tools/registration.py",
        'if self._read_only and not offered_when_read_only(kwargs.get("annotations")):',
        "if False:",
        ("tests/trading/test_read_only_mode.py",),
        "READ_ONLY=true still offers the trading tools",
    ),
    # --- cursors ------------------------------------------------------------------------------
    Mutation(
        "cursor-negative-offset",
        "services/paging.py",
        (
            ("        or offset < 0\n", "        or False\n"),
            ("and 0 <= offset <= MAX_OFFSET", "and offset <= MAX_OFFSET"),
        ),
        CURSORS,
        "a forged cursor with a negative offset is used",
    ),
    one(
        "cursor-offset-unbounded",
        "services/paging.py",
        "and 0 <= offset <= MAX_OFFSET",
        "and 0 <= offset",
        ("tests/security/test_hostile_cursors.py",),
        "a forged cursor with an offset past MAX_OFFSET (2**63) is used",
    ),
    one(
        "json-depth-unlimited",
        "core/untrusted_json.py",
        "if _depth_exceeds(value, max_depth):",
        "if False:",
        HOSTILE,
        "JSON nested past MAX_DEPTH (but under the parser's recursion limit) is accepted",
    ),
    one(
        "cursor-any-generation",
        "services/paging.py",
        'if fields.get("g") != tag:',
        "if False:",
        CURSORS,
        "a cursor from an older cache generation repeats or skips rows",
    ),
    # --- values, currencies, gains ---------------------------------------------------------------
    one(
        "fx-cross-rate-inverted",
        "services/fx/convert.py",
        "return target.per_euro / source.per_euro,",
        "return source.per_euro / target.per_euro,",
        FX,
        "amounts are converted at the inverse rate",
    ),
    one(
        "fx-no-rate-counts-one-to-one",
        "services/fx/convert.py",
        "return None if rate is None else amount * rate[0]",
        "return amount if rate is None else amount * rate[0]",
        FX,
        "an amount in a currency without a rate is counted 1:1",
    ),
    one(
        "fx-old-rate-silent",
        "services/fx/convert.py",
        "if self.snapshot.on - rate_date > OLD_RATE:",
        "if False:",
        FX,
        "a rate weeks older than the positions is used without a warning",
    ),
    one(
        "gain-zero-basis-trusted",
        "services/positions/gains.py",
        'if basis == 0 and (position.get("market_value") or 0) != 0:',
        "if False:",
        GAINS,
        "a stand-in zero cost basis shows the whole value as gain",
    ),
    one(
        "gain-missing-basis-as-zero",
        "services/positions/gains.py",
        "        basis = known_basis(p)\n",
        '        basis = p.get("cost_basis") or 0.0\n',
        GAINS,
        "a missing cost basis is summed as zero cost",
    ),
    # --- the position cache -------------------------------------------------------------------
    one(
        "refresh-cooldown-never-applies",
        "services/positions/cooldown.py",
        "if cooldown <= timedelta(0) or fetched_at is None:",
        "if True:",
        COOLDOWN,
        "a requested refresh calls the provider again within REFRESH_COOLDOWN_SECONDS",
    ),
    one(
        "cache-replacement-not-atomic",
        "services/positions/store.py",
        "with self._engine.begin() as conn:\n            self._row_writer.delete_rows(",
        'with self._engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:'
        "\n            self._row_writer.delete_rows(",
        CACHE,
        "a failure between delete and insert leaves the cache empty",
    ),
    one(
        "cache-failed-source-rows-dropped",
        "services/positions/store.py",
        "condition.append(~or_(*keep))",
        "pass",
        (*CACHE, "tests/positions/test_source_refresh.py"),
        "a refresh with one failed source drops that source's rows",
    ),
    # --- migration --------------------------------------------------------------------------------
    one(
        "migration-quantities-ignored",
        "services/migration/comparison.py",
        'elif not _close(a["quantity"], b["quantity"], tolerance):',
        "elif False:",
        MIGRATION,
        "holdings parity passes with different quantities",
    ),
    one(
        "migration-gate-ignores-health",
        "services/migration/service.py",
        "if not rows or len(healthy) != len(rows):",
        "if not rows:",
        MIGRATION,
        "a Plaid Item is removed while its SnapTrade connection is broken",
    ),
    # --- activity sync ------------------------------------------------------------------------
    one(
        "activity-moved-id-not-cleared",
        "services/activities/store.py",
        "for chunk in _chunks(ids, ID_CHUNK):",
        "for chunk in _chunks([], ID_CHUNK):",
        ACTIVITIES,
        "an activity re-dated from before the window into it is stored twice",
    ),
    one(
        "activity-raw-answer-inserted",
        "services/activities/store.py",
        "[_row(user_id, source, a, now) for a in unique.values()],",
        "[_row(user_id, source, a, now) for a in activities],",
        ACTIVITIES,
        "an activity repeated in one answer is stored twice",
    ),
    one(
        "activity-empty-answer-wipes",
        "services/activities/store.py",
        "                if held:\n",
        "                if False:\n",
        ACTIVITIES,
        "an empty answer (an outage that says nothing) wipes the stored window",
    ),
    one(
        "activity-no-lookback",
        "services/activities/sync.py",
        "start = state.synced_through - timedelta(days=self.lookback_days)",
        "start = state.synced_through",
        ACTIVITIES,
        "a late correction inside the lookback window is never fetched",
    ),
)
