"""Moving Interactive Brokers from Plaid to SnapTrade in the browser: the checks, a typed
confirmation, the run going on outside the request, one run per institution on every
surface, and a run whose process stopped.

The service runs a web-started move through an injected ``background``: here a list the
test drains when it chooses, so "the run is still going on" is a state, not a race.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from sandbox import demo
from services.migration.runs import LEASE, MigrationInProgress
from services.models import MigrationRun
from tests.conftest import make_services
from tests.mcp_fixtures import call_tool, error_text
from tests.web_fixtures import csrf_token, logged_in_client, make_app, post

IBKR = "interactive-brokers"
ITEM_REMOVE = "plaid /item/remove"
HOLDINGS = "plaid /investments/holdings/get"


@pytest.fixture
def pending() -> list[Callable[[], None]]:
    return []


@pytest.fixture
def hub(
    tmp_path: Path,
    database_url: str,
    emulator: Any,
    clock: Any,
    pending: list[Callable[[], None]],
) -> Iterator[Any]:
    built = make_services(tmp_path, database_url, emulator, clock, background=pending.append)
    yield built
    built.close()


def run_pending(pending: list[Callable[[], None]]) -> None:
    while pending:
        pending.pop(0)()


def progress(client: Any, run_path: str) -> dict[str, Any]:
    response = client.get(f"{run_path}/progress")
    assert response.status_code == 200
    return dict(response.get_json())


def flashes(page: str) -> list[str]:
    return re.findall(r'<p class="flash [a-z]+"[^>]*>(.*?)</p>', page, re.S)


def institutions_under(hub: Any) -> dict[str, set[str]]:
    view = hub.position_views.answer("by_account", positions_per_account=0)
    return {
        entry["provider"]: {i["institution"] for i in entry["institutions"]}
        for entry in view["providers"]
    }


def test_a_person_moves_ibkr_from_the_browser(
    hub: Any, emulator: Any, pending: list[Callable[[], None]]
) -> None:
    client = logged_in_client(hub)
    hub.positions.get_all_positions()
    assert "Interactive Brokers" in institutions_under(hub)["plaid"]

    page = client.get(f"/migrations/{IBKR}")
    assert page.status_code == 200 and 'id="check-move"' in page.get_data(as_text=True)
    checked = post(client, f"/migrations/{IBKR}/check")
    assert checked.status_code == 303
    run_path = checked.headers["Location"]

    # The checks go on outside the request; the page follows them.
    assert progress(client, run_path)["active"] is True
    assert "migration_progress.js" in client.get(run_path).get_data(as_text=True)
    run_pending(pending)
    plan = progress(client, run_path)
    assert plan["active"] is False and plan["status"] == "planned"
    assert [s["step"] for s in plan["steps"]] == ["gate", "verify_holdings", "dry_run", "plan"]
    plan_page = client.get(run_path).get_data(as_text=True)
    assert 'name="confirm_institution"' in plan_page and "a month" in plan_page
    assert emulator.controls.calls(ITEM_REMOVE) == 0

    # The wrong name moves nothing and starts nothing.
    wrong = post(client, f"{run_path}/execute", {"confirm_institution": "Interactive"})
    assert wrong.headers["Location"].endswith(run_path)
    assert "type the institution" in " ".join(flashes(client.get(run_path).get_data(as_text=True)))
    assert pending == [] and emulator.controls.calls(ITEM_REMOVE) == 0

    moved = post(client, f"{run_path}/execute", {"confirm_institution": " interactive  BROKERS "})
    moved_path = moved.headers["Location"]
    assert moved_path != run_path
    run_pending(pending)
    done = progress(client, moved_path)
    assert done["status"] == "completed", done
    assert emulator.controls.calls(ITEM_REMOVE) == 1

    under = institutions_under(hub)
    assert "Interactive Brokers" not in under["plaid"]
    assert "Interactive Brokers" in under["snaptrade"]
    assert not any("Interactive Brokers" in line for line in hub.costs.report()["waste"])
    listed = client.get("/migrations").get_data(as_text=True)
    assert moved_path in listed and run_path in listed


def test_a_second_tab_or_surface_sees_the_run_in_progress(
    hub: Any, emulator: Any, pending: list[Callable[[], None]]
) -> None:
    client = logged_in_client(hub)
    other_tab = logged_in_client(hub)
    run_path = post(client, f"/migrations/{IBKR}/check").headers["Location"]

    # Another tab opening the institution's page is sent to the same run ...
    assert other_tab.get(f"/migrations/{IBKR}").headers["Location"].endswith(run_path)
    # ... and asking for a new one gets that run, not another.
    again = post(other_tab, f"/migrations/{IBKR}/check")
    assert again.headers["Location"].endswith(run_path)
    assert "already being moved" in " ".join(
        flashes(other_tab.get(run_path).get_data(as_text=True))
    )
    run_id = int(run_path.rsplit("/", 1)[1])
    cli = make_app(hub).test_cli_runner().invoke(args=["migrate-institution", IBKR])
    assert cli.exit_code == 1
    assert f"already being moved (run {run_id})" in cli.stderr
    tool = call_tool(hub, "plan_institution_migration", {"institution": IBKR})
    assert f"run {run_id}" in error_text(tool)
    assert len(pending) == 1  # one run, whoever asked

    run_pending(pending)
    assert progress(client, run_path)["status"] == "planned"
    fresh = post(client, f"/migrations/{IBKR}/check").headers["Location"]
    assert fresh != run_path  # once it ended, a new check may start


def test_checks_whose_process_stopped_are_closed_and_can_run_again(
    hub: Any, clock: Any, emulator: Any, pending: list[Callable[[], None]]
) -> None:
    client = logged_in_client(hub)
    run_path = post(client, f"/migrations/{IBKR}/check").headers["Location"]
    pending.clear()  # the worker stopped before the checks ran
    assert progress(client, run_path)["active"] is True  # its lease still holds

    clock.advance(seconds=LEASE.total_seconds() + 1)
    page = client.get(run_path).get_data(as_text=True)
    assert "abandoned" in page and "Check the move again" in page
    assert emulator.controls.calls(HOLDINGS) == 0
    assert post(client, f"/migrations/{IBKR}/check").headers["Location"] != run_path


def test_a_move_stopped_after_the_removal_is_completed_from_its_page(
    hub: Any, emulator: Any, pending: list[Callable[[], None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = logged_in_client(hub)
    hub.positions.get_all_positions()
    plan_path = post(client, f"/migrations/{IBKR}/check").headers["Location"]
    run_pending(pending)
    store = hub.secret_store

    def killed(*args: Any, **kwargs: Any) -> Any:
        raise SystemExit("the worker was stopped")

    monkeypatch.setattr(store, "schedule_deletion", killed)
    run_path = post(
        client, f"{plan_path}/execute", {"confirm_institution": "Interactive Brokers"}
    ).headers["Location"]
    with pytest.raises(SystemExit):
        run_pending(pending)
    monkeypatch.undo()
    assert emulator.controls.calls(ITEM_REMOVE) == 1

    # The run holds the institution but nobody is running it: its page offers to complete it.
    page = client.get(run_path).get_data(as_text=True)
    assert "Complete the move" in page and "migration_progress.js" not in page
    assert client.get(f"/migrations/{IBKR}").headers["Location"].endswith(run_path)
    completed = post(client, f"{run_path}/execute", {"confirm_institution": "Interactive Brokers"})
    assert completed.headers["Location"].endswith(run_path)  # the same run, completed
    run_pending(pending)
    done = progress(client, run_path)
    assert done["status"] == "completed"
    assert [s["step"] for s in done["steps"]][-4:] == [
        "resume",
        "execute",
        "resync",
        "verify_after",
    ]


def test_the_database_holds_one_active_run_per_institution(hub: Any) -> None:
    runs = hub.migrations._runs
    report = hub.migrations._new_report(IBKR, "plaid", "snaptrade", False, 0.0)
    first = runs.open(report)
    with pytest.raises(MigrationInProgress) as held:
        runs.open(report)
    assert held.value.run_id == first
    # Even a writer that skips the service cannot add a second active run.
    now = hub.clock()
    row = {
        "user_id": runs._user_id(),
        "institution_slug": IBKR,
        "source_provider": "plaid",
        "target_provider": "snaptrade",
        "status": "executing",
        "executed": True,
        "report": json.dumps({}),
        "created_at": now,
        "updated_at": now,
    }
    with pytest.raises(IntegrityError), hub.engine.begin() as conn:
        conn.execute(insert(MigrationRun).values(**row))
    with hub.engine.begin() as conn:  # a finished run beside it is fine
        conn.execute(insert(MigrationRun).values(**{**row, "status": "completed"}))


def test_a_confirmation_needs_the_login_and_the_form_token(
    hub: Any, emulator: Any, pending: list[Callable[[], None]]
) -> None:
    client = logged_in_client(hub)
    plan_path = post(client, f"/migrations/{IBKR}/check").headers["Location"]
    run_pending(pending)
    forged = client.post(
        f"{plan_path}/execute", data={"confirm_institution": "Interactive Brokers"}
    )
    assert forged.status_code in (400, 403)
    stranger = make_app(hub).test_client()
    token = csrf_token(stranger)
    anonymous = stranger.post(
        f"{plan_path}/execute",
        data={"confirm_institution": "Interactive Brokers", "csrf_token": token},
    )
    assert anonymous.status_code in (302, 303, 401) and pending == []
    assert emulator.controls.calls(ITEM_REMOVE) == 0
    assert demo.DEMO_USER_EMAIL not in anonymous.get_data(as_text=True)
