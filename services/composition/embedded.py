"""The embedded default's stand-in for Plaid and SnapTrade: the emulator in ``sandbox/``.

As SQLite stands in for Postgres, the emulator stands in for the providers when
their environment is ``emulator``. This module is the only product module that
knows it: it starts or reuses the emulator, hands on its plain URLs and app
credentials, and seeds the demo user's tokens in one explicit step.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from core.errors import SecretStoreError, SecretStoreUnavailable
from core.secret_names import plaid_token_name, snaptrade_user_secret_name
from core.secret_store import SecretStore
from sandbox import demo
from sandbox.server import ensure_emulator
from services.composition.clients import ProviderEndpoint

log = logging.getLogger(__name__)

DEMO_USER_EMAIL = demo.DEMO_USER_EMAIL
DEMO_SEEDED_MARKER = "app/demo_seeded/"
APP_CREDENTIALS = {
    "plaid": (demo.PLAID_CLIENT_ID, demo.PLAID_SECRET),
    "snaptrade": (demo.SNAPTRADE_CLIENT_ID, demo.SNAPTRADE_CONSUMER_KEY),
}


class EmbeddedProviders:
    """The emulator of this instance folder, started or reused on first use."""

    def __init__(self, instance_dir: Path, handle: Any = None) -> None:
        self._instance_dir = instance_dir
        self._handle = handle  # tests pass an emulator they started themselves
        self._given = handle
        self._lock = threading.Lock()

    def _running(self) -> Any:
        with self._lock:
            if self._handle is None:
                self._handle = ensure_emulator(self._instance_dir)
            return self._handle

    def endpoint(
        self, provider: str, *, host: str, client_id: str, secret: str
    ) -> ProviderEndpoint:
        """The emulator's URL (unless ``host`` overrides it) and its app credentials."""
        demo_id, demo_secret = APP_CREDENTIALS[provider]
        url = host or getattr(self._running(), f"{provider}_url")
        return ProviderEndpoint(url, client_id or demo_id, secret or demo_secret)

    def client_id(self, provider: str) -> str:
        return APP_CREDENTIALS[provider][0]

    def close(self) -> None:
        """Stop the emulator if this process started it (one it reused keeps running)."""
        with self._lock:
            handle, self._handle = self._handle, None
        if handle is not None and handle is not self._given:
            handle.stop()


def seed_demo_user(
    store: SecretStore,
    user_email: str,
    *,
    providers: tuple[str, ...],
    clock: Callable[[], datetime],
) -> None:
    """Give the demo user the emulator's tokens for ``providers``, once per secret store.

    A marker secret records that seeding happened, so a token deleted later (say by
    a migration) is never silently put back. A secret store that cannot be read is left
    alone: the process still starts, and whatever needs the store says what is wrong
    (a 503 page, one CLI line); the next start seeds once the file is fixed.
    """
    if user_email != DEMO_USER_EMAIL or not providers:
        return
    try:
        _seed(store, user_email, providers, clock)
    except SecretStoreUnavailable as exc:
        log.debug("demo user not seeded: %s", exc.message)


def _seed(
    store: SecretStore,
    user_email: str,
    providers: tuple[str, ...],
    clock: Callable[[], datetime],
) -> None:
    marker = f"{DEMO_SEEDED_MARKER}{user_email}"
    if store.exists(marker):
        return
    seeds: dict[str, str] = {}
    if "plaid" in providers:
        for slug, token in demo.PLAID_ACCESS_TOKENS.items():
            seeds[plaid_token_name(user_email, slug)] = token
    if "snaptrade" in providers:
        seeds[snaptrade_user_secret_name(user_email)] = demo.SNAPTRADE_USER_SECRET
    for name, value in seeds.items():
        try:
            if not store.exists(name):
                store.put(name, value)
        except SecretStoreError as exc:
            log.info("demo secret %s left as it is: %s", name, exc.message)
    store.put(marker, clock().isoformat())
