"""Who may use the web app: one person, one password, and a brake on guessing.

The web app shows every account the person has and can link new ones, so it has
one user (``DEFAULT_USER_EMAIL``) with a password. Only a salted hash of it is
kept, in the secret store at ``app/password_hash/<email>`` (the same store as
the provider credentials, never the database), set with
``flask --app app set-password``. In emulator mode ``flask --app app demo-login``
makes up a demo password the first time and prints it; that demo password is
kept at ``app/demo_password/<email>`` so each ``make run`` can print it again.

Failed logins are rate limited per client address and in total, so a script
cannot try passwords faster than a person would.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import tempfile
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash

from core.errors import BrokerageHubError, InvalidInput, SecretStoreError
from services.secret_store import SecretStore

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# Names of secrets, not credentials.
PASSWORD_HASH_PREFIX = "app/password_hash/"  # noqa: S105
DEMO_PASSWORD_PREFIX = "app/demo_password/"  # noqa: S105
SECRET_KEY_FILE = "secret_key"  # noqa: S105 (a file name)

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024  # hashing a megabyte "password" is a cheap way to burn our CPU


class TooManyLoginAttempts(BrokerageHubError):
    kind = "too_many_login_attempts"
    http_status = 429

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(
            f"too many failed logins: try again in {retry_after_seconds} seconds",
        )
        self.retry_after_seconds = retry_after_seconds


def password_hash_name(user_email: str) -> str:
    return PASSWORD_HASH_PREFIX + _checked_email(user_email)


def demo_password_name(user_email: str) -> str:
    return DEMO_PASSWORD_PREFIX + _checked_email(user_email)


def _checked_email(user_email: str) -> str:
    if not user_email or "/" in user_email:
        raise InvalidInput("the user email must be non-empty and contain no '/'", field="email")
    return user_email


def _checked_new_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"the password must be at least {MIN_PASSWORD_LENGTH} characters long",
            field="password",
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            f"the password must be at most {MAX_PASSWORD_LENGTH} characters long",
            field="password",
        )
    return password


# --- the password -------------------------------------------------------------------


class PasswordStore:
    """The one user's password hash in the secret store."""

    def __init__(self, store: SecretStore, user_email: str) -> None:
        self._store = store
        self.user_email = user_email

    def has_password(self) -> bool:
        return self._store.exists(password_hash_name(self.user_email))

    def set_password(self, password: str) -> None:
        """Replace the password (werkzeug's salted scrypt hash; the password is not kept)."""
        hashed = generate_password_hash(_checked_new_password(password))
        self._store.put(password_hash_name(self.user_email), hashed)
        log.info("web password set for %s", self.user_email)

    def verify(self, email: str, password: str) -> bool:
        """Whether ``email`` is the user and ``password`` is theirs (False if none is set)."""
        if not isinstance(password, str) or len(password) > MAX_PASSWORD_LENGTH:
            return False
        name = password_hash_name(self.user_email)
        try:
            stored = self._store.get(name) if self._store.exists(name) else None
        except SecretStoreError:
            stored = None
        if stored is None:
            # Spend the same time as a real check, so timing does not tell whether one is set.
            check_password_hash(_DUMMY_HASH, password)
            return False
        # Check the password even for a wrong email: the answer takes as long either way.
        password_ok = check_password_hash(stored, password)
        return password_ok and secrets.compare_digest(
            email.strip().lower().encode(), self.user_email.lower().encode()
        )

    def ensure_demo_password(self) -> str | None:
        """The demo password (made up and stored the first time); None once it was replaced.

        Only for emulator mode: the caller checks that. Once ``set-password``
        has replaced the password, the old demo password no longer matches and
        is not shown.
        """
        demo_name = demo_password_name(self.user_email)
        if not self.has_password():
            password = secrets.token_urlsafe(12)
            self._store.put(demo_name, password)
            self.set_password(password)
            return password
        if not self._store.exists(demo_name):
            return None
        password = self._store.get(demo_name)
        return password if self.verify(self.user_email, password) else None


_DUMMY_HASH = generate_password_hash(secrets.token_urlsafe(16))


# --- the brake on guessing ----------------------------------------------------------


@dataclass
class LoginRateLimiter:
    """At most ``per_client`` failures per client address and ``overall`` in total per window.

    Kept in memory: the web app is one process for one person. A success does
    not clear the overall count, so one right guess does not reset the brake for
    everybody else.
    """

    clock: Clock
    per_client: int = 5
    overall: int = 20
    window: timedelta = timedelta(minutes=15)
    _failures: dict[str, deque[datetime]] = field(default_factory=dict, repr=False)
    _all_failures: deque[datetime] = field(default_factory=deque, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def check(self, client: str) -> None:
        """Raise :class:`TooManyLoginAttempts` while this client (or everyone) must wait."""
        with self._lock:
            now = self.clock()
            waits = [
                self._wait(self._failures.get(client, deque()), self.per_client, now),
                self._wait(self._all_failures, self.overall, now),
            ]
        wait = max(waits)
        if wait > 0:
            raise TooManyLoginAttempts(wait)

    def record_failure(self, client: str) -> None:
        with self._lock:
            now = self.clock()
            self._failures.setdefault(client, deque()).append(now)
            self._all_failures.append(now)
            self._forget_old(now)

    def record_success(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)

    def _wait(self, failures: deque[datetime], limit: int, now: datetime) -> int:
        recent = [moment for moment in failures if now - moment < self.window]
        if len(recent) < limit:
            return 0
        # Wait until the oldest failure that counts towards the limit leaves the window.
        oldest_counting = recent[-limit]
        return max(1, int((oldest_counting + self.window - now).total_seconds() + 0.999))

    def _forget_old(self, now: datetime) -> None:
        for key in list(self._failures):
            kept = deque(m for m in self._failures[key] if now - m < self.window)
            if kept:
                self._failures[key] = kept
            else:
                del self._failures[key]
        while self._all_failures and now - self._all_failures[0] >= self.window:
            self._all_failures.popleft()


# --- the web app's login, as one service ----------------------------------------------


class WebAuth:
    """Checks a login attempt against the password, under the rate limit."""

    def __init__(self, passwords: PasswordStore, limiter: LoginRateLimiter) -> None:
        self.passwords = passwords
        self.limiter = limiter

    @property
    def user_email(self) -> str:
        return self.passwords.user_email

    def has_password(self) -> bool:
        return self.passwords.has_password()

    def login(self, email: str, password: str, *, client: str) -> bool:
        """True for the right email and password; raises TooManyLoginAttempts while braked."""
        self.limiter.check(client)
        if self.passwords.verify(email, password):
            self.limiter.record_success(client)
            return True
        self.limiter.record_failure(client)
        log.warning("failed web login from %s", client)
        return False


# --- the key that signs session cookies -----------------------------------------------


def load_or_create_secret_key(instance_dir: Path) -> str:
    """The key in ``instance_dir/secret_key``, made (random, mode 0600) on first use.

    A key made up per process would log everybody out on every restart and
    would differ between worker processes.
    """
    path = Path(instance_dir) / SECRET_KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Written in full to a private temp file, then linked into place: a second
        # process starting at the same moment reads a whole key, never half of one.
        fd, tmp_name = tempfile.mkstemp(prefix=".secret_key.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(secrets.token_hex(32) + "\n")
            with contextlib.suppress(FileExistsError):
                os.link(tmp_name, path)
        finally:
            os.unlink(tmp_name)
    key = path.read_text(encoding="utf-8").strip()
    if len(key) < 32:
        raise BrokerageHubError(f"{path} holds no usable key: delete it and start again")
    return key
