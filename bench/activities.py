"""The activity history: ``get_activities`` and ``get_income``, alone and over stdio.

One real sync against the emulator fills the history (24 months of both providers'
accounts) and writes every source's sync state; the history is then padded to each size
with synthetic rows inserted straight into ``activities`` (:func:`set_history_size`),
under the accounts whose rows are counted (an institution reached through both providers
is counted under one), with each touched source's generation moved as a sync would. The
bench's clock never moves, so every read finds the history fresh and syncs nothing (the
emulator's call count proves it). Then, at each size:

* **the service alone**: ``services.activities.activities()`` (first page, default limit
  100), the same with ``type="dividend"``, and ``income("last_12_months")`` and
  ``income("last_year")``: ``repeat`` reads each after one warm-up read, p50 / p95 and
  the bytes of ``json.dumps`` of the answer;
* **over stdio**: the same four calls to our server (``python mcp_server.py``) and to a
  bare ``MCPServer`` answering, from a file, exactly what ours answered (checked, content
  and structured content). Our two tools run the service in a worker thread
  (``anyio.to_thread``), as the SDK runs a plain ``def`` tool, so the bare tools are
  plain ``def`` too. Calls are interleaved in rounds, the order rotated every round.
"""

from __future__ import annotations

import functools
import json
import os
import random
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio

from bench.common import Clock, build, database, emulated, p50_p95, stdio_env, time_calls
from bench.stdio import OURS, _session, _text, _wire_bytes

# (name, tool, arguments): the calls measured, alone and over stdio.
CALLS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("activities", "get_activities", {}),
    ("activities type=dividend", "get_activities", {"type": "dividend"}),
    ("income last_12_months", "get_income", {"period": "last_12_months"}),
    ("income last_year", "get_income", {"period": "last_year"}),
)
SYNTHETIC_PREFIX = "bench-"
HISTORY_DAYS = 730
# Synthetic types, weighted as a long-held portfolio's history tends to be.
SYNTHETIC_TYPES = ("dividend",) * 5 + ("interest",) * 2 + ("fee", "buy", "buy", "sell")
TICKERS = ("AAPL", "MSFT", "JNJ", "KO", "VOO", "VTI", "SCHD", "BND", "ASML", "SAP")

BARE_ACTIVITY_SERVER = """
import json
import sys
from typing import Any

from mcp.server.mcpserver import MCPServer

with open(sys.argv[1]) as handle:
    PAYLOADS = json.load(handle)
server = MCPServer(name="bare")


@server.tool()
def get_activities(type: str | None = None) -> dict[str, Any]:
    return PAYLOADS["get_activities:" + (type or "")]


@server.tool()
def get_income(period: str | None = None) -> dict[str, Any]:
    return PAYLOADS["get_income:" + (period or "")]


server.run("stdio")
"""


def _key(tool: str, arguments: dict[str, str]) -> str:
    return f"{tool}:{next(iter(arguments.values()), '')}"


# --- the history's size --------------------------------------------------------------------


def stored(services: Any) -> int:
    from sqlalchemy import func, select

    from services.models import ActivityRow

    with services.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(ActivityRow)).scalar_one())


def _user_id(services: Any) -> int:
    from services.storage.users import user_id_for

    user_id = user_id_for(services.engine, services.user_email)
    assert user_id is not None
    return int(user_id)


def _counted_accounts(services: Any) -> list[dict[str, Any]]:
    """The accounts whose rows are counted (not an overlapped institution's other copy)."""
    from sqlalchemy import select

    from services.models import ActivityRow

    overlaps = services.activities.activities(limit=1)["counted_once"]
    hidden = {(o["institution"], p) for o in overlaps for p in o["providers"].split(",")}
    hidden -= {(o["institution"], o["counted_under"]) for o in overlaps}
    columns = (
        ActivityRow.provider,
        ActivityRow.source,
        ActivityRow.institution,
        ActivityRow.account_id,
        ActivityRow.account_name,
    )
    with services.engine.connect() as conn:
        rows = conn.execute(
            select(*columns)
            .where(ActivityRow.user_id == _user_id(services))
            .distinct()
            .order_by(*columns)
        ).mappings()
        accounts = [dict(row) for row in rows]
    return [a for a in accounts if (a["institution"], a["provider"]) not in hidden]


def _synthetic(i: int, account: dict[str, Any], today: Any, rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(SYNTHETIC_TYPES)
    currency = "EUR" if i % 8 == 7 else "USD"
    ticker = None if kind in ("interest", "fee") else rng.choice(TICKERS)
    quantity = price = fee = None
    if kind in ("buy", "sell"):
        quantity, price = float(rng.randint(1, 40)), round(rng.uniform(20, 500), 2)
        amount = round(quantity * price, 2) * (-1 if kind == "buy" else 1)
        fee = 1.0
    elif kind == "fee":
        amount = -round(rng.uniform(1, 25), 2)
    else:
        amount = round(rng.uniform(0.5, 300), 2)
    return {
        **account,
        "activity_id": f"{SYNTHETIC_PREFIX}{i:06d}",
        "trade_date": today - timedelta(days=rng.randrange(HISTORY_DAYS)),
        "type": kind,
        "ticker": ticker,
        "security_id": None,
        "description": f"Synthetic {kind} {i}" + (f" of {ticker}" if ticker else ""),
        "quantity": quantity,
        "price": price,
        "amount": amount,
        "fee": fee,
        "currency": currency,
    }


def set_history_size(services: Any, total: int) -> int:
    """Make the stored history ``total`` rows: the synced rows as they are, plus synthetic
    ones (one transaction; earlier synthetic rows replaced, the touched sources'
    generations moved). Returns the number of rows now stored."""
    from sqlalchemy import delete, insert, update

    from services.models import ActivityRow, ActivitySync

    user_id = _user_id(services)
    with services.engine.begin() as conn:
        conn.execute(
            delete(ActivityRow).where(
                ActivityRow.user_id == user_id, ActivityRow.activity_id.startswith(SYNTHETIC_PREFIX)
            )
        )
    synced = stored(services)
    if total < synced:
        raise ValueError(f"{total} activities: the synced history alone is {synced}")
    accounts = _counted_accounts(services)
    now = services.clock()
    rng = random.Random(total)
    rows = [
        {
            **_synthetic(i, accounts[i % len(accounts)], now.date(), rng),
            "user_id": user_id,
            "fetched_at": now,
        }
        for i in range(total - synced)
    ]
    with services.engine.begin() as conn:
        if rows:
            conn.execute(insert(ActivityRow), rows)
        for provider, source in sorted({(a["provider"], a["source"]) for a in accounts}):
            conn.execute(
                update(ActivitySync)
                .where(
                    ActivitySync.user_id == user_id,
                    ActivitySync.provider == provider,
                    ActivitySync.source == source,
                )
                .values(generation=ActivitySync.generation + 1)
            )
    count = stored(services)
    assert count == total, (count, total)
    return count


# --- the service alone ---------------------------------------------------------------------


def _service_call(services: Any, tool: str, arguments: dict[str, str]) -> Any:
    views = services.activities
    if tool == "get_activities":
        return functools.partial(views.activities, **arguments)
    return functools.partial(views.income, **arguments)


def measure(services: Any, emulator: Any, *, repeat: int) -> dict[str, Any]:
    """Warm reads of the four calls at the history's current size."""
    calls_before = emulator.controls.calls()
    size = stored(services)
    figures: dict[str, Any] = {"stored": size, "calls": {}}
    for name, tool, arguments in CALLS:
        call = _service_call(services, tool, arguments)
        answer = call()  # the warm-up: the rates of the span seeded once
        samples = time_calls(call, repeat)
        figures["calls"][name] = {
            "warm_ms": p50_p95(samples),
            "answer_bytes": len(json.dumps(answer).encode()),
            "rows": len(answer["activities"])
            if "activities" in answer
            else answer["activity_count"],
            "total": answer.get("total"),
        }
    figures["counted_once"] = figures["calls"]["activities"]["total"]
    figures["provider_calls_during_reads"] = emulator.controls.calls() - calls_before
    if figures["provider_calls_during_reads"] or stored(services) != size:
        raise RuntimeError("a read synced: the history was not fresh, the figures are not warm")
    return figures


# --- over stdio ----------------------------------------------------------------------------


async def _call(session: Any, tool: str, arguments: dict[str, str]) -> Any:
    result = await session.call_tool(tool, arguments)
    if result.is_error:
        raise RuntimeError(f"{tool}({arguments}) failed: {result.content}")
    return result


async def _compare(
    env: dict[str, str], folder: Path, repeat: int, rounds: int, warmup: int
) -> dict[str, Any]:
    script, payload_file = folder / "bare_activities.py", folder / "payloads.json"
    script.write_text(BARE_ACTIVITY_SERVER)
    async with AsyncExitStack() as stack:
        sessions = {"ours": await _session(stack, OURS, env)}
        captured: dict[str, Any] = {}
        for name, tool, arguments in CALLS:
            for _ in range(warmup):
                captured[name] = await _call(sessions["ours"], tool, arguments)
        payload_file.write_text(
            json.dumps(
                {_key(tool, args): captured[name].structured_content for name, tool, args in CALLS}
            )
        )
        sessions["bare"] = await _session(
            stack, [sys.executable, str(script), str(payload_file)], env
        )
        for name, tool, arguments in CALLS:
            for _ in range(warmup):
                result = await _call(sessions["bare"], tool, arguments)
            mine = captured[name]
            if result.structured_content != mine.structured_content or _text(result) != _text(mine):
                raise RuntimeError(f"the bare server does not answer what ours answered: {name}")

        samples: dict[str, dict[str, list[float]]] = {
            name: {server: [] for server in sessions} for name, _, _ in CALLS
        }
        servers = list(sessions)
        per_round = max(1, repeat // rounds)
        for round_ in range(rounds):
            order = servers[round_ % len(servers) :] + servers[: round_ % len(servers)]
            for name, tool, arguments in CALLS:
                for server in order:
                    session, bucket = sessions[server], samples[name][server]
                    for _ in range(per_round):
                        started = time.perf_counter()
                        await _call(session, tool, arguments)
                        bucket.append(time.perf_counter() - started)

    figures: dict[str, Any] = {}
    for name, _, _ in CALLS:
        timing = {server: p50_p95(bucket) for server, bucket in samples[name].items()}
        result = captured[name]
        figures[name] = {
            "payload_bytes": len(json.dumps(result.structured_content).encode()),
            "text_bytes": len(_text(result).encode()),
            "wire_bytes": _wire_bytes(result),
            "calls_per_server": len(samples[name]["ours"]),
            **{f"{server}_ms": t for server, t in timing.items()},
            "ours_over_bare": round(timing["ours"]["p50"] / timing["bare"]["p50"], 2),
        }
    return figures


def compare_with_bare(
    env: dict[str, str], *, stored_rows: int, repeat: int, rounds: int = 6, warmup: int = 10
) -> dict[str, Any]:
    """The four calls over stdio: ours against a bare ``def`` server, same payloads."""
    load_before = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory() as folder:
        figures = anyio.run(_compare, env, Path(folder), repeat, rounds, warmup)
    load = [load_before, round(os.getloadavg()[0], 2)]
    return {"stored": stored_rows, "calls": figures, "load_average_1min": load}


# --- one database --------------------------------------------------------------------------


def run_on(
    kind: str, sizes: list[int], *, repeat: int, stdio_repeat: int, progress: Any
) -> dict[str, Any]:
    """Sync once, then the service alone and stdio at the demo's size and each of ``sizes``
    (stored rows; sizes below the demo's are skipped)."""
    figures: dict[str, Any] = {"service": [], "stdio": []}
    with database(kind) as url, tempfile.TemporaryDirectory() as folder:
        instance = Path(folder)
        with emulated(instance) as emulator:
            services = build(url, emulator, Clock(), instance)
            try:
                services.activities.activities()  # the one real sync: rows and sync state
                demo = stored(services)
                env = stdio_env(url, instance, emulator)
                for size in [demo, *(s for s in sizes if s > demo)]:
                    set_history_size(services, size)
                    progress(f"{kind}: activity history alone at {size} activities")
                    figures["service"].append(measure(services, emulator, repeat=repeat))
                    progress(f"{kind}: activity tools over stdio at {size} activities")
                    calls_before = emulator.controls.calls()
                    figures["stdio"].append(
                        compare_with_bare(env, stored_rows=size, repeat=stdio_repeat)
                    )
                    if emulator.controls.calls() != calls_before or stored(services) != size:
                        raise RuntimeError("our stdio server synced: the figures are not warm")
            finally:
                services.close()
    return figures


# --- tables --------------------------------------------------------------------------------


def markdown_service(results: dict[str, dict[str, Any]]) -> str:
    """Table 4: one row per database, size and call."""
    lines = [
        "| database | activities stored (counted once) | call | warm p50 / p95 | answer size "
        "| rows in the answer |",
        "|---|---|---|---|---|---|",
    ]
    for kind, figures in results.items():
        for row in figures["service"]:
            for name, f in row["calls"].items():
                counted = "activities" if name.startswith("activities") else "summed"
                lines.append(
                    f"| {kind} | {row['stored']:,} ({row['counted_once']:,}) | `{name}` "
                    f"| {f['warm_ms']['p50']} / {f['warm_ms']['p95']} ms "
                    f"| {_kb(f['answer_bytes'])} | {f['rows']:,} {counted} |"
                )
    return "\n".join(lines)


def markdown_stdio(results: dict[str, dict[str, Any]]) -> str:
    """Table 5: one row per database, size and call."""
    lines = [
        "| database | activities stored | call | answer (payload / on the wire) "
        "| ours p50 / p95 | bare `def` p50 / p95 | ours / bare | load avg (1 min) before / after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind, figures in results.items():
        for run in figures["stdio"]:
            for name, f in run["calls"].items():
                lines.append(
                    f"| {kind} | {run['stored']:,} | `{name}` "
                    f"| {_kb(f['payload_bytes'])} / {_kb(f['wire_bytes'])} "
                    f"| {f['ours_ms']['p50']} / {f['ours_ms']['p95']} ms "
                    f"| {f['bare_ms']['p50']} / {f['bare_ms']['p95']} ms "
                    f"| **{f['ours_over_bare']}x** "
                    f"| {run['load_average_1min'][0]} / {run['load_average_1min'][1]} |"
                )
    return "\n".join(lines)


def _kb(size: int) -> str:
    return f"{size / 1000:.1f} KB"
