"""Every CLI answer says what it ran against: JSON answers carry each provider's environment,
plain-text ones a line naming the environments, or the database and secret store."""

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


def environments_line(settings: Any) -> str:
    """``environments: plaid=sandbox, snaptrade=production``."""
    envs = settings.provider_envs
    return "environments: " + ", ".join(f"{p}={env}" for p, env in envs.items())


def storage_line(settings: Any, *, database: bool = True, secret_store: bool = True) -> str:
    """``database: postgresql; secret store: aws``: the kinds only, never a URL (it may hold
    a password)."""
    parts = []
    if database:
        parts.append(f"database: {database_kind(settings.database_url)}")
    if secret_store:
        parts.append(f"secret store: {settings.secrets_backend}")
    return "; ".join(parts)


def database_kind(url: str) -> str:
    """``postgresql+psycopg://...`` → ``postgresql``."""
    return url.split(":", 1)[0].split("+", 1)[0] or "unknown"
