"""Every tool's answer says which environment each provider is in.

Every tool is wrapped once, at registration (``mcp_tools.registration``): a dict answer
gains ``"environments": {"plaid": ..., "snaptrade": ...}`` (``emulator``, ``sandbox``,
``production`` or ``disabled``), so the model can tell made-up demo holdings from real
ones, and a switched-off provider from an empty one.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from mcp_tools.boundary import ServicesFactory, services_of, tool_error


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
