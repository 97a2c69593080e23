"""Tests of services.secret_store.

One contract suite runs against both backends (the local JSON file and AWS Secrets Manager
under moto), so the local store cannot drift from the lifecycle production relies on. Backend
specific tests follow: file permissions, atomicity and purging for the local store; the checks
moto cannot make for us, and the error mapping, for AWS. Time never passes for real: the local
store gets an injected clock.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import stat
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber
from moto import mock_aws

from core.errors import (
    ConfigError,
    InvalidInput,
    SecretNotFound,
    SecretScheduledForDeletion,
    SecretStoreError,
    SecretStoreUnavailable,
)
from core.secret_names import (
    PLAID_TOKEN_PREFIX,
    plaid_token_name,
    plaid_tokens_prefix,
    snaptrade_user_secret_name,
)
from core.secret_store import SecretStore
from providers.secret_stores import AwsSecretStore, LocalSecretStore, build_secret_store

REGION = "us-east-1"
TOKEN = "access-sandbox-7f3c1e2a-TOKEN-VALUE"  # distinctive, so leaks are easy to grep for
OTHER_TOKEN = "access-sandbox-9b8a7c6d-OTHER-VALUE"

A_MERRILL = plaid_token_name("a@x.com", "merrill-lynch")
A_IBKR = plaid_token_name("a@x.com", "interactive-brokers")
A_IBKR_OLD = plaid_token_name("a@x.com", "interactive-brokers-old")
B_MERRILL = plaid_token_name("b@x.com", "merrill-lynch")


class FakeClock:
    """A clock tests move by hand; starts at the real time so moto's dates stay comparable."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """moto with fake credentials, isolated from any real AWS configuration on the machine."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield


@pytest.fixture
def aws_client(aws: None) -> Any:
    return boto3.client("secretsmanager", region_name=REGION)


def calls_to(client: Any, operation: str) -> list[dict[str, Any]]:
    """Record the parameters of every ``operation`` call the client makes."""
    seen: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        seen.append(dict(params))

    client.meta.events.register(f"provide-client-params.secrets-manager.{operation}", record)
    return seen


@pytest.fixture(params=["local", "aws"])
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> SecretStore:
    if request.param == "local":
        return LocalSecretStore(tmp_path / "secrets.json", clock=clock)
    client = request.getfixturevalue("aws_client")
    # A small page size makes ~15 secrets span several list_secrets pages.
    return AwsSecretStore(REGION, client=client, clock=clock, page_size=4)


@pytest.fixture
def local_store(tmp_path: Path, clock: FakeClock) -> LocalSecretStore:
    return LocalSecretStore(tmp_path / "instance" / "secrets.json", clock=clock)


# --------------------------------------------------------------------------- names


def test_secret_names_follow_the_documented_layout() -> None:
    assert (
        plaid_token_name("a@x.com", "merrill-lynch") == "plaid/access_token/a@x.com/merrill-lynch"
    )
    assert plaid_tokens_prefix("a@x.com") == "plaid/access_token/a@x.com/"
    assert snaptrade_user_secret_name("a@x.com") == "snaptrade/user_secret/a@x.com"
    assert A_IBKR.startswith(PLAID_TOKEN_PREFIX)


@pytest.mark.parametrize(
    "slug", ["Merrill-Lynch", "merrill_lynch", "merrill lynch", "-merrill", "merrill-", "a--b", ""]
)
def test_bad_institution_slug_is_rejected_with_the_rule(slug: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        plaid_token_name("a@x.com", slug)
    assert caught.value.field == "institution_slug"
    assert "lowercase letters, digits and single hyphens" in caught.value.message


def test_email_with_a_slash_is_rejected_because_it_would_add_a_path_level() -> None:
    with pytest.raises(InvalidInput) as caught:
        plaid_token_name("a/b@x.com", "merrill-lynch")
    assert caught.value.field == "user_email"
    assert "'/'" in caught.value.message
    with pytest.raises(InvalidInput):
        snaptrade_user_secret_name("a/b@x.com")


@pytest.mark.parametrize("email", ["", "no-at-sign", "a b@x.com", "a@b@x.com", "o'neil@x.com"])
def test_email_outside_secret_name_characters_is_rejected(email: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        snaptrade_user_secret_name(email)
    assert caught.value.field == "user_email"


# --------------------------------------------------------------------------- contract


def test_put_then_get_returns_the_value(store: SecretStore) -> None:
    store.put(A_MERRILL, TOKEN)

    assert store.get(A_MERRILL) == TOKEN
    assert store.exists(A_MERRILL)
    assert store.describe(A_MERRILL) == {"name": A_MERRILL, "scheduled_deletion_at": None}


def test_put_on_a_live_secret_replaces_its_value(store: SecretStore) -> None:
    store.put(A_MERRILL, TOKEN)
    store.put(A_MERRILL, OTHER_TOKEN)

    assert store.get(A_MERRILL) == OTHER_TOKEN
    assert store.list_names(PLAID_TOKEN_PREFIX) == [A_MERRILL]


def test_list_names_is_a_sorted_case_sensitive_prefix_match(store: SecretStore) -> None:
    for name in [
        A_MERRILL,
        A_IBKR_OLD,
        A_IBKR,
        B_MERRILL,
        plaid_token_name("a@x.com.evil", "merrill-lynch"),
        snaptrade_user_secret_name("a@x.com"),
        "Plaid/access_token/a@x.com/merrill-lynch",
        "xplaid/access_token/a@x.com/merrill-lynch",
    ]:
        store.put(name, TOKEN)

    assert store.list_names(plaid_tokens_prefix("a@x.com")) == [A_IBKR, A_IBKR_OLD, A_MERRILL]
    assert store.list_names(plaid_tokens_prefix("b@x.com")) == [B_MERRILL]
    assert store.list_names("snaptrade/") == ["snaptrade/user_secret/a@x.com"]
    # A prefix is a prefix, not a name: callers wanting one secret use get/exists.
    assert store.list_names(A_IBKR) == [A_IBKR, A_IBKR_OLD]
    assert store.list_names(A_IBKR_OLD) == [A_IBKR_OLD]
    assert store.list_names("plaid/access_token/nobody@x.com/") == []


def test_listing_collects_every_page(store: SecretStore) -> None:
    names = [plaid_token_name("a@x.com", f"bank-{i:02d}") for i in range(15)]
    for name in reversed(names):
        store.put(name, TOKEN)

    assert store.list_names(plaid_tokens_prefix("a@x.com")) == names


def test_schedule_deletion_hides_the_secret_and_blocks_reads_and_writes(
    store: SecretStore, clock: FakeClock
) -> None:
    store.put(A_MERRILL, TOKEN)
    store.put(A_IBKR, OTHER_TOKEN)

    deletion_at = store.schedule_deletion(A_MERRILL, recovery_days=7)

    assert deletion_at.tzinfo is not None
    assert abs(deletion_at - (clock() + timedelta(days=7))) < timedelta(minutes=5)
    assert store.describe(A_MERRILL) == {"name": A_MERRILL, "scheduled_deletion_at": deletion_at}
    assert store.list_names(PLAID_TOKEN_PREFIX) == [A_IBKR]
    assert store.list_scheduled(PLAID_TOKEN_PREFIX) == [A_MERRILL]
    assert not store.exists(A_MERRILL)
    with pytest.raises(SecretScheduledForDeletion):
        store.get(A_MERRILL)
    with pytest.raises(SecretScheduledForDeletion, match="restore it first"):
        store.put(A_MERRILL, OTHER_TOKEN)
    with pytest.raises(SecretScheduledForDeletion):
        store.schedule_deletion(A_MERRILL)
    assert store.get(A_IBKR) == OTHER_TOKEN


def test_restore_brings_back_the_original_value(store: SecretStore) -> None:
    store.put(A_MERRILL, TOKEN)
    store.schedule_deletion(A_MERRILL, recovery_days=30)
    with pytest.raises(SecretScheduledForDeletion):
        store.put(A_MERRILL, OTHER_TOKEN)

    store.restore(A_MERRILL)

    assert store.get(A_MERRILL) == TOKEN
    assert store.exists(A_MERRILL)
    assert store.list_names(PLAID_TOKEN_PREFIX) == [A_MERRILL]
    assert store.list_scheduled(PLAID_TOKEN_PREFIX) == []
    assert store.describe(A_MERRILL)["scheduled_deletion_at"] is None


def test_restoring_a_live_secret_changes_nothing(store: SecretStore) -> None:
    store.put(A_MERRILL, TOKEN)
    store.restore(A_MERRILL)
    assert store.get(A_MERRILL) == TOKEN


@pytest.mark.parametrize("recovery_days", [7, 30])
def test_recovery_window_bounds_are_inclusive(store: SecretStore, recovery_days: int) -> None:
    store.put(A_MERRILL, TOKEN)
    store.schedule_deletion(A_MERRILL, recovery_days=recovery_days)
    assert store.list_scheduled(PLAID_TOKEN_PREFIX) == [A_MERRILL]


@pytest.mark.parametrize("recovery_days", [6, 31, 0, -7, True, 7.5])
def test_recovery_window_outside_7_to_30_is_rejected_and_changes_nothing(
    store: SecretStore, recovery_days: Any
) -> None:
    store.put(A_MERRILL, TOKEN)

    with pytest.raises(InvalidInput) as caught:
        store.schedule_deletion(A_MERRILL, recovery_days=recovery_days)

    assert caught.value.field == "recovery_days"
    assert "7 to 30" in caught.value.message
    assert store.get(A_MERRILL) == TOKEN
    assert store.list_scheduled(PLAID_TOKEN_PREFIX) == []


def test_missing_secret_raises_secret_not_found(store: SecretStore) -> None:
    with pytest.raises(SecretNotFound):
        store.get(A_MERRILL)
    with pytest.raises(SecretNotFound):
        store.describe(A_MERRILL)
    with pytest.raises(SecretNotFound):
        store.schedule_deletion(A_MERRILL)
    with pytest.raises(SecretNotFound):
        store.restore(A_MERRILL)
    assert not store.exists(A_MERRILL)


@pytest.mark.parametrize("name", ["", "has space", "semi;colon", "x" * 513])
def test_bad_secret_names_are_rejected_before_any_call(store: SecretStore, name: str) -> None:
    with pytest.raises(InvalidInput):
        store.put(name, TOKEN)
    with pytest.raises(InvalidInput):
        store.get(name)


def test_a_negating_prefix_is_rejected(store: SecretStore) -> None:
    # Secrets Manager reads a leading "!" in a filter value as "NOT this prefix".
    with pytest.raises(InvalidInput):
        store.list_names("!plaid/")


def test_empty_value_is_rejected(store: SecretStore) -> None:
    with pytest.raises(InvalidInput) as caught:
        store.put(A_MERRILL, "")
    assert caught.value.field == "value"
    assert not store.exists(A_MERRILL)


def test_values_never_reach_errors_logs_or_repr(
    store: SecretStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="services.secret_store")
    store.put(A_MERRILL, TOKEN)
    store.put(A_MERRILL, TOKEN)
    store.schedule_deletion(A_MERRILL)
    errors: list[Exception] = []
    for attempt in (
        lambda: store.get(A_MERRILL),
        lambda: store.put(A_MERRILL, TOKEN),
        lambda: store.put("bad name", TOKEN),
    ):
        with pytest.raises(Exception) as caught:
            attempt()
        errors.append(caught.value)
    store.restore(A_MERRILL)

    assert caplog.records, "the lifecycle events are expected to be logged"
    assert TOKEN not in caplog.text
    assert all(TOKEN not in str(error) for error in errors)
    assert TOKEN not in repr(store)


# --------------------------------------------------------------------------- local only


def test_local_file_and_lock_are_private_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        store = LocalSecretStore(tmp_path / "deep" / "dir" / "secrets.json")
        store.put(A_MERRILL, TOKEN)
    finally:
        os.umask(previous)

    path = tmp_path / "deep" / "dir" / "secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "deep" / "dir" / "secrets.json.lock").stat().st_mode) == 0o600


def test_local_store_tightens_an_existing_loose_file(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    LocalSecretStore(path).put(A_MERRILL, TOKEN)
    path.chmod(0o644)

    store = LocalSecretStore(path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert store.get(A_MERRILL) == TOKEN


def test_local_write_is_atomic_when_the_replace_fails(
    local_store: LocalSecretStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    local_store.put(A_MERRILL, TOKEN)
    path = tmp_path / "instance" / "secrets.json"
    before = path.read_bytes()

    def crash(*_: Any, **__: Any) -> None:
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(SecretStoreUnavailable):
        local_store.put(A_MERRILL, OTHER_TOKEN)
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["secrets.json", "secrets.json.lock"]
    assert local_store.get(A_MERRILL) == TOKEN


def test_local_secret_is_purged_once_the_recovery_window_passes(
    local_store: LocalSecretStore, clock: FakeClock, tmp_path: Path
) -> None:
    local_store.put(A_MERRILL, TOKEN)
    deletion_at = local_store.schedule_deletion(A_MERRILL, recovery_days=7)
    assert deletion_at == clock() + timedelta(days=7)

    clock.advance(timedelta(days=7) - timedelta(seconds=1))
    assert local_store.list_scheduled(PLAID_TOKEN_PREFIX) == [A_MERRILL]

    clock.advance(timedelta(seconds=1))
    assert local_store.list_scheduled(PLAID_TOKEN_PREFIX) == []
    assert TOKEN not in (tmp_path / "instance" / "secrets.json").read_text()
    with pytest.raises(SecretNotFound):
        local_store.get(A_MERRILL)
    with pytest.raises(SecretNotFound):
        local_store.restore(A_MERRILL)

    local_store.put(A_MERRILL, OTHER_TOKEN)
    assert local_store.get(A_MERRILL) == OTHER_TOKEN


def _put_many(path: str, worker: int, count: int) -> None:
    store = LocalSecretStore(path)
    for i in range(count):
        store.put(plaid_token_name(f"user{worker}@x.com", f"bank-{i}"), f"value-{worker}-{i}")


def test_local_store_keeps_every_write_from_concurrent_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "secrets.json")
    LocalSecretStore(path)
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_put_many, args=(path, w, 15)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=60)
    assert [process.exitcode for process in workers] == [0, 0, 0, 0]

    assert len(LocalSecretStore(path).list_names(PLAID_TOKEN_PREFIX)) == 60


def test_corrupt_local_file_is_reported_without_its_content(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    LocalSecretStore(path)
    path.write_text('{"secrets": {"' + TOKEN)

    with pytest.raises(SecretStoreUnavailable) as caught:
        LocalSecretStore(path).get(A_MERRILL)
    assert TOKEN not in str(caught.value)
    assert str(tmp_path) not in str(caught.value)  # the file by name, never its folder


def test_local_file_holds_the_documented_layout(
    local_store: LocalSecretStore, tmp_path: Path
) -> None:
    local_store.put(A_MERRILL, TOKEN)
    document = json.loads((tmp_path / "instance" / "secrets.json").read_text())
    assert document["version"] == 1
    assert document["secrets"][A_MERRILL]["value"] == TOKEN
    assert document["secrets"][A_MERRILL]["scheduled_deletion_at"] is None


def test_naive_clock_is_refused(tmp_path: Path) -> None:
    store = LocalSecretStore(tmp_path / "secrets.json", clock=lambda: datetime(2026, 1, 1))
    with pytest.raises(ConfigError):
        store.put(A_MERRILL, TOKEN)


# --------------------------------------------------------------------------- AWS only


def test_aws_put_refuses_a_scheduled_secret_itself(aws_client: Any) -> None:
    """moto accepts put_secret_value on a scheduled secret (AWS refuses): the store must not."""
    store = AwsSecretStore(REGION, client=aws_client)
    store.put(A_MERRILL, TOKEN)
    store.schedule_deletion(A_MERRILL)
    put_value_calls = calls_to(aws_client, "PutSecretValue")

    with pytest.raises(SecretScheduledForDeletion):
        store.put(A_MERRILL, OTHER_TOKEN)

    assert put_value_calls == []
    store.restore(A_MERRILL)
    assert store.get(A_MERRILL) == TOKEN


def test_aws_listing_follows_next_token_with_a_name_filter(aws_client: Any) -> None:
    store = AwsSecretStore(REGION, client=aws_client, page_size=4)
    for i in range(15):
        store.put(plaid_token_name("a@x.com", f"bank-{i:02d}"), TOKEN)
    list_calls = calls_to(aws_client, "ListSecrets")

    assert len(store.list_names(plaid_tokens_prefix("a@x.com"))) == 15

    assert len(list_calls) == 4  # 4 + 4 + 4 + 3
    assert list_calls[0]["Filters"] == [{"Key": "name", "Values": ["plaid/access_token/a@x.com/"]}]
    assert all("NextToken" in params for params in list_calls[1:])


def test_aws_listing_is_exact_even_if_the_service_filter_is_looser(aws_client: Any) -> None:
    store = AwsSecretStore(REGION, client=aws_client)
    for name in (A_MERRILL, B_MERRILL, snaptrade_user_secret_name("a@x.com")):
        store.put(name, TOKEN)

    def drop_filters(params: dict[str, Any], **_: Any) -> None:
        params.pop("Filters", None)  # the service now returns every secret

    aws_client.meta.events.register(
        "provide-client-params.secrets-manager.ListSecrets", drop_filters
    )
    assert store.list_names(plaid_tokens_prefix("a@x.com")) == [A_MERRILL]


def test_aws_schedule_deletion_never_forces(aws_client: Any) -> None:
    store = AwsSecretStore(REGION, client=aws_client)
    store.put(A_MERRILL, TOKEN)
    delete_calls = calls_to(aws_client, "DeleteSecret")

    store.schedule_deletion(A_MERRILL, recovery_days=12)

    assert delete_calls == [{"SecretId": A_MERRILL, "RecoveryWindowInDays": 12}]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("ResourceNotFoundException", SecretNotFound),
        ("InvalidRequestException", SecretScheduledForDeletion),
        ("InvalidParameterException", InvalidInput),
        ("AccessDeniedException", SecretStoreError),
        ("ThrottlingException", SecretStoreError),
        ("InternalServiceError", SecretStoreError),
    ],
)
def test_aws_client_errors_map_to_project_errors_once(code: str, expected: type) -> None:
    client = boto3.client(
        "secretsmanager",
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    stubber = Stubber(client)
    stubber.add_client_error(
        "get_secret_value",
        service_error_code=code,
        service_message=f"Value '{TOKEN}' at 'secretString' failed to satisfy constraint",
        expected_params={"SecretId": A_MERRILL},
    )
    store = AwsSecretStore(REGION, client=client)

    with stubber, pytest.raises(expected) as caught:
        store.get(A_MERRILL)

    assert type(caught.value) is expected
    assert isinstance(caught.value.__cause__, ClientError)
    assert TOKEN not in str(caught.value)
    if expected is SecretStoreError:
        assert code in str(caught.value)


def test_aws_transport_errors_become_secret_store_errors(
    aws_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://secretsmanager.invalid")

    monkeypatch.setattr(aws_client, "get_secret_value", unreachable)
    store = AwsSecretStore(REGION, client=aws_client)

    with pytest.raises(SecretStoreError, match="EndpointConnectionError") as caught:
        store.get(A_MERRILL)
    assert isinstance(caught.value.__cause__, EndpointConnectionError)


def test_aws_repr_names_the_region_only(aws_client: Any) -> None:
    assert (
        repr(AwsSecretStore(REGION, client=aws_client)) == "AwsSecretStore(region_name='us-east-1')"
    )


# --------------------------------------------------------------------------- factory


def test_factory_builds_the_local_store_in_the_instance_dir(tmp_path: Path) -> None:
    store = build_secret_store("local", instance_dir=tmp_path, region_name=None)
    assert isinstance(store, LocalSecretStore)
    assert (tmp_path / "secrets.json").exists()


def test_factory_builds_the_aws_store(aws: None, tmp_path: Path) -> None:
    clock: Callable[[], datetime] = FakeClock()
    store = build_secret_store("aws", instance_dir=tmp_path, region_name=REGION, clock=clock)
    assert isinstance(store, AwsSecretStore)
    store.put(A_MERRILL, TOKEN)
    assert store.get(A_MERRILL) == TOKEN
    assert not (tmp_path / "secrets.json").exists()


@pytest.mark.parametrize(("backend", "region"), [("vault", REGION), ("", REGION), ("aws", "")])
def test_factory_rejects_unknown_backends_and_missing_regions(
    tmp_path: Path, backend: str, region: str
) -> None:
    with pytest.raises(ConfigError):
        build_secret_store(backend, instance_dir=tmp_path, region_name=region)
