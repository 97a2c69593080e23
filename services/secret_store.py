"""Moved: names to ``core.secret_names``, the interface to ``core.secret_store``, the
backends to ``providers.secret_stores``. This path keeps working for code that imports them."""

from core.secret_names import *  # noqa: F403
from core.secret_store import *  # noqa: F403
from providers.secret_stores import AwsSecretStore, LocalSecretStore, build_secret_store

__all__ = ["AwsSecretStore", "LocalSecretStore", "build_secret_store"]
