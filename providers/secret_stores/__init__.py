"""The two secret-store backends, and the factory that picks the configured one."""

from __future__ import annotations

import os
from pathlib import Path

from core.errors import ConfigError
from core.secret_store import Clock, SecretStore
from providers.secret_stores.aws import AwsSecretStore
from providers.secret_stores.local import LocalSecretStore

__all__ = ["AwsSecretStore", "LocalSecretStore", "build_secret_store"]


def build_secret_store(
    backend: str,
    *,
    instance_dir: str | os.PathLike[str],
    region_name: str | None,
    clock: Clock | None = None,
) -> SecretStore:
    """Build the configured backend; an unknown name stops start-up with a clear ConfigError."""
    choice = backend.strip().lower() if isinstance(backend, str) else backend
    if choice == "local":
        return LocalSecretStore(
            Path(instance_dir) / "secrets.json",
            clock=clock,
            shown_as="secrets.json in INSTANCE_DIR",
        )
    if choice == "aws":
        if not region_name:
            raise ConfigError("the 'aws' secret store backend needs an AWS region name")
        return AwsSecretStore(region_name, clock=clock)
    raise ConfigError(f"unknown secret store backend {backend!r}; use 'local' or 'aws'")
