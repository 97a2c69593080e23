"""The one error boundary every MCP tool goes through.

Only ``ToolError`` carries its message to the model (any other exception is masked
as a bare "Error executing tool"), so the project's own errors become ToolError
here, once, with their message; anything else is logged and reported as an
internal error, never as a traceback. Every message leaves through
``untrusted.neutral_message``, as a result's provider text does: an error may quote an
account's name, a symbol or a brokerage's own words, and those must reach the model inert.
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from mcp.server.mcpserver.exceptions import ToolError

from core.errors import BrokerageHubError
from mcp_tools.untrusted import neutral_message

if TYPE_CHECKING:
    from services.composition import Services

log = logging.getLogger(__name__)

ServicesFactory = Callable[[], "Services"]
F = TypeVar("F", bound=Callable[..., Any])


async def services_of(get_services: ServicesFactory) -> Services:
    """The service layer; built in a worker thread the first time, since that blocks."""
    if getattr(get_services, "built", True):
        return get_services()
    import anyio.to_thread

    return await anyio.to_thread.run_sync(get_services)


def tool_error(exc: BaseException) -> ToolError:
    """Our errors become ToolError so their message reaches the model (others are masked).

    The message is one line of inert text quoting at most a short prefix of a long argument
    (``neutral_message``); a database outage is said as such, briefly, so the model can try
    again later.
    """
    if isinstance(exc, ToolError):
        text = str(exc)
        return exc if neutral_message(text) == text else ToolError(neutral_message(text))
    if isinstance(exc, BrokerageHubError):
        return ToolError(neutral_message(exc.message))
    outage = _database_outage(exc)
    if outage is not None:
        log.warning("tool failed: the database is not reachable (%s)", type(exc).__name__)
        return ToolError(neutral_message(outage.message))
    log.error("tool failed unexpectedly", exc_info=exc)
    return ToolError("internal error; see the server log")


def _database_outage(exc: BaseException) -> BrokerageHubError | None:
    if "sqlalchemy" not in sys.modules:
        return None  # no database was used, so none failed (and the import stays lazy)
    from services.storage.outage import database_outage

    return database_outage(exc)


def tool_boundary(fn: F) -> F:
    """Wrap a tool (sync or async) so every failure leaves through :func:`tool_error`."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_tool(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:
                raise tool_error(exc) from exc

        return async_tool  # type: ignore[return-value]

    @functools.wraps(fn)
    def tool(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise tool_error(exc) from exc

    return tool  # type: ignore[return-value]
