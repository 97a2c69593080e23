"""The local secret store: one JSON file (mode 0600), for the embedded default and one host."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import stat
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core.errors import SecretNotFound, SecretScheduledForDeletion, SecretStoreUnavailable
from core.redaction import register_secret
from core.secret_store import (
    DEFAULT_RECOVERY_DAYS,
    Clock,
    SecretDescription,
    SecretStore,
    as_utc,
    checked_name,
    checked_prefix,
    checked_recovery_days,
    checked_value,
    scheduled_message,
    utc_now,
)

logger = logging.getLogger(__name__)


class LocalSecretStore(SecretStore):
    """Secrets in one JSON file, safe for concurrent processes on one host.

    Every operation holds an exclusive ``flock`` on a sidecar lock file for its whole
    read-modify-write, so two processes (e.g. the Flask app and the MCP server) cannot lose
    each other's writes. The data file is never locked itself because it is replaced, not
    rewritten: each write goes to a 0600 temp file in the same directory, is fsynced and then
    ``os.replace``-d in, so a crash leaves either the old or the new file, never half of one.

    A file that cannot be read, parsed or written makes every operation raise
    :class:`SecretStoreUnavailable`; its message names the file as people know it, never
    its absolute path (that is logged at DEBUG only). Building the store never raises for
    that: the first operation does, so a broken file cannot stop a process from starting.
    """

    _FORMAT_VERSION = 1

    def __init__(
        self,
        path: str | os.PathLike[str],
        clock: Clock | None = None,
        *,
        shown_as: str | None = None,
    ) -> None:
        self._path = Path(path)
        self._shown_as = shown_as or self._path.name  # in messages: never the folder
        self._lock_path = self._path.with_name(self._path.name + ".lock")
        self._clock: Clock = clock or utc_now
        self._prepared = False
        try:
            self._prepare()
        except SecretStoreUnavailable as exc:
            logger.debug("secret store not usable yet: %s", exc.message)

    def _prepare(self) -> None:
        """A 0700 folder, and a 0600 file in it (made empty when missing); once."""
        folder = self._path.parent
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = os.stat(folder)
            if info.st_uid == os.getuid() and info.st_mode & 0o077:
                # Made by an older version (0755): the folder of the secrets is the owner's.
                os.chmod(folder, 0o700)
                logger.info("the folder of the secret file was open to others; now 700")
        except OSError as exc:
            raise self._unavailable("cannot create the folder of the secret file") from exc
        with self._locked():
            if os.path.lexists(self._path):
                self._enforce_private_mode()
            else:
                self._write({})
        self._prepared = True

    def _unavailable(self, problem: str) -> SecretStoreUnavailable:
        """``problem`` about the file, naming it as people know it (the full path: DEBUG log)."""
        logger.debug("%s: %s", problem, self._path)
        return SecretStoreUnavailable(f"{problem}: {self._shown_as}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={str(self._path)!r})"

    # -- public API

    def put(self, name: str, value: str) -> None:
        checked_name(name)
        checked_value(value)
        register_secret(value)  # a value written here is a credential: mask it from now on
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
                raise SecretScheduledForDeletion(scheduled_message(name))
            record["value"] = value
            record["updated_at"] = now.isoformat()
            logger.info("secret updated: %s", name)

    def get(self, name: str) -> str:
        checked_name(name)
        with self._transaction() as secrets:
            value = str(self._live_record(secrets, name)["value"])
        register_secret(value)
        return value

    def list_names(self, prefix: str) -> list[str]:
        checked_prefix(prefix)
        with self._transaction() as secrets:
            return sorted(
                name
                for name, record in secrets.items()
                if name.startswith(prefix) and record["scheduled_deletion_at"] is None
            )

    def schedule_deletion(self, name: str, recovery_days: int = DEFAULT_RECOVERY_DAYS) -> datetime:
        checked_name(name)
        checked_recovery_days(recovery_days)
        with self._transaction() as secrets:
            record = self._live_record(secrets, name)
            deletion_at = self._now() + timedelta(days=recovery_days)
            record["scheduled_deletion_at"] = deletion_at.isoformat()
        logger.info("secret scheduled for deletion at %s: %s", deletion_at.isoformat(), name)
        return deletion_at

    def restore(self, name: str) -> None:
        checked_name(name)
        with self._transaction() as secrets:
            record = secrets.get(name)
            if record is None:
                raise SecretNotFound(f"no secret named {name!r} to restore")
            if record["scheduled_deletion_at"] is None:
                return
            record["scheduled_deletion_at"] = None
        logger.info("secret restored: %s", name)

    def exists(self, name: str) -> bool:
        checked_name(name)
        with self._transaction() as secrets:
            record = secrets.get(name)
            return record is not None and record["scheduled_deletion_at"] is None

    def describe(self, name: str) -> SecretDescription:
        checked_name(name)
        with self._transaction() as secrets:
            record = secrets.get(name)
            if record is None:
                raise SecretNotFound(f"no secret named {name!r}")
            return {
                "name": name,
                "scheduled_deletion_at": _parse_optional_datetime(record["scheduled_deletion_at"]),
            }

    def list_scheduled(self, prefix: str) -> list[str]:
        checked_prefix(prefix)
        with self._transaction() as secrets:
            return sorted(
                name
                for name, record in secrets.items()
                if name.startswith(prefix) and record["scheduled_deletion_at"] is not None
            )

    # -- internals

    def _now(self) -> datetime:
        return as_utc(self._clock())

    @staticmethod
    def _live_record(secrets: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
        record = secrets.get(name)
        if record is None:
            raise SecretNotFound(f"no secret named {name!r}")
        if record["scheduled_deletion_at"] is not None:
            raise SecretScheduledForDeletion(scheduled_message(name))
        return record

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the cross-process lock. A fresh descriptor per call also serialises threads."""
        try:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise self._unavailable("cannot open the lock file of the secret file") from exc
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
        if not self._prepared:
            self._prepare()
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
            raise self._unavailable("cannot open the secret file") from exc
        try:
            with os.fdopen(fd, "r", encoding="utf-8") as handle:
                document = json.load(handle)
        except (OSError, ValueError) as exc:
            # ValueError covers JSON and UTF-8 errors; their text is not repeated on purpose.
            raise self._unavailable("the secret file is unreadable or not valid JSON") from exc
        secrets = document.get("secrets") if isinstance(document, dict) else None
        if not isinstance(secrets, dict):
            raise self._unavailable("the secret file does not have the expected layout")
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
            raise self._unavailable("cannot write the secret file") from exc
        finally:
            if tmp_name is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp_name)

    def _enforce_private_mode(self) -> None:
        """Make sure the existing file is a regular file readable by its owner only."""
        try:
            info = os.lstat(self._path)
        except OSError as exc:
            raise self._unavailable("cannot inspect the secret file") from exc
        if not stat.S_ISREG(info.st_mode):
            raise self._unavailable("the secret file is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode != 0o600:
            logger.warning("secret file %s had mode %o; tightening it to 600", self._path, mode)
            try:
                os.chmod(self._path, 0o600)
            except OSError as exc:
                raise self._unavailable(
                    f"the secret file has mode {mode:o} and cannot be changed to 600"
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
