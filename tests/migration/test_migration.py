"""Moving Interactive Brokers from Plaid to SnapTrade: the user's scenario and every failure."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from core.secret_names import plaid_token_name
from sandbox import data as demo_data
from sandbox import demo

IBKR = "interactive-brokers"
HOLDINGS = "plaid /investments/holdings/get"
ITEM_REMOVE = "plaid /item/remove"
EMAIL = demo.DEMO_USER_EMAIL
IBKR_SECRET = plaid_token_name(EMAIL, IBKR)
MERRILL_SECRET = plaid_token_name(EMAIL, "merrill-lynch")


@pytest.fixture(params=["local", "aws"])
def hub(
    request: pytest.FixtureRequest, services: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """The service layer with the local secret file, or with Secrets Manager under moto."""
    if request.param == "local":
        yield services
        return
    from moto import mock_aws

    from providers.secret_stores import AwsSecretStore

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        services.__dict__["secret_store"] = AwsSecretStore("us-east-1")
        services.seed_demo_user()  # the demo tokens, now in Secrets Manager
        yield services


def before_state(hub: Any) -> dict[str, Any]:
    view = hub.position_views.answer("full")
    return {
        "rows": sorted(
            (p["provider"], p["institution"], p["ticker"] or "", p["quantity"])
            for p in view["positions"]
        ),
        "tokens": hub.secret_store.list_names(f"plaid/access_token/{EMAIL}/"),
        "totals": view["totals"],
        "overlaps": view["overlaps"],
    }


def test_the_users_scenario_moves_ibkr_and_keeps_the_totals(hub: Any, emulator: Any) -> None:
    before = before_state(hub)
    assert [o["institution"] for o in before["overlaps"]] == ["Interactive Brokers"]
    assert before["tokens"] == [IBKR_SECRET, MERRILL_SECRET]

    plan = hub.migrations.migrate(IBKR)
    assert plan["status"] == "planned", plan
    assert [s["step"] for s in plan["steps"]] == ["gate", "verify_holdings", "dry_run", "plan"]
    assert plan["monthly_saving_usd"] == hub.settings.plaid_item_monthly_usd
    # the dry run changed nothing
    assert emulator.controls.calls(ITEM_REMOVE) == 0
    assert before_state(hub) == before

    done = hub.migrations.migrate(IBKR, execute=True)
    assert done["status"] == "completed", done
    assert [s["step"] for s in done["steps"]] == [
        "gate",
        "verify_holdings",
        "dry_run",
        "execute",
        "resync",
        "verify_after",
    ]
    view = hub.position_views.answer("full")
    by_provider = {
        provider: {p["institution"] for p in view["positions"] if p["provider"] == provider}
        for provider in ("plaid", "snaptrade")
    }
    assert by_provider == {
        "plaid": {"Merrill Lynch"},
        "snaptrade": {"Interactive Brokers", "Charles Schwab"},
    }
    assert view["overlaps"] == []
    assert view["totals"] == before["totals"]
    assert hub.secret_store.list_names(f"plaid/access_token/{EMAIL}/") == [MERRILL_SECRET]
    # the Item is gone at Plaid...
    assert emulator.controls.calls(ITEM_REMOVE) == 1
    import plaid_loader
    from core.errors import ItemNotFound

    with pytest.raises(ItemNotFound):
        plaid_loader.fetch_plaid_holdings(demo.PLAID_ACCESS_TOKENS[IBKR], hub.plaid_client())
    # ...and its secret is scheduled for deletion, not gone: it can be restored.
    assert hub.secret_store.list_scheduled(f"plaid/access_token/{EMAIL}/") == [IBKR_SECRET]
    hub.secret_store.restore(IBKR_SECRET)
    assert hub.secret_store.get(IBKR_SECRET) == demo.PLAID_ACCESS_TOKENS[IBKR]


def test_a_run_after_success_says_so_and_changes_nothing(services: Any, emulator: Any) -> None:
    assert services.migrations.migrate(IBKR, execute=True)["status"] == "completed"
    calls = emulator.controls.calls()
    again = services.migrations.migrate(IBKR, execute=True)
    assert again["status"] == "already_completed"
    assert "nothing was changed" in again["steps"][0]["summary"]
    assert emulator.controls.calls() == calls


def test_a_failed_plaid_removal_keeps_the_secret_and_reports(hub: Any, emulator: Any) -> None:
    before = before_state(hub)
    emulator.controls.fail(ITEM_REMOVE, "INTERNAL_SERVER_ERROR")
    report = hub.migrations.migrate(IBKR, execute=True)
    assert report["status"] == "failed"
    execute = next(s for s in report["steps"] if s["step"] == "execute")
    assert execute["ok"] is False and "nothing was deleted" in execute["summary"]
    assert hub.secret_store.get(IBKR_SECRET) == demo.PLAID_ACCESS_TOKENS[IBKR]
    assert hub.secret_store.list_scheduled(f"plaid/access_token/{EMAIL}/") == []
    assert before_state(hub)["tokens"] == before["tokens"]


def test_different_holdings_stop_before_anything_is_touched(
    services: Any, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import services.migration.service as migration_steps

    real = migration_steps.load_snaptrade_positions

    def one_position_short(*args: Any, **kwargs: Any) -> list[Any]:
        rows = real(*args, **kwargs)
        return [r for r in rows if r.ticker != "TSLA"]

    monkeypatch.setattr(migration_steps, "load_snaptrade_positions", one_position_short)
    report = services.migrations.migrate(IBKR, execute=True)
    assert report["status"] == "stopped"
    verify = next(s for s in report["steps"] if s["step"] == "verify_holdings")
    assert verify["ok"] is False and "TSLA: missing at snaptrade" in verify["summary"]
    assert emulator.controls.calls(ITEM_REMOVE) == 0
    assert services.secret_store.exists(IBKR_SECRET)


def test_the_same_holdings_in_other_quantities_stop_before_anything_is_touched(
    services: Any, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    import services.migration.service as migration_steps

    real = migration_steps.load_snaptrade_positions

    def one_share_short(*args: Any, **kwargs: Any) -> list[Any]:
        return [
            dataclasses.replace(r, quantity=r.quantity - 1) if r.ticker == "TSLA" else r
            for r in real(*args, **kwargs)
        ]

    monkeypatch.setattr(migration_steps, "load_snaptrade_positions", one_share_short)
    report = services.migrations.migrate(IBKR, execute=True)
    assert report["status"] == "stopped"
    verify = next(s for s in report["steps"] if s["step"] == "verify_holdings")
    assert verify["ok"] is False and "TSLA: plaid" in verify["summary"]
    [row] = [r for r in verify["comparison"]["rows"] if r["holding"] == "TSLA"]
    assert row["snaptrade_quantity"] == row["plaid_quantity"] - 1
    assert emulator.controls.calls(ITEM_REMOVE) == 0
    assert services.secret_store.exists(IBKR_SECRET)


def test_two_matching_secrets_stop_the_run(services: Any, emulator: Any) -> None:
    services.positions.get_all_positions()
    services.secret_store.put(f"{IBKR_SECRET}/second-item", "access-sandbox-another-item-0001")
    report = services.migrations.migrate(IBKR, execute=True)
    assert report["status"] == "stopped"
    dry = next(s for s in report["steps"] if s["step"] == "dry_run")
    assert "several Plaid tokens match" in dry["summary"] and "second-item" in dry["summary"]
    assert emulator.controls.calls(ITEM_REMOVE) == 0


def test_a_similar_name_is_not_a_match(services: Any, emulator: Any) -> None:
    services.positions.get_all_positions()
    services.secret_store.put(
        plaid_token_name(EMAIL, "interactive-brokers-old"), "access-sandbox-old-item-000001"
    )
    report = services.migrations.plan(IBKR)
    dry = next(s for s in report["steps"] if s["step"] == "dry_run")
    assert dry["ok"] is True and dry["summary"].endswith(IBKR_SECRET)


def test_a_disabled_snaptrade_connection_stops_at_the_gate(services: Any, emulator: Any) -> None:
    emulator.controls.disable_connection(demo_data.SNAPTRADE_AUTHORIZATION_IDS[IBKR])
    report = services.migrations.migrate(IBKR, execute=True)
    assert report["status"] == "stopped"
    assert report["steps"][0]["step"] == "gate" and report["steps"][0]["ok"] is False
    assert emulator.controls.calls(ITEM_REMOVE) == 0
    assert emulator.controls.calls(HOLDINGS) == 0


def test_a_failed_merrill_fetch_at_resync_takes_the_fallback(services: Any, emulator: Any) -> None:
    before = before_state(services)
    merrill_rows = [r for r in before["rows"] if r[1] == "Merrill Lynch"]
    emulator.controls.fail(
        HOLDINGS, "INSTITUTION_DOWN", subject=demo.PLAID_ACCESS_TOKENS["merrill-lynch"]
    )
    report = services.migrations.migrate(IBKR, execute=True)
    resync = next(s for s in report["steps"] if s["step"] == "resync")
    assert "refresh failed" in resync["summary"]
    assert "removed" in resync["summary"] and "Interactive Brokers" in resync["summary"]
    rows = sorted(
        (p["provider"], p["institution"], p["ticker"] or "", p["quantity"])
        for p in services.positions.get_cached_positions()
    )
    assert [r for r in rows if r[1] == "Merrill Lynch"] == merrill_rows  # kept, not lost
    assert not [r for r in rows if r[0] == "plaid" and r[1] == "Interactive Brokers"]
    assert report["status"] == "completed", report


def test_a_run_that_died_between_removal_and_secret_deletion_completes_when_run_again(
    hub: Any, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = hub.secret_store
    real_schedule = store.schedule_deletion

    def die(*args: Any, **kwargs: Any) -> Any:
        raise SystemExit("killed")

    monkeypatch.setattr(store, "schedule_deletion", die)
    with pytest.raises(SystemExit):
        hub.migrations.migrate(IBKR, execute=True)
    # the Item is removed at Plaid but its token is still stored and readable
    assert emulator.controls.calls(ITEM_REMOVE) == 1
    assert store.get(IBKR_SECRET) == demo.PLAID_ACCESS_TOKENS[IBKR]
    interrupted = hub.migrations.migrate(IBKR)
    assert interrupted["status"] == "interrupted"
    monkeypatch.setattr(store, "schedule_deletion", real_schedule)
    finished = hub.migrations.migrate(IBKR, execute=True)
    assert finished["status"] == "completed", finished
    steps = [step["step"] for step in finished["steps"]]
    # The interrupted run's own steps, then the rest of it.
    assert steps[steps.index("resume") :] == ["resume", "execute", "resync", "verify_after"]
    assert finished["run_id"] == interrupted["run_id"]
    assert store.list_scheduled(f"plaid/access_token/{EMAIL}/") == [IBKR_SECRET]
    assert emulator.controls.calls(ITEM_REMOVE) == 2  # the second answered ITEM_NOT_FOUND


def test_every_run_and_its_report_is_stored(services: Any) -> None:
    services.migrations.migrate(IBKR)
    services.migrations.migrate(IBKR, execute=True)
    runs = services.migrations.runs()
    assert [r["status"] for r in runs] == ["completed", "planned"]
    assert runs[0]["report"]["steps"][-1]["step"] == "verify_after"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"institution_slug": ""}, "institution is required"),
        ({"institution_slug": IBKR, "source": "snaptrade", "target": "plaid"}, "not supported"),
        ({"institution_slug": IBKR, "target": "robinhood"}, "allowed values are plaid"),
        ({"institution_slug": IBKR, "tolerance": 2.0}, "tolerance"),
    ],
)
def test_bad_arguments_are_refused_before_any_call(
    services: Any, emulator: Any, kwargs: dict[str, Any], message: str
) -> None:
    from core.errors import InvalidInput

    slug = kwargs.pop("institution_slug")
    with pytest.raises(InvalidInput, match=message):
        services.migrations.migrate(slug, **kwargs)
    assert emulator.controls.calls() == 0


def test_cost_report_before_and_after_the_migration(hub: Any) -> None:
    settings = hub.settings
    hub.positions.get_all_positions()
    before = hub.costs.report()
    assert before["plaid"]["billable_items"] == 2
    assert before["snaptrade"]["connected_users"] == 1
    assert before["estimated_monthly_usd"] == pytest.approx(
        2 * settings.plaid_item_monthly_usd + settings.snaptrade_user_monthly_usd
    )
    assert any("linked through both" in w for w in before["waste"])
    assert before["calls_by_day"]
    hub.migrations.migrate(IBKR, execute=True)
    after = hub.costs.report()
    assert after["plaid"]["billable_items"] == 1
    assert after["estimated_monthly_usd"] == pytest.approx(
        settings.plaid_item_monthly_usd + settings.snaptrade_user_monthly_usd
    )
    assert after["waste"] == []


def test_a_token_scheduled_for_deletion_without_item_removal_is_flagged(services: Any) -> None:
    services.positions.get_all_positions()
    services.secret_store.schedule_deletion(IBKR_SECRET)
    report = services.costs.report()
    assert report["plaid"]["billable_items"] == 2
    assert any("never removed at Plaid" in w for w in report["waste"])


def test_the_plan_tool_is_read_only_and_explains(services: Any, emulator: Any) -> None:
    from tests.mcp_fixtures import call_tool, payload

    data = payload(call_tool(services, "plan_institution_migration", {"institution": IBKR}))
    assert data["status"] == "planned"
    assert emulator.controls.calls(ITEM_REMOVE) == 0
    costs = payload(call_tool(services, "get_provider_costs", {}))
    assert costs["plaid"]["billable_items"] == 2


def test_cli_migrate_institution_prints_each_step_and_needs_execute(services: Any) -> None:
    import json

    from app import create_app

    app = create_app({"TESTING": True}, services=services)
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["migrate-institution", IBKR, "--from", "plaid", "--to", "snaptrade"]
    )
    assert result.exit_code == 0, result.output
    assert "[ok] gate:" in result.output and "--execute" in result.output
    assert services.secret_store.exists(IBKR_SECRET)
    result = runner.invoke(args=["costs"])
    assert result.exit_code == 0
    assert json.loads(result.output)["plaid"]["billable_items"] == 2
