"""``/readyz`` says whether the app can serve people now, naming the check that fails.

``/healthz`` stays a liveness probe (the process answers). ``/readyz`` checks the
database (``SELECT 1``), its schema (the newest migration) and the secret store (a
read), needs no login, and never quotes a path, a host or a secret.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.composition import build_services
from tests.conftest import FakeClock, make_settings
from tests.web_fixtures import make_app

ALL_OK = {"database": "ok", "schema": "ok", "secret_store": "ok"}


def test_a_ready_app_says_so_without_a_login(services: Any) -> None:
    answer = make_app(services).test_client().get("/readyz")

    assert answer.status_code == 200
    assert answer.get_json() == {"ready": True, "checks": ALL_OK, "failing": []}


def test_a_schema_that_is_behind_is_named_with_what_to_run(tmp_path: Path) -> None:
    # Outside the embedded default nothing migrates by itself (no provider on the emulator).
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'empty.db'}",
        PLAID_ENV="disabled",
        SNAPTRADE_ENV="disabled",
        PUBLIC_BASE_URL="https://hub.example.com",
    )
    hub = build_services(settings, clock=FakeClock())
    try:
        answer = make_app(hub).test_client().get("/readyz")
    finally:
        hub.close()

    assert answer.status_code == 503
    body = answer.get_json()
    assert body["ready"] is False
    assert body["failing"] == ["schema"]
    assert body["checks"]["database"] == "ok"
    assert "flask --app app migrate" in body["checks"]["schema"]
    assert str(tmp_path) not in answer.get_data(as_text=True)


def test_an_unreadable_secret_store_is_named_without_its_path(services: Any) -> None:
    secrets_file = Path(services.settings.instance_dir) / "secrets.json"
    secrets_file.write_text("not json")

    answer = make_app(services).test_client().get("/readyz")

    assert answer.status_code == 503
    assert answer.headers["Retry-After"]
    body = answer.get_json()
    assert body["failing"] == ["secret_store"]
    assert body["checks"]["secret_store"].endswith("secrets.json in INSTANCE_DIR")
    assert str(services.settings.instance_dir) not in answer.get_data(as_text=True)


def test_the_liveness_probe_stays_ok_when_readiness_fails(services: Any) -> None:
    (Path(services.settings.instance_dir) / "secrets.json").write_text("not json")
    client = make_app(services).test_client()

    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").get_json() == {"status": "ok"}
