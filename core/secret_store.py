"""The secret-store interface: named secrets with AWS Secrets Manager's soft-delete lifecycle.

Two interchangeable backends implement :class:`SecretStore` (``providers.secret_stores``):
a local JSON file (mode 0600) for the embedded default and single hosts, and AWS
Secrets Manager for production.

The local store deliberately copies Secrets Manager's lifecycle so that code developed against it
behaves the same in production: a deleted secret is only *scheduled* for deletion (7..30 days),
is unreadable and unlistable meanwhile, blocks re-creating the same name until restored, and
is purged once its recovery window has passed. There is no forced, immediate delete anywhere:
a Plaid token whose secret vanished can no longer be used to call ``item_remove``.

Secret values never appear in exception messages, log lines or ``repr``; names do (they carry
the user's e-mail, which is not a credential).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypedDict

from core.errors import ConfigError, InvalidInput

Clock = Callable[[], datetime]

MIN_RECOVERY_DAYS = 7
MAX_RECOVERY_DAYS = 30
DEFAULT_RECOVERY_DAYS = 7

# Secrets Manager's own limits, enforced in both backends so the local store rejects what AWS
# would reject instead of letting a name work in development and fail in production.
MAX_NAME_LENGTH = 512
MAX_VALUE_BYTES = 65_536
_NAME_CHARS = "letters, digits and / _ + = . @ -"
_NAME_RE = re.compile(r"[A-Za-z0-9/_+=.@-]+")


class SecretDescription(TypedDict):
    """What :meth:`SecretStore.describe` reports: metadata only, never the value."""

    name: str
    scheduled_deletion_at: datetime | None


def checked_name(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidInput("secret name must be a non-empty string", field="name")
    if len(name) > MAX_NAME_LENGTH or not _NAME_RE.fullmatch(name):
        raise InvalidInput(
            f"secret name must be at most {MAX_NAME_LENGTH} characters of {_NAME_CHARS}",
            field="name",
        )
    return name


def checked_prefix(prefix: str) -> str:
    """An empty prefix means "everything"; otherwise the same characters as a name.

    This also keeps a leading "!" out, which Secrets Manager would read as "NOT this prefix".
    """
    if not isinstance(prefix, str):
        raise InvalidInput("prefix must be a string", field="prefix")
    if prefix and (len(prefix) > MAX_NAME_LENGTH or not _NAME_RE.fullmatch(prefix)):
        raise InvalidInput(
            f"prefix must be empty or at most {MAX_NAME_LENGTH} characters of {_NAME_CHARS}",
            field="prefix",
        )
    return prefix


def checked_value(value: str) -> str:
    """Validate a secret value without ever echoing it."""
    if not isinstance(value, str) or not value:
        raise InvalidInput("secret value must be a non-empty string", field="value")
    if len(value.encode("utf-8")) > MAX_VALUE_BYTES:
        raise InvalidInput(
            f"secret value must be at most {MAX_VALUE_BYTES} bytes (UTF-8)", field="value"
        )
    return value


def checked_recovery_days(recovery_days: int) -> int:
    # bool is an int subclass; schedule_deletion(name, True) is a bug, not "1 day".
    if (
        isinstance(recovery_days, bool)
        or not isinstance(recovery_days, int)
        or not MIN_RECOVERY_DAYS <= recovery_days <= MAX_RECOVERY_DAYS
    ):
        raise InvalidInput(
            f"recovery_days must be a whole number of days from {MIN_RECOVERY_DAYS} to "
            f"{MAX_RECOVERY_DAYS} inclusive",
            field="recovery_days",
        )
    return recovery_days


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """Normalise to aware UTC; a naive datetime is ambiguous and therefore a bug."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ConfigError("the secret store clock must return timezone-aware datetimes")
    return moment.astimezone(UTC)


def scheduled_message(name: str) -> str:
    return f"secret {name!r} is scheduled for deletion; restore it first to read or change it"


class SecretStore(ABC):
    """A named-secret store with Secrets Manager's soft-delete lifecycle.

    "Live" means stored and not scheduled for deletion. Only live secrets can be read, updated
    or listed by :meth:`list_names`; scheduled ones are visible through :meth:`describe` and
    :meth:`list_scheduled` so an operator can see what :meth:`restore` could bring back.
    """

    @abstractmethod
    def put(self, name: str, value: str) -> None:
        """Create ``name`` or replace the value of the live secret ``name``.

        Raises :class:`SecretScheduledForDeletion` if ``name`` is scheduled for deletion.
        """

    @abstractmethod
    def get(self, name: str) -> str:
        """Return the value of a live secret.

        Raises :class:`SecretNotFound` or :class:`SecretScheduledForDeletion`.
        """

    @abstractmethod
    def list_names(self, prefix: str) -> list[str]:
        """Sorted names of live secrets that start with ``prefix`` (case-sensitive)."""

    @abstractmethod
    def schedule_deletion(self, name: str, recovery_days: int = DEFAULT_RECOVERY_DAYS) -> datetime:
        """Schedule a live secret for deletion after ``recovery_days`` (7..30); return that date.

        Raises :class:`InvalidInput` (bad window, nothing changes), :class:`SecretNotFound`, or
        :class:`SecretScheduledForDeletion` if it already is.
        """

    @abstractmethod
    def restore(self, name: str) -> None:
        """Cancel a scheduled deletion; a live secret is left as it is.

        Raises :class:`SecretNotFound` if there is nothing (left) to restore.
        """

    @abstractmethod
    def exists(self, name: str) -> bool:
        """Whether ``name`` is live (a scheduled secret does not count)."""

    @abstractmethod
    def describe(self, name: str) -> SecretDescription:
        """Metadata of a live or scheduled secret. Raises :class:`SecretNotFound`."""

    @abstractmethod
    def list_scheduled(self, prefix: str) -> list[str]:
        """Sorted names of secrets scheduled for deletion that start with ``prefix``."""
