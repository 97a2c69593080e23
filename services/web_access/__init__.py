"""Web access: who may use the web app, and for how long.

``auth`` checks the password (stored only as a hash in the secret store); ``brake`` counts
login attempts in the database per address, per account and per known device;
``devices`` signs and reads the device cookie a browser keeps after a successful login;
``sessions`` keeps web sessions server-side so they end on logout, expiry or a new
password, on every worker.

Guarantees: a password is checked only after an attempt was reserved; a flood from
elsewhere never locks out a browser that has logged in before, nor the terminal.
"""

from services.web_access.auth import PasswordStore, WebAuth, load_or_create_secret_key
from services.web_access.brake import LoginBrake, TooManyLoginAttempts
from services.web_access.devices import DeviceCookies
from services.web_access.sessions import SessionRules, WebSessions

__all__ = [
    "DeviceCookies",
    "LoginBrake",
    "PasswordStore",
    "SessionRules",
    "TooManyLoginAttempts",
    "WebAuth",
    "WebSessions",
    "load_or_create_secret_key",
]
