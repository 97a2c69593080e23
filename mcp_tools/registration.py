"""What happens to every tool at registration, in one place.

``register_all`` hands the tool modules a registrar instead of the server. Its ``tool()``:

- leaves out, when the server is read-only (``READ_ONLY=true``), every tool whose
  ``readOnlyHint`` is not true (``preview_trade``, ``execute_trade``): a tool that is never
  listed cannot be called, whatever the model asks;
- wraps every other tool so its dict answer says each provider's environment
  (``mcp_tools.environments``) and carries provider text only as inert, marked data
  (``mcp_tools.untrusted``), and so every failure leaves through the error boundary
  (``mcp_tools.boundary``: one line of inert text);
- gives its arguments errors in one short line each (``mcp_tools.arguments``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from mcp_tools.arguments import shorten_argument_errors
from mcp_tools.boundary import ServicesFactory, tool_boundary
from mcp_tools.environments import with_environments
from mcp_tools.untrusted import marked

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer


def offered_when_read_only(annotations: Any) -> bool:
    """Only a tool that says it changes nothing (``readOnlyHint`` true) is offered read-only."""
    return getattr(annotations, "read_only_hint", None) is True


def with_untrusted_marked(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a tool (sync or async) so its answer leaves through :func:`marked`."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_tool(*args: Any, **kwargs: Any) -> Any:
            return marked(await fn(*args, **kwargs))

        return async_tool

    @functools.wraps(fn)
    def tool(*args: Any, **kwargs: Any) -> Any:
        return marked(fn(*args, **kwargs))

    return tool


class _Registrar:
    """Stands in for the server while the tool modules register: ``tool()`` filters and wraps."""

    def __init__(self, server: MCPServer, get_services: ServicesFactory, read_only: bool) -> None:
        self._server = server
        self._get_services = get_services
        self._read_only = read_only

    def tool(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        if self._read_only and not offered_when_read_only(kwargs.get("annotations")):
            return lambda fn: fn  # not registered: READ_ONLY=true
        register = self._server.tool(*args, **kwargs)

        def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
            # The boundary outermost too: a failure anywhere in the wrapping is answered
            # as the tool's own are (a tool's own @tool_boundary covers its body alone).
            register(
                tool_boundary(with_untrusted_marked(with_environments(fn, self._get_services)))
            )
            shorten_argument_errors(self._server, kwargs.get("name") or fn.__name__)
            return fn

        return decorator

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)


def registrar(
    server: MCPServer, get_services: ServicesFactory, *, read_only: bool = False
) -> MCPServer:
    """The server as the tool modules see it: each tool they register is filtered and wrapped."""
    return cast("MCPServer", _Registrar(server, get_services, read_only))
