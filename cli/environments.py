"""Every CLI JSON answer says which environment each provider is in."""

from __future__ import annotations

from typing import Any

from flask import current_app, has_app_context


def with_environments(result: Any) -> Any:
    """``result`` plus ``"environments": {"plaid": ..., "snaptrade": ...}`` when it is a dict."""
    if not isinstance(result, dict) or not has_app_context():
        return result
    services = current_app.extensions.get("services")
    if services is None:
        return result
    return {**result, "environments": services.settings.provider_envs}
