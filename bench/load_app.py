"""The web app as the load run serves it: its environment, the password it is logged in
with, and ``gunicorn 'app:create_app()'`` with every worker ready."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.load_figures import LoadConfig
from bench.processes import Child, EmulatorAdmin, HarnessError


def app_environment(
    database_url: str, instance: Path, emulator: EmulatorAdmin, secret_key: str
) -> dict[str, str]:
    from sandbox import demo

    env = {
        key: value
        for key, value in os.environ.items()
        # The harness decides these; whatever the caller's shell says is dropped.
        if not key.startswith(("PLAID_", "SNAPTRADE_", "SECRETS_", "DATABASE_", "PROVIDER_"))
    }
    # Every setting the run depends on is set here, also to its default, so a .env
    # file beside settings.py (read with override=False) cannot change the experiment.
    env.update(
        DATABASE_URL=database_url,
        INSTANCE_DIR=str(instance),
        DEFAULT_USER_EMAIL=demo.DEMO_USER_EMAIL,
        PLAID_ENV="emulator",
        SNAPTRADE_ENV="emulator",
        PLAID_BASE_URL=emulator.plaid_url,
        SNAPTRADE_BASE_URL=emulator.snaptrade_url,
        PLAID_CLIENT_ID="",
        PLAID_SECRET="",
        SNAPTRADE_CLIENT_ID="",
        SNAPTRADE_CONSUMER_KEY="",
        PLAID_CACHE_HOURS="72",
        SNAPTRADE_CACHE_HOURS="24",
        PROVIDER_TIMEOUT_SECONDS="20",
        PROVIDER_RETRY_ATTEMPTS="3",
        SECRETS_BACKEND="local",
        SECRET_KEY=secret_key,
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    return env


def set_password(python: str, env: dict[str, str], password: str, timeout: float) -> None:
    """``flask --app app set-password`` with the password in its environment (not argv)."""
    child = Child(
        "set-password",
        [python, "-m", "flask", "--app", "app", "set-password"],
        {**env, "BROKERAGE_HUB_NEW_PASSWORD": password},
    )
    try:
        child.wait_for_line(r"^password set for ", timeout)
        if child.process.wait(timeout=timeout) != 0:
            raise HarnessError(f"set-password failed:\n{child.tail()}")
    finally:
        child.stop()


@contextmanager
def gunicorn(python: str, env: dict[str, str], config: LoadConfig) -> Iterator[str]:
    """``gunicorn 'app:create_app()'`` on 127.0.0.1 (a free port); yields its base URL."""
    args = [
        python,
        "-m",
        "gunicorn",
        "--bind",
        "127.0.0.1:0",  # the kernel picks a free port; gunicorn prints which
        "--workers",
        str(config.workers),
        "--worker-class",
        config.worker_class,
        "--timeout",
        "60",
        "--graceful-timeout",
        "5",
        "--no-control-socket",
        "--config",
        "python:bench.gunicorn_conf",
        "app:create_app()",
    ]
    if config.worker_class == "gthread":
        args[-1:-1] = ["--threads", str(config.threads)]
    child = Child("gunicorn", args, env)
    try:
        (listening,) = child.wait_for_line(
            r"Listening at: (http://127\.0\.0\.1:\d+)", config.boot_timeout
        )
        from bench.gunicorn_conf import READY_LINE

        child.wait_for_line(re.escape(READY_LINE), config.boot_timeout, count=config.workers)
        yield listening.group(1)
    finally:
        child.stop()
