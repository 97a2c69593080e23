"""Where Brokerage Hub keeps provider credentials: Plaid access tokens and SnapTrade user secrets.

Two interchangeable backends implement :class:`SecretStore`:

* :class:`LocalSecretStore` — one JSON file (mode 0600) for development and single-host use.
* :class:`AwsSecretStore` — AWS Secrets Manager for production.

The local store deliberately copies Secrets Manager's lifecycle so that code developed against it
behaves the same in production: a deleted secret is only *scheduled* for deletion (7..30 days),
is unreadable and unlistable meanwhile, blocks re-creating the same name until restored, and
is purged once its recovery window has passed. There is no forced, immediate delete anywhere:
a Plaid token whose secret vanished can no longer be used to call ``item_remove``.

Secret values never appear in exception messages, log lines or ``repr``; names do (they carry
the user's e-mail, which is not a credential).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import logging
import os
import re
import stat
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypedDict

from services.errors import (
    BrokerageHubError,
    ConfigError,
    InvalidInput,
    SecretAlreadyExists,
    SecretNotFound,
    SecretScheduledForDeletion,
    SecretStoreError,
)
from services.redaction import register_secret

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# Name prefixes, not credentials (S105 mistakes "token"/"secret" in the names for passwords).
PLAID_TOKEN_PREFIX = "plaid/access_token/"  # noqa: S105
SNAPTRADE_USER_SECRET_PREFIX = "snaptrade/user_secret/"  # noqa: S105

MIN_RECOVERY_DAYS = 7
MAX_RECOVERY_DAYS = 30
DEFAULT_RECOVERY_DAYS = 7

# Secrets Manager's own limits, enforced in both backends so the local store rejects what AWS
# would reject instead of letting a name work in development and fail in production.
MAX_NAME_LENGTH = 512
MAX_VALUE_BYTES = 65_536
_NAME_CHARS = "letters, digits and / _ + = . @ -"
_NAME_RE = re.compile(r"[A-Za-z0-9/_+=.@-]+")
_SLUG_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_EMAIL_RE = re.compile(r"[A-Za-z0-9_+=.-]+@[A-Za-z0-9_+=.-]+")


class SecretDescription(TypedDict):
    """What :meth:`SecretStore.describe` reports: metadata only, never the value."""

    name: str
    scheduled_deletion_at: datetime | None


# --------------------------------------------------------------------------- names


def plaid_token_name(user_email: str, institution_slug: str) -> str:
    """Name of the secret holding one Plaid Item's access token.

    One secret per (user, institution) so unlinking one institution schedules exactly one
    token for deletion and listing ``plaid/access_token/<email>/`` finds all of a user's Items.
    """
    return f"{PLAID_TOKEN_PREFIX}{_checked_email(user_email)}/{_checked_slug(institution_slug)}"


def plaid_tokens_prefix(user_email: str) -> str:
    """Listing prefix for all of one user's Plaid tokens.

    It ends in "/" so that listing ``a@x.co`` cannot also return ``a@x.com``'s tokens.
    """
    return f"{PLAID_TOKEN_PREFIX}{_checked_email(user_email)}/"


def snaptrade_user_secret_name(user_email: str) -> str:
    """Name of the secret holding a user's SnapTrade ``userSecret`` (one per user)."""
    return f"{SNAPTRADE_USER_SECRET_PREFIX}{_checked_email(user_email)}"


def _checked_email(user_email: str) -> str:
    """Reject e-mails that would change the name's shape or that Secrets Manager refuses.

    A "/" would add a path level (``a/b@x.com`` would list under another prefix), so it is the
    one character an e-mail can never carry here; the other restrictions are AWS's name rules.
    """
    if not isinstance(user_email, str) or not user_email:
        raise InvalidInput("user_email must be a non-empty string", field="user_email")
    if "/" in user_email:
        raise InvalidInput(
            "user_email must not contain '/': it separates the parts of a secret name",
            field="user_email",
        )
    if not _EMAIL_RE.fullmatch(user_email):
        raise InvalidInput(
            "user_email must look like local@domain and use only letters, digits and "
            "_ + = . - around a single '@'",
            field="user_email",
        )
    return user_email


def _checked_slug(institution_slug: str) -> str:
    """Institution slugs are lowercase words joined by hyphens, e.g. ``interactive-brokers``."""
    if not isinstance(institution_slug, str) or not _SLUG_RE.fullmatch(institution_slug):
        raise InvalidInput(
            "institution_slug must use only lowercase letters, digits and single hyphens "
            "between them (e.g. 'merrill-lynch')",
            field="institution_slug",
        )
    return institution_slug


def _checked_name(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidInput("secret name must be a non-empty string", field="name")
    if len(name) > MAX_NAME_LENGTH or not _NAME_RE.fullmatch(name):
        raise InvalidInput(
            f"secret name must be at most {MAX_NAME_LENGTH} characters of {_NAME_CHARS}",
            field="name",
        )
    return name


def _checked_prefix(prefix: str) -> str:
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


def _checked_value(value: str) -> str:
    """Validate a secret value without ever echoing it."""
    if not isinstance(value, str) or not value:
        raise InvalidInput("secret value must be a non-empty string", field="value")
    if len(value.encode("utf-8")) > MAX_VALUE_BYTES:
        raise InvalidInput(
            f"secret value must be at most {MAX_VALUE_BYTES} bytes (UTF-8)", field="value"
        )
    return value


def _checked_recovery_days(recovery_days: int) -> int:
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


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _as_utc(moment: datetime) -> datetime:
    """Normalise to aware UTC; a naive datetime is ambiguous and therefore a bug."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ConfigError("the secret store clock must return timezone-aware datetimes")
    return moment.astimezone(UTC)


def _scheduled_message(name: str) -> str:
    return f"secret {name!r} is scheduled for deletion; restore it first to read or change it"


# --------------------------------------------------------------------------- interface


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


# --------------------------------------------------------------------------- local file


class LocalSecretStore(SecretStore):
    """Secrets in one JSON file, safe for concurrent processes on one host.

    Every operation holds an exclusive ``flock`` on a sidecar lock file for its whole
    read-modify-write, so two processes (e.g. the Flask app and the MCP server) cannot lose
    each other's writes. The data file is never locked itself because it is replaced, not
    rewritten: each write goes to a 0600 temp file in the same directory, is fsynced and then
    ``os.replace``-d in, so a crash leaves either the old or the new file, never half of one.
    """

    _FORMAT_VERSION = 1

    def __init__(self, path: str | os.PathLike[str], clock: Clock | None = None) -> None:
        self._path = Path(path)
        self._lock_path = self._path.with_name(self._path.name + ".lock")
        self._clock: Clock = clock or _utc_now
        try:
            self._path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise SecretStoreError(
                f"cannot create the directory of the secret file {str(self._path)!r}"
            ) from exc
        with self._locked():
            if os.path.lexists(self._path):
                self._enforce_private_mode()
            else:
                self._write({})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={str(self._path)!r})"

    # -- public API

    def put(self, name: str, value: str) -> None:
        _checked_name(name)
        _checked_value(value)
        with self._transaction() as secrets:
            now = self._now()
            record = secrets.get(name)
            if record is None:
                secrets[name] = {
                    "value": value,
                    "created_at": now.isoformat(),
                    "updated_at": now.isoformat(),
                    "scheduled_deletion_at": None,
                }
                logger.info("secret created: %s", name)
                return
            if record["scheduled_deletion_at"] is not None:
                raise SecretScheduledForDeletion(_scheduled_message(name))
            record["value"] = value
            record["updated_at"] = now.isoformat()
            logger.info("secret updated: %s", name)

    def get(self, name: str) -> str:
        _checked_name(name)
        with self._transaction() as secrets:
            value = str(self._live_record(secrets, name)["value"])
        register_secret(value)
        return value

    def list_names(self, prefix: str) -> list[str]:
        _checked_prefix(prefix)
        with self._transaction() as secrets:
            return sorted(
                name
                for name, record in secrets.items()
                if name.startswith(prefix) and record["scheduled_deletion_at"] is None
            )

    def schedule_deletion(self, name: str, recovery_days: int = DEFAULT_RECOVERY_DAYS) -> datetime:
        _checked_name(name)
        _checked_recovery_days(recovery_days)
        with self._transaction() as secrets:
            record = self._live_record(secrets, name)
            deletion_at = self._now() + timedelta(days=recovery_days)
            record["scheduled_deletion_at"] = deletion_at.isoformat()
        logger.info("secret scheduled for deletion at %s: %s", deletion_at.isoformat(), name)
        return deletion_at

    def restore(self, name: str) -> None:
        _checked_name(name)
        with self._transaction() as secrets:
            record = secrets.get(name)
            if record is None:
                raise SecretNotFound(f"no secret named {name!r} to restore")
            if record["scheduled_deletion_at"] is None:
                return
            record["scheduled_deletion_at"] = None
        logger.info("secret restored: %s", name)

    def exists(self, name: str) -> bool:
        _checked_name(name)
        with self._transaction() as secrets:
            record = secrets.get(name)
            return record is not None and record["scheduled_deletion_at"] is None

    def describe(self, name: str) -> SecretDescription:
        _checked_name(name)
        with self._transaction() as secrets:
            record = secrets.get(name)
            if record is None:
                raise SecretNotFound(f"no secret named {name!r}")
            return {
                "name": name,
                "scheduled_deletion_at": _parse_optional_datetime(record["scheduled_deletion_at"]),
            }

    def list_scheduled(self, prefix: str) -> list[str]:
        _checked_prefix(prefix)
        with self._transaction() as secrets:
            return sorted(
                name
                for name, record in secrets.items()
                if name.startswith(prefix) and record["scheduled_deletion_at"] is not None
            )

    # -- internals

    def _now(self) -> datetime:
        return _as_utc(self._clock())

    @staticmethod
    def _live_record(secrets: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
        record = secrets.get(name)
        if record is None:
            raise SecretNotFound(f"no secret named {name!r}")
        if record["scheduled_deletion_at"] is not None:
            raise SecretScheduledForDeletion(_scheduled_message(name))
        return record

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the cross-process lock. A fresh descriptor per call also serialises threads."""
        try:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise SecretStoreError(f"cannot open the lock file {str(self._lock_path)!r}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the last descriptor releases the flock

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[dict[str, dict[str, Any]]]:
        """Locked read-modify-write; writes back only if the data changed and no error escaped.

        Secrets whose recovery window has passed are purged here, so every operation sees the
        same "really gone" state that Secrets Manager's background purge would produce.
        """
        with self._locked():
            secrets = self._read()
            before = json.dumps(secrets, sort_keys=True)
            self._purge_expired(secrets)
            yield secrets
            if json.dumps(secrets, sort_keys=True) != before:
                self._write(secrets)

    def _purge_expired(self, secrets: dict[str, dict[str, Any]]) -> None:
        now = self._now()
        for name in [
            name
            for name, record in secrets.items()
            if record["scheduled_deletion_at"] is not None
            and _parse_datetime(record["scheduled_deletion_at"]) <= now
        ]:
            del secrets[name]
            logger.info("secret purged after its recovery window: %s", name)

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            fd = os.open(self._path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            return {}  # removed behind our back: behave like an empty store and recreate it
        except OSError as exc:
            raise SecretStoreError(f"cannot open the secret file {str(self._path)!r}") from exc
        try:
            with os.fdopen(fd, "r", encoding="utf-8") as handle:
                document = json.load(handle)
        except (OSError, ValueError) as exc:
            # ValueError covers JSON and UTF-8 errors; their text is not repeated on purpose.
            raise SecretStoreError(
                f"the secret file {str(self._path)!r} is unreadable or not valid JSON"
            ) from exc
        secrets = document.get("secrets") if isinstance(document, dict) else None
        if not isinstance(secrets, dict):
            raise SecretStoreError(
                f"the secret file {str(self._path)!r} does not have the expected layout"
            )
        return secrets

    def _write(self, secrets: dict[str, dict[str, Any]]) -> None:
        """Atomically replace the data file with a 0600 file holding ``secrets``."""
        payload = json.dumps(
            {"version": self._FORMAT_VERSION, "secrets": secrets}, indent=2, sort_keys=True
        ).encode("utf-8")
        directory = self._path.parent
        tmp_name: str | None = None
        try:
            # mkstemp creates the file 0600 and O_EXCL; fchmod guards against odd umasks/ACLs.
            fd, tmp_name = tempfile.mkstemp(
                dir=directory, prefix=f".{self._path.name}.", suffix=".tmp"
            )
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), 0o600)
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_name, self._path)
            tmp_name = None
            _fsync_directory(directory)
        except OSError as exc:
            raise SecretStoreError(f"cannot write the secret file {str(self._path)!r}") from exc
        finally:
            if tmp_name is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp_name)

    def _enforce_private_mode(self) -> None:
        """Make sure the existing file is a regular file readable by its owner only."""
        try:
            info = os.lstat(self._path)
        except OSError as exc:
            raise SecretStoreError(f"cannot inspect the secret file {str(self._path)!r}") from exc
        if not stat.S_ISREG(info.st_mode):
            raise SecretStoreError(f"the secret file {str(self._path)!r} is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode != 0o600:
            logger.warning("secret file %s had mode %o; tightening it to 600", self._path, mode)
            try:
                os.chmod(self._path, 0o600)
            except OSError as exc:
                raise SecretStoreError(
                    f"the secret file {str(self._path)!r} has mode {mode:o} and cannot be "
                    "changed to 600"
                ) from exc


def _fsync_directory(directory: Path) -> None:
    """Persist the rename itself. Best effort: the new file is already in place, and some
    filesystems cannot fsync a directory, so a failure here must not report the write failed."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _parse_datetime(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _parse_optional_datetime(text: str | None) -> datetime | None:
    return None if text is None else _parse_datetime(text)


# --------------------------------------------------------------------------- AWS


@functools.cache
def _botocore_exceptions() -> tuple[type[Exception], type[Exception]]:
    """(ClientError, BotoCoreError), imported on first use: the MCP server must be able to
    answer its handshake before any AWS SDK module is loaded."""
    from botocore.exceptions import BotoCoreError, ClientError

    return ClientError, BotoCoreError


def _map_client_error(exc: Exception, *, operation: str, name: str) -> BrokerageHubError:
    """Translate one botocore ``ClientError`` into the project's error; the only place that does.

    Only the AWS error *code* is repeated. AWS's message text is left in the chained exception:
    validation messages can quote request parameters, and a parameter may be the secret value.
    """
    response = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", "Unknown"))
    if code == "ResourceNotFoundException":
        return SecretNotFound(f"no secret named {name!r}")
    if code == "ResourceExistsException":
        return SecretAlreadyExists(f"a secret named {name!r} already exists")
    if code == "InvalidRequestException":
        # For the calls this store makes (get/put value, delete), AWS documents this as "the
        # secret is scheduled for deletion".
        return SecretScheduledForDeletion(_scheduled_message(name))
    if code in ("InvalidParameterException", "ValidationException"):
        return InvalidInput(
            f"Secrets Manager rejected the {operation} request for {name!r} ({code})"
        )
    return SecretStoreError(f"Secrets Manager {operation} failed for {name!r} ({code})")


class AwsSecretStore(SecretStore):
    """Secrets in AWS Secrets Manager (one region).

    Every boto3 call goes through :meth:`_call` (or :meth:`_list`), which maps botocore errors
    exactly once. ``page_size`` exists so tests can exercise pagination with a few secrets.
    """

    def __init__(
        self,
        region_name: str,
        client: Any | None = None,
        clock: Clock | None = None,
        *,
        page_size: int = 100,
    ) -> None:
        if not 1 <= page_size <= 100:
            raise ConfigError("page_size must be from 1 to 100 (the Secrets Manager maximum)")
        self._region_name = region_name
        self._clock: Clock = clock or _utc_now
        self._page_size = page_size
        if client is None:
            import boto3

            client = boto3.client("secretsmanager", region_name=region_name)
        self._client = client

    def __repr__(self) -> str:
        return f"{type(self).__name__}(region_name={self._region_name!r})"

    # -- public API

    def put(self, name: str, value: str) -> None:
        _checked_name(name)
        _checked_value(value)
        try:
            self._call("create_secret", name, Name=name, SecretString=value)
            logger.info("secret created: %s", name)
            return
        except SecretAlreadyExists:
            pass
        # AWS refuses put_secret_value on a scheduled secret, but moto (and therefore our tests)
        # accepts it, so check explicitly rather than rely on the service to refuse.
        if self._describe(name).get("DeletedDate") is not None:
            raise SecretScheduledForDeletion(_scheduled_message(name))
        self._call("put_secret_value", name, SecretId=name, SecretString=value)
        logger.info("secret updated: %s", name)

    def get(self, name: str) -> str:
        _checked_name(name)
        response = self._call("get_secret_value", name, SecretId=name)
        value = response.get("SecretString")
        if value is None:
            raise SecretStoreError(f"secret {name!r} holds binary data, not a text value")
        register_secret(value)
        return str(value)

    def list_names(self, prefix: str) -> list[str]:
        _checked_prefix(prefix)
        return sorted(
            entry["Name"]
            for entry in self._list(prefix, include_planned_deletion=False)
            if entry.get("DeletedDate") is None
        )

    def schedule_deletion(self, name: str, recovery_days: int = DEFAULT_RECOVERY_DAYS) -> datetime:
        _checked_name(name)
        _checked_recovery_days(recovery_days)
        # ForceDeleteWithoutRecovery is never sent: the recovery window is the safety net.
        response = self._call(
            "delete_secret", name, SecretId=name, RecoveryWindowInDays=recovery_days
        )
        deletion_date = response.get("DeletionDate")
        deletion_at = (
            _as_utc(deletion_date)
            if isinstance(deletion_date, datetime)
            else _as_utc(self._clock()) + timedelta(days=recovery_days)
        )
        logger.info("secret scheduled for deletion at %s: %s", deletion_at.isoformat(), name)
        return deletion_at

    def restore(self, name: str) -> None:
        _checked_name(name)
        self._call("restore_secret", name, SecretId=name)
        logger.info("secret restored (or was live): %s", name)

    def exists(self, name: str) -> bool:
        _checked_name(name)
        try:
            response = self._describe(name)
        except SecretNotFound:
            return False
        return response.get("DeletedDate") is None

    def describe(self, name: str) -> SecretDescription:
        _checked_name(name)
        response = self._describe(name)
        deleted_date = response.get("DeletedDate")
        return {
            "name": str(response.get("Name", name)),
            "scheduled_deletion_at": _as_utc(deleted_date) if deleted_date else None,
        }

    def list_scheduled(self, prefix: str) -> list[str]:
        _checked_prefix(prefix)
        return sorted(
            entry["Name"]
            for entry in self._list(prefix, include_planned_deletion=True)
            if entry.get("DeletedDate") is not None
        )

    # -- internals

    def _describe(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("describe_secret", name, SecretId=name)
        return result

    def _call(self, operation: str, name: str, **params: Any) -> dict[str, Any]:
        client_error, botocore_error = _botocore_exceptions()
        try:
            result: dict[str, Any] = getattr(self._client, operation)(**params)
        except client_error as exc:
            raise _map_client_error(exc, operation=operation, name=name) from exc
        except botocore_error as exc:
            # Only the class name: some botocore messages quote parameter values.
            raise SecretStoreError(
                f"Secrets Manager {operation} failed for {name!r} ({type(exc).__name__})"
            ) from exc
        return result

    def _list(self, prefix: str, *, include_planned_deletion: bool) -> list[dict[str, Any]]:
        """All entries whose name starts with ``prefix``, across every page.

        The server-side ``name`` filter narrows the listing; ``startswith`` makes it exact
        whatever the service's matching rules turn out to be.
        """
        client_error, botocore_error = _botocore_exceptions()
        params: dict[str, Any] = {
            "IncludePlannedDeletion": include_planned_deletion,
            "PaginationConfig": {"PageSize": self._page_size},
        }
        if prefix:
            params["Filters"] = [{"Key": "name", "Values": [prefix]}]
        entries: list[dict[str, Any]] = []
        try:
            for page in self._client.get_paginator("list_secrets").paginate(**params):
                entries.extend(
                    entry
                    for entry in page.get("SecretList", [])
                    if str(entry.get("Name", "")).startswith(prefix)
                )
        except client_error as exc:
            raise _map_client_error(exc, operation="list_secrets", name=prefix) from exc
        except botocore_error as exc:
            raise SecretStoreError(
                f"Secrets Manager list_secrets failed for prefix {prefix!r} ({type(exc).__name__})"
            ) from exc
        return entries


# --------------------------------------------------------------------------- factory


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
        return LocalSecretStore(Path(instance_dir) / "secrets.json", clock=clock)
    if choice == "aws":
        if not region_name:
            raise ConfigError("the 'aws' secret store backend needs an AWS region name")
        return AwsSecretStore(region_name, clock=clock)
    raise ConfigError(f"unknown secret store backend {backend!r}; use 'local' or 'aws'")
