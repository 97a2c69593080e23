"""Over stdio: our MCP server against a bare ``MCPServer`` answering the same payload.

Our server (``python mcp_server.py``, a child process on the bench's database and
emulator) is warmed, and what it answers for each format is written to a JSON file.
Two bare servers then answer that exact payload from the file: one whose tool is a
plain ``def`` (the SDK runs it in a worker thread) and one whose tool is
``async def`` (no thread; our tool answers a warm read inline, as this one does).
Both declare ``-> dict[str, Any]``: with a plain ``-> dict`` the SDK sends no
structured content, so the answer would not be the same. The bench checks that the
bare servers' answers equal ours, content and structured content.

The three servers run side by side and the calls are interleaved: rounds of calls
to each server in turn, the order rotated every round, so a burst of noise on the
machine falls on all of them.

Also here: cold start (from starting the process to the answer of ``tools/list``),
ours against a bare server with one trivial tool.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio

from bench.common import ROOT, ms, p50_p95

OURS = [sys.executable, str(ROOT / "mcp_server.py")]

BARE_PAYLOAD_SERVER = """
import json
import sys
from typing import Any

from mcp.server.mcpserver import MCPServer

with open(sys.argv[1]) as handle:
    PAYLOADS = json.load(handle)
server = MCPServer(name="bare")


@server.tool()
{kind} get_positions(format: str = "full") -> dict[str, Any]:
    return PAYLOADS[format]


server.run("stdio")
"""

BARE_PING_SERVER = """
from mcp.server.mcpserver import MCPServer

server = MCPServer(name="bare")


@server.tool()
def ping() -> str:
    return "pong"


server.run("stdio")
"""


async def _session(stack: AsyncExitStack, command: list[str], env: dict[str, str]) -> Any:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=command[0], args=command[1:], env=env)
    read, write = await stack.enter_async_context(stdio_client(params))
    session = await stack.enter_async_context(ClientSession(read, write))
    await session.initialize()
    return session


async def _call(session: Any, fmt: str) -> Any:
    result = await session.call_tool("get_positions", {"format": fmt})
    if result.is_error:
        raise RuntimeError(f"get_positions({fmt}) failed: {result.content}")
    return result


def _wire_bytes(result: Any) -> int:
    """Size of the tool result as the JSON-RPC message carries it (text and structured)."""
    return len(result.model_dump_json(by_alias=True, exclude_none=True).encode())


def _text(result: Any) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


async def _compare(
    env: dict[str, str],
    folder: Path,
    formats: tuple[str, ...],
    repeat: int,
    rounds: int,
    warmup: int,
    expected_positions: int,
) -> dict[str, Any]:
    scripts = {}
    for name, kind in (("bare", "def"), ("bare_async", "async def")):
        scripts[name] = folder / f"{name}.py"
        scripts[name].write_text(BARE_PAYLOAD_SERVER.replace("{kind}", kind))
    payload_file = folder / "payloads.json"

    async with AsyncExitStack() as stack:
        sessions = {"ours": await _session(stack, OURS, env)}
        captured: dict[str, Any] = {}
        for fmt in formats:
            for _ in range(warmup):
                captured[fmt] = await _call(sessions["ours"], fmt)
            count = captured[fmt].structured_content.get("total", expected_positions)
            if count != expected_positions:
                raise RuntimeError(f"our server pages {count} positions, not {expected_positions}")
        payload_file.write_text(
            json.dumps({fmt: result.structured_content for fmt, result in captured.items()})
        )
        for name, script in scripts.items():
            sessions[name] = await _session(
                stack, [sys.executable, str(script), str(payload_file)], env
            )
            for fmt in formats:
                for _ in range(warmup):
                    result = await _call(sessions[name], fmt)
                same = result.structured_content == captured[fmt].structured_content and _text(
                    result
                ) == _text(captured[fmt])
                if not same:
                    raise RuntimeError(f"{name} does not answer what ours answered for {fmt}")

        samples: dict[str, dict[str, list[float]]] = {
            fmt: {name: [] for name in sessions} for fmt in formats
        }
        names = list(sessions)
        per_round = max(1, repeat // rounds)
        for round_ in range(rounds):
            order = names[round_ % len(names) :] + names[: round_ % len(names)]
            for fmt in formats:
                for name in order:
                    session, bucket = sessions[name], samples[fmt][name]
                    for _ in range(per_round):
                        started = time.perf_counter()
                        await _call(session, fmt)
                        bucket.append(time.perf_counter() - started)

    figures: dict[str, Any] = {}
    for fmt in formats:
        timing = {name: p50_p95(bucket) for name, bucket in samples[fmt].items()}
        result = captured[fmt]
        figures[fmt] = {
            "payload_bytes": len(json.dumps(result.structured_content).encode()),
            "text_bytes": len(_text(result).encode()),  # the text block: what a model reads
            "wire_bytes": _wire_bytes(result),
            "calls_per_server": len(samples[fmt]["ours"]),
            **{f"{name}_ms": t for name, t in timing.items()},
            "ours_over_bare": round(timing["ours"]["p50"] / timing["bare"]["p50"], 2),
            "ours_over_bare_async": round(timing["ours"]["p50"] / timing["bare_async"]["p50"], 2),
        }
    return figures


def compare_with_bare(
    env: dict[str, str],
    *,
    positions: int,
    formats: tuple[str, ...] = ("summary", "full"),
    repeat: int = 300,
    rounds: int = 6,
    warmup: int = 20,
) -> dict[str, Any]:
    """Warm ``get_positions`` over stdio: ours, bare (``def``), bare (``async def``)."""
    load_before = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory() as folder:
        figures = anyio.run(_compare, env, Path(folder), formats, repeat, rounds, warmup, positions)
    # The 1-minute load average before and after: a busy machine shows itself here.
    load = [load_before, round(os.getloadavg()[0], 2)]
    return {"positions": positions, "formats": figures, "load_average_1min": load}


async def _cold_start(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    async with AsyncExitStack() as stack:
        session = await _session(stack, command, env)
        await session.list_tools()
        return time.perf_counter() - started


def cold_start_ratio(env: dict[str, str], runs: int) -> dict[str, float]:
    """Median time from start to the answer of tools/list: ours and a bare server, alternated."""
    ours, bare = [], []
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "bare_ping.py"
        script.write_text(BARE_PING_SERVER)
        for _ in range(runs):
            ours.append(anyio.run(_cold_start, OURS, env))
            bare.append(anyio.run(_cold_start, [sys.executable, str(script)], env))
    ours_ms, bare_ms = ms(statistics.median(ours)), ms(statistics.median(bare))
    return {"ours_ms": ours_ms, "bare_ms": bare_ms, "ratio": round(ours_ms / bare_ms, 2)}


def markdown(results: dict[str, Any]) -> str:
    """Table 1: one row per database, portfolio size and format."""
    lines = [
        "| database | positions | format | answer (payload / on the wire) | ours p50 / p95 "
        "| bare `def` p50 / p95 | ours / bare | bare `async def` p50 / p95 | ours / bare async "
        "| load avg (1 min) before / after |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, runs in results.items():
        for run in runs:
            for fmt, f in run["formats"].items():
                lines.append(
                    f"| {kind} | {run['positions']} | {fmt} "
                    f"| {_kb(f['payload_bytes'])} / {_kb(f['wire_bytes'])} "
                    f"| {f['ours_ms']['p50']} / {f['ours_ms']['p95']} ms "
                    f"| {f['bare_ms']['p50']} / {f['bare_ms']['p95']} ms "
                    f"| **{f['ours_over_bare']}x** "
                    f"| {f['bare_async_ms']['p50']} / {f['bare_async_ms']['p95']} ms "
                    f"| {f['ours_over_bare_async']}x "
                    f"| {run['load_average_1min'][0]} / {run['load_average_1min'][1]} |"
                )
    return "\n".join(lines)


def _kb(size: int) -> str:
    return f"{size / 1000:.1f} KB"
