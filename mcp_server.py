"""Brokerage Hub's MCP server (stdio): ``python mcp_server.py``.

stdout is the protocol wire, so logging goes to stderr only. The service layer
(database, SDKs, pandas) is built on the first tool call, not at start-up.
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING

from mcp.server.mcpserver import MCPServer

from mcp_tools import register_all

if TYPE_CHECKING:
    from services.composition import Services

INSTRUCTIONS = (
    "Brokerage Hub shows the person's brokerage accounts (Merrill Lynch, Interactive Brokers, "
    "Charles Schwab, ...) gathered through Plaid and SnapTrade, served from a cache. Prefer "
    "get_positions with format='summary' first; refresh a provider only when asked. Every "
    "answer says each provider's environment: 'emulator' is made-up demo data, not real "
    "money; 'disabled' means that provider is switched off here and never called."
)


class LazyServices:
    """Builds the service layer once, on first use, from the environment's settings."""

    def __init__(self, services: Services | None = None) -> None:
        self._services = services
        self._lock = threading.Lock()

    @property
    def built(self) -> bool:
        """Whether the first call has built the service layer (a slow, blocking step)."""
        return self._services is not None

    def __call__(self) -> Services:
        if self._services is None:
            with self._lock:
                if self._services is None:
                    from services.composition import build_services

                    services = build_services()
                    try:
                        # A schema that is behind fails the first tool call with one line
                        # (run `flask --app app migrate`), before any provider is called.
                        services.require_current_schema()
                    except BaseException:
                        services.close()
                        raise
                    self._services = services
        return self._services


def build_server(services: Services | None = None) -> MCPServer:
    server = MCPServer(name="brokerage-hub", instructions=INSTRUCTIONS)
    register_all(server, LazyServices(services))
    return server


def main() -> int:
    from core.errors import ConfigError
    from core.redaction import configure_logging
    from settings import load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"brokerage-hub: {exc.message}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    build_server().run("stdio")
    return 0


if __name__ == "__main__":
    sys.exit(main())
