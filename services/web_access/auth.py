"""Who may use the web app: one person, one password, and a brake on guessing.

The web app shows every account the person has and can link new ones, so it has
one user (``DEFAULT_USER_EMAIL``) with a password. Only a salted hash of it is
kept, in the secret store at ``app/password_hash/<email>`` (the same store as
the provider credentials, never the database), set with
``flask --app app set-password``. In emulator mode ``flask --app app demo-login``
makes up a demo password the first time and prints it; that demo password is
kept at ``app/demo_password/<email>`` so each ``make run`` can print it again.

Password checks go through the login brake (``services.web_access.brake``: counted in
the database), and a successful login starts a server-side session
(``services.web_access.sessions``) and gives the browser a device cookie
(``services.web_access.devices``); a new password ends every session. A browser that
brings its device cookie spends only its own attempts, so guesses from elsewhere cannot
lock its owner out; the terminal (``confirm-trade``) has its own budget too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import tempfile
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash

from core.errors import BrokerageHubError, InvalidInput, SecretStoreError
from core.secret_store import SecretStore
from services.web_access.brake import LoginBrake
from services.web_access.devices import DeviceCookies
from services.web_access.sessions import WebSessions

log = logging.getLogger(__name__)

# Names of secrets, not credentials.
PASSWORD_HASH_PREFIX = "app/password_hash/"  # noqa: S105
DEMO_PASSWORD_PREFIX = "app/demo_password/"  # noqa: S105
SECRET_KEY_FILE = "secret_key"  # noqa: S105 (a file name)

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024  # hashing a megabyte "password" is a cheap way to burn our CPU


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
        return password_ok and _same_email(email, self.user_email)

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


def _same_email(entered: str, account: str) -> bool:
    return secrets.compare_digest(entered.strip().lower().encode(), account.lower().encode())


# --- the web app's login, as one service ----------------------------------------------


class WebAuth:
    """A login attempt: reserved under the brake, checked against the password, and a
    session started for it; a new password ends every session."""

    def __init__(
        self,
        passwords: PasswordStore,
        brake: LoginBrake,
        sessions: WebSessions,
        devices: DeviceCookies,
    ) -> None:
        self.passwords = passwords
        self.brake = brake
        self.sessions = sessions
        self.devices = devices

    @property
    def user_email(self) -> str:
        return self.passwords.user_email

    def has_password(self) -> bool:
        return self.passwords.has_password()

    def login(
        self, email: str, password: str, *, client: str, device_cookie: str | None = None
    ) -> str | None:
        """A new session id for the right email and password, else None.

        ``client`` is the address; ``device_cookie`` what the browser brought. A valid
        device cookie for the entered account spends that device's budget only; without
        one the address's and the account's limits for unknown devices apply. Raises
        TooManyLoginAttempts (before any check) while the brake holds."""
        device = None
        if _same_email(email, self.user_email):
            device = self.devices.device_of(device_cookie, self.user_email)
        if device is None:
            attempt = self.brake.reserve(client, self.user_email)
        else:
            attempt = self.brake.reserve_device(device, self.user_email)
        if self.passwords.verify(email, password):
            self.brake.succeeded(attempt)
            return self.sessions.start(self.user_email)
        self.brake.failed(attempt)
        log.warning("failed web login from %s", client if device is None else "a known device")
        return None

    def new_device_cookie(self) -> str:
        """A device cookie for a browser that has just logged in (a new one every login)."""
        return self.devices.issue(self.user_email)

    def is_the_person(self, password: str, *, terminal: str) -> bool:
        """Whether ``password`` is the web password, typed at the server's terminal by the
        user ``terminal``: braked like a login, on that terminal's own budget (a command
        that confirms orders must not be a way to guess it faster, nor be stopped by web
        guesses)."""
        attempt = self.brake.reserve_terminal(terminal, self.user_email)
        if self.passwords.verify(self.user_email, password):
            self.brake.succeeded(attempt)
            return True
        self.brake.failed(attempt)
        log.warning("wrong web password given at the terminal of user %s", terminal)
        return False

    def set_password(self, password: str) -> None:
        """Replace the password and end every session that began with the old one."""
        self.passwords.set_password(password)
        self.sessions.end_all(self.user_email)


# --- the key that signs session cookies -----------------------------------------------


def load_or_create_secret_key(instance_dir: Path) -> str:
    """The key in ``instance_dir/secret_key``, made (random, mode 0600) on first use.

    A key made up per process would log everybody out on every restart and
    would differ between worker processes.
    """
    path = Path(instance_dir) / SECRET_KEY_FILE
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
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
        # The file's name only: a message may reach a page, and paths do not belong there.
        raise BrokerageHubError(
            f"{SECRET_KEY_FILE} in INSTANCE_DIR holds no usable key: delete it and start again"
        )
    return key
