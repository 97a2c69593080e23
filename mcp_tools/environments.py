"""Every tool's answer says which environment each provider is in.

``register_all`` hands the tool modules a registrar that wraps each tool once, at
registration: a dict answer gains ``"environments": {"plaid": ..., "snaptrade": ...}``
(``emulator``, ``sandbox``, ``production`` or ``disabled``), so the model can tell made-up
demo holdings from real ones, and a switched-off provider from an empty one.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from mcp_tools.boundary import ServicesFactory, services_of, tool_error

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer


def stamped(result: Any, environments: dict[str, str]) -> Any:
    """``result`` with the environments added when it is a dict (a copy: answers may be kept)."""
    if isinstance(result, dict):
        return {**result, "environments": environments}
    return result


def with_environments(fn: Callable[..., Any], get_services: ServicesFactory) -> Callable[..., Any]:
    """Wrap a tool (sync or async, already behind the error boundary) to stamp its answer."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_tool(*args: Any, **kwargs: Any) -> Any:
            result = await fn(*args, **kwargs)
            try:
                hub = await services_of(get_services)
            except Exception as exc:
                raise tool_error(exc) from exc
            return stamped(result, hub.settings.provider_envs)

        return async_tool

    @functools.wraps(fn)
    def tool(*args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        try:
            hub = get_services()
        except Exception as exc:
            raise tool_error(exc) from exc
        return stamped(result, hub.settings.provider_envs)

    return tool


class _StampingRegistrar:
    """Stands in for the server while the tool modules register: ``tool()`` wraps, then adds."""

    def __init__(self, server: MCPServer, get_services: ServicesFactory) -> None:
        self._server = server
        self._get_services = get_services

    def tool(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        register = self._server.tool(*args, **kwargs)

        def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
            register(with_environments(fn, self._get_services))
            return fn

        return decorator

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)


def stamping_environments(server: MCPServer, get_services: ServicesFactory) -> MCPServer:
    """The server as the tool modules see it: every tool they register is stamped."""
    return cast("MCPServer", _StampingRegistrar(server, get_services))
