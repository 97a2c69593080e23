"""Run the provider emulator on its own: ``python -m sandbox --port 8765 [--state PATH]
[--allow-admin]``.

The first two lines on stdout name the base URLs (``plaid <url>`` and
``snaptrade <url>``) so a parent process can read them; then it serves until
interrupted. The HTTP admin switches (faults, latency, recorded calls) are off
unless ``--allow-admin`` is given: any local user can reach 127.0.0.1.
"""

from __future__ import annotations

import argparse
import sys
import threading

from sandbox.server import start_emulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox", description="Local Plaid + SnapTrade emulator (127.0.0.1 only)."
    )
    parser.add_argument("--port", type=int, default=8765, help="port to listen on (0 = any free)")
    parser.add_argument(
        "--state",
        default=None,
        help="JSON state file shared with other emulators (default: memory)",
    )
    parser.add_argument(
        "--allow-admin",
        action="store_true",
        help="answer the /_emulator/ admin switches (faults, latency, counters): for tests "
        "and benchmarks; anyone on this machine can then steer the emulator",
    )
    args = parser.parse_args(argv)
    handle = start_emulator(args.port, state_path=args.state, allow_admin=args.allow_admin)
    sys.stdout.write(f"plaid {handle.plaid_url}\nsnaptrade {handle.snaptrade_url}\n")
    sys.stdout.flush()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
