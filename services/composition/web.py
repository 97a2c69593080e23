"""Builds the web app's login: the password, the brake, the sessions and device cookies."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from core.secret_store import SecretStore
from services.clock import Clock
from services.web_access.auth import PasswordStore, WebAuth, load_or_create_secret_key
from services.web_access.brake import LoginBrake
from services.web_access.devices import DeviceCookies
from services.web_access.sessions import SessionRules, WebSessions
from settings import Settings


def build_web_auth(
    settings: Settings,
    *,
    engine: Engine,
    secret_store: SecretStore,
    user_email: str,
    clock: Clock,
) -> WebAuth:
    rules = SessionRules(
        idle=timedelta(minutes=settings.session_idle_minutes),
        lifetime=timedelta(hours=settings.session_max_hours),
    )
    # The key that signs the session cookie (create_app picks it the same way).
    secret_key = settings.secret_key or load_or_create_secret_key(settings.instance_dir)
    return WebAuth(
        PasswordStore(secret_store, user_email),
        LoginBrake(engine, clock),
        WebSessions(engine, clock, rules),
        DeviceCookies(secret_key, clock),
    )
