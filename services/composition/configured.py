"""The REPL faces' service layer: this process's own settings, built once on first use."""

from __future__ import annotations

import threading

from core.secret_store import SecretStore
from providers.secret_stores import build_secret_store
from services.composition.root import Services, build_services

_configured: Services | None = None
_configured_lock = threading.Lock()


def configured_services() -> Services:
    """The service layer of this process's own settings, built on first use (for REPL faces)."""
    global _configured
    with _configured_lock:
        if _configured is None:
            _configured = build_services()
        return _configured


def configured_secret_store(region_name: str | None = None) -> SecretStore:
    """The configured secret store; in ``region_name`` when that AWS region differs."""
    hub = configured_services()
    settings = hub.settings
    if region_name and settings.secrets_backend == "aws" and region_name != settings.aws_region:
        return build_secret_store(
            "aws", instance_dir=settings.instance_dir, region_name=region_name
        )
    return hub.secret_store
