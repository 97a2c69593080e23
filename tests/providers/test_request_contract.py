"""What Brokerage Hub sends, and what it gets back, fits the providers' contracts.

Every SnapTrade call the project makes (``registerUser``, ``login``, ``/accounts``,
balances, ``positions/all``, an authorization's detail, symbol search, orders, activities,
order impact, placing an order) and every Plaid call (holdings, investment transactions,
Item, Item removal, Item webhook update, Link token create and get, public token exchange,
the webhook verification key) is made through the real code paths against the emulator,
which records each request (credentials masked). The lists below are checked both ways:
the driven flows make exactly the calls they name, and every SDK operation the product's
code calls is named in them, so a new call fails here until it is listed and driven.

SnapTrade requests are checked against the operation in SnapTrade's own spec
(``tests/specs``):

* query parameters: every required one present, none undeclared (the SnapTrade SDK's
  ``clientId`` and ``timestamp`` are the spec's security schemes), each value valid for
  its schema; path parameters valid for theirs (ids are UUIDs);
* JSON bodies: valid for the operation's ``requestBody`` schema ($refs resolved,
  ``nullable`` honoured, string formats checked), a required body present, and no
  property the schema does not declare (a misspelt field would otherwise pass silently).

Plaid requests are checked against the plaid-python SDK's request model for the
operation (Plaid's spec is not in the repo, see ``tests/specs/README.md``): the body
parses strictly into that model, with no field or enum value the model does not know.

Every answer the project receives on the way is checked too, against the same contracts;
``test_emulator_contract.py`` checks each emulator endpoint's answers in more cases.
"""

from __future__ import annotations

import ast
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import plaid
import pytest
from jsonschema import ValidationError
from openapi_schema_validator import OAS30WriteValidator
from plaid.model.country_code import CountryCode
from plaid.model.link_token_create_hosted_link import LinkTokenCreateHostedLink
from plaid.model.link_token_create_request import LinkTokenCreateRequest
from plaid.model.link_token_create_request_user import LinkTokenCreateRequestUser
from plaid.model.products import Products

from sandbox import data, demo
from sandbox.faults import RecordedRequest
from tests.conftest import FakeClock, make_services, run_now
from tests.emulator_fixtures import (
    SNAPTRADE_SPEC,
    AnswerTap,
    PlaidModels,
    load_spec,
    snaptrade_spec,
    spec_format_checker,
)
from tests.web_fixtures import make_app, wait_for_link

SCHWAB_ACCOUNT = data.SNAPTRADE_ACCOUNT_IDS["schwab-individual"]
IBKR_AUTH = data.SNAPTRADE_AUTHORIZATION_IDS["interactive-brokers"]
NEW_USER = "new.person@example.com"

# Every provider call the project makes: the flows below make each, and the product's code
# calls no SDK operation outside them (test_the_lists_name_every_provider_call_in_the_product).
SNAPTRADE_CALLS = {
    "snaptrade /snapTrade/registerUser",
    "snaptrade /snapTrade/login",
    "snaptrade /accounts",
    "snaptrade /accounts/{accountId}/balances",
    "snaptrade /accounts/{accountId}/positions/all",
    "snaptrade /authorizations",
    "snaptrade /authorizations/{authorizationId}",
    "snaptrade /accounts/{accountId}/symbols",
    "snaptrade /accounts/{accountId}/orders",
    "snaptrade /accounts/{accountId}/activities",
    "snaptrade /trade/impact",
    "snaptrade /trade/{tradeId}",
}
PLAID_CALLS = {
    "plaid /investments/holdings/get",
    "plaid /investments/transactions/get",
    "plaid /item/get",
    "plaid /item/remove",
    "plaid /item/webhook/update",
    "plaid /link/token/create",
    "plaid /link/token/get",
    "plaid /item/public_token/exchange",
    "plaid /webhook_verification_key/get",
}
# Where the product's code lives (sandbox/ is the emulator, not a caller of the SDKs).
ROOT = Path(__file__).resolve().parents[2]
PRODUCT_CODE = ("core", "providers", "services", "routes", "mcp_tools", "cli")
PRODUCT_FILES = (
    "app.py",
    "mcp_server.py",
    "settings.py",
    "plaid_loader.py",
    "snaptrade_loader.py",
    "snaptrade_broker_adapter.py",
)


class RequestSchemas:
    """The request side of one OpenAPI 3.0 spec: parameters and request bodies."""

    def __init__(self, spec_path: Path) -> None:
        self.spec = load_spec(spec_path)
        self._format_checker = spec_format_checker()
        self._query_keys = {
            scheme["name"]
            for scheme in self.spec.get("components", {}).get("securitySchemes", {}).values()
            if scheme.get("type") == "apiKey" and scheme.get("in") == "query"
        }

    def resolve(self, node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            target: Any = self.spec
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = target
        return node

    def errors(self, schema: dict[str, Any], instance: Any) -> list[str]:
        validator = OAS30WriteValidator(
            {"allOf": [schema], "components": self.spec["components"]},
            format_checker=self._format_checker,
        )
        return [
            f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
            for error in validator.iter_errors(instance)
        ]

    def declared(self, schema: Any) -> tuple[dict[str, Any], bool]:
        """(properties, open to others) of a schema, through $refs and allOf."""
        schema = self.resolve(schema)
        if not isinstance(schema, dict):
            return {}, True
        properties = dict(schema.get("properties") or {})
        open_ = "properties" not in schema or schema.get("additionalProperties") not in (
            None,
            False,
        )
        for part in schema.get("allOf") or []:
            more, part_open = self.declared(part)
            properties.update(more)
            open_ = open_ and part_open
        if schema.get("anyOf") or schema.get("oneOf"):
            open_ = True  # which branch applies is the validator's business
        return properties, open_

    def unknown_fields(self, schema: Any, instance: Any, where: str = "body") -> list[str]:
        if isinstance(instance, list):
            items = self.resolve(schema).get("items", {}) if isinstance(schema, dict) else {}
            return [
                f
                for i, item in enumerate(instance)
                for f in self.unknown_fields(items, item, f"{where}[{i}]")
            ]
        if not isinstance(instance, dict):
            return []
        properties, open_ = self.declared(schema)
        found = [] if open_ else [f"{where}.{key}" for key in instance if key not in properties]
        for key, value in instance.items():
            if key in properties:
                found += self.unknown_fields(properties[key], value, f"{where}.{key}")
        return found

    def check(self, recorded: Any) -> list[str]:
        """Every way ``recorded`` (a sandbox.faults.RecordedRequest) breaks its operation."""
        template = recorded.endpoint.split(" ", 1)[1]
        path_item = self.spec["paths"][template]
        operation = path_item[recorded.method.lower()]
        problems: list[str] = []
        parameters = [
            self.resolve(p)
            for p in [*(path_item.get("parameters") or []), *(operation.get("parameters") or [])]
        ]
        sent = {"query": recorded.query, "path": recorded.path_params}
        for parameter in parameters:
            where, name = parameter["in"], parameter["name"]
            if where not in sent:
                continue
            values = sent[where].get(name)
            if values is None:
                if parameter.get("required"):
                    problems.append(f"required {where} parameter {name} is missing")
                continue
            schema = self.resolve(parameter.get("schema", {}))
            for value in values if isinstance(values, list) else [values]:
                problems += [
                    f"{where} parameter {name}: {message}"
                    for message in self.errors(schema, _typed(value, schema))
                ]
        declared = {p["name"] for p in parameters if p["in"] == "query"} | self._query_keys
        problems += [
            f"undeclared query parameter {name}" for name in recorded.query if name not in declared
        ]
        body_spec = self.resolve(operation.get("requestBody"))
        if body_spec is None:
            if recorded.body not in (None, {}):
                problems.append("a body was sent to an operation that takes none")
            return problems
        if not recorded.body_is_json:
            return [*problems, "the body is not JSON"]
        if recorded.body is None:
            if body_spec.get("required"):
                problems.append("the required body is missing")
            return problems
        schema = body_spec["content"]["application/json"]["schema"]
        problems += [f"body: {message}" for message in self.errors(schema, recorded.body)]
        problems += [f"undeclared field {f}" for f in self.unknown_fields(schema, recorded.body)]
        return problems


def _typed(value: str, schema: dict[str, Any]) -> Any:
    """A query or path value (text on the wire) as the type its schema names."""
    kind = schema.get("type")
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        return value
    if kind == "boolean":
        return {"true": True, "false": False}.get(value, value)
    return value


@pytest.fixture
def hub(tmp_path: Path, sqlite_url: str, emulator: Any, clock: FakeClock) -> Iterator[Any]:
    built = make_services(tmp_path / "demo", sqlite_url, emulator, clock, TRADING_ENABLED="true")
    yield built
    built.close()


@pytest.fixture
def new_user(tmp_path: Path, emulator: Any, clock: FakeClock) -> Iterator[Any]:
    built = make_services(
        tmp_path / "new",
        f"sqlite:///{tmp_path / 'new.db'}",
        emulator,
        clock,
        DEFAULT_USER_EMAIL=NEW_USER,
    )
    yield built
    built.close()


@pytest.fixture
def served(tmp_path: Path, emulator: Any) -> Iterator[Any]:
    """The web app served on a free port, where the emulator delivers Plaid's webhooks: a
    delivery is verified with the key the app fetches by its id, so it must run on the real
    clock (the signature's age is checked) and be reachable over HTTP."""
    from werkzeug.serving import make_server

    from services.composition import system_clock
    from tests.browser_fixtures import free_port

    port = free_port()
    built = make_services(
        tmp_path / "served",
        f"sqlite:///{tmp_path / 'served.db'}",
        emulator,
        system_clock,
        background=run_now,
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
    )
    app = make_app(built, TESTING=False)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="contract-app", daemon=True)
    thread.start()
    try:
        yield app
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        built.close()


def every_call_the_project_makes(hub: Any, new_user: Any, served: Any, emulator: Any) -> None:
    """Drive every provider call through the code paths that make it."""

    def back(flow_id: str) -> str:
        return f"http://127.0.0.1:5000/snaptrade/connected/{flow_id}"

    # SnapTrade: register + portal, reconnect, positions, health with the trading probe,
    # previews (Market and Limit, BUY and SELL) and one placement.
    new_user.snaptrade_portal.start_snaptrade_connection("read", return_url=back)
    hub.snaptrade_portal.start_snaptrade_connection("trade", IBKR_AUTH, return_url=back)
    hub.positions.get_all_positions()
    hub.health.check_connections(probe_trading=True)
    market = hub.trading.preview_order(SCHWAB_ACCOUNT, "SCHB", "BUY", 2)
    hub.trading.preview_order(SCHWAB_ACCOUNT, "SCHB", "SELL", 1, "Limit", 55.5, "GTC")
    hub.trading.confirm(market["preview_id"], via="web")
    hub.trading.execute_order(market["preview_id"])

    # Activity history from both providers (investment transactions, account activities).
    synced = hub.activities.sync_now()
    assert synced["ok"], synced["errors"]

    # Webhooks: `update-plaid-webhooks` points every Item at the served app; Plaid
    # acknowledges each with a webhook, which the app verifies with the key it fetches (the
    # app has read its Items before, so it knows the Item each delivery names).
    served.extensions["services"].position_views.answer("summary")
    # (Before the move below removes the IBKR Item the served app also holds.)
    result = served.test_cli_runner().invoke(args=["update-plaid-webhooks"])
    assert result.exit_code == 0, result.output
    deliveries = emulator.controls.wait_for_webhooks(1)
    assert deliveries and all(d.status == 200 for d in deliveries), deliveries

    # Plaid: Hosted Link for a new Item (create, poll, exchange), update mode, Item health,
    # and moving IBKR to SnapTrade (holdings on both sides, then /item/remove).
    job = new_user.plaid_link.start_plaid_link(poll_seconds=0.02)
    emulator.controls.complete_link(job.link_token, "merrill-lynch")
    assert wait_for_link(new_user, job.job_id, 15).status == "done"
    update = hub.plaid_link.start_plaid_update("merrill-lynch", poll_seconds=0.02)
    emulator.controls.complete_link(update.link_token, "merrill-lynch")
    wait_for_link(hub, update.job_id, 15)
    assert hub.migrations.migrate("interactive-brokers", execute=True)["ok"]


def test_every_snaptrade_request_fits_the_spec(
    hub: Any, new_user: Any, served: Any, emulator: Any
) -> None:
    schemas = RequestSchemas(SNAPTRADE_SPEC)
    every_call_the_project_makes(hub, new_user, served, emulator)
    recorded = [r for r in emulator.controls.requests() if r.endpoint.startswith("snaptrade ")]
    assert {r.endpoint for r in recorded} == SNAPTRADE_CALLS
    problems = {
        f"{r.method} {r.endpoint}: {problem}" for r in recorded for problem in schemas.check(r)
    }
    assert not problems, "\n".join(sorted(problems))
    # The recorder never kept a user secret.
    assert all(demo.SNAPTRADE_USER_SECRET not in repr(r) for r in recorded)


def plaid_request_problems(models: PlaidModels, recorded: RecordedRequest) -> list[str]:
    """Every way a recorded Plaid request breaks its operation in the SDK.

    Plaid takes a JSON body by POST and nothing in the query (the credentials
    travel in headers); the body must parse strictly into the SDK's request model.
    """
    problems = [f"undeclared query parameter {name}" for name in recorded.query]
    if recorded.method != "POST":
        problems.append(f"sent by {recorded.method}, not POST")
    if not recorded.body_is_json:
        return [*problems, "the body is not JSON"]
    path = recorded.endpoint.split(" ", 1)[1]
    return problems + models.request_problems(path, recorded.body)


def test_every_plaid_request_fits_the_sdk_request_models(
    hub: Any, new_user: Any, served: Any, emulator: Any
) -> None:
    models = PlaidModels()
    every_call_the_project_makes(hub, new_user, served, emulator)
    recorded = [r for r in emulator.controls.requests() if r.endpoint.startswith("plaid ")]
    assert {r.endpoint for r in recorded} == PLAID_CALLS
    problems = {
        f"{r.method} {r.endpoint}: {problem}"
        for r in recorded
        for problem in plaid_request_problems(models, r)
    }
    assert not problems, "\n".join(sorted(problems))
    assert all(
        token not in repr(r) for r in recorded for token in demo.PLAID_ACCESS_TOKENS.values()
    )


def test_every_answer_the_project_receives_fits_the_provider_contracts(
    hub: Any, new_user: Any, served: Any, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plaid answers parse strictly into the SDK's models; SnapTrade answers fit the spec,
    string formats included (so no URL in them points at the emulator's loopback host)."""
    tap = AnswerTap(monkeypatch)
    every_call_the_project_makes(hub, new_user, served, emulator)
    models, spec = PlaidModels(), snaptrade_spec()
    plaid_base, snaptrade_base = (
        urlsplit(u).path for u in (emulator.plaid_url, emulator.snaptrade_url)
    )
    received, problems = set(), []
    for method, url, status, raw in tap.answers:
        path = urlsplit(url).path
        answer = json.loads(raw)
        if url.startswith(emulator.plaid_url):
            endpoint = path.removeprefix(plaid_base)
            received.add(f"plaid {endpoint}")
            problems += [
                f"{status} from plaid {endpoint}: {problem}"
                for problem in models.answer_problems(endpoint, status, answer)
            ]
        else:
            assert url.startswith(emulator.snaptrade_url), url
            template = spec.template_of(method, path.removeprefix(snaptrade_base))
            received.add(f"snaptrade {template}")
            try:
                spec.validate(method, template, status, answer)
            except ValidationError as error:
                where = "/".join(map(str, error.absolute_path)) or "(top)"
                problems.append(f"{status} from snaptrade {template}: {where}: {error.message}")
    assert received == PLAID_CALLS | SNAPTRADE_CALLS
    assert not problems, "\n".join(dict.fromkeys(problems))  # each distinct problem once


def sdk_endpoints() -> dict[str, str]:
    """Each SDK operation by how the product's code calls it: ``client.item_get`` (Plaid's
    one API object) and ``client.trading.place_order`` (SnapTrade's tag APIs), async twins
    included, mapped to "provider /path" as the emulator records it."""
    from plaid.api.plaid_api import PlaidApi
    from snaptrade_client import SnapTrade, SnapTradeAuth

    plaid_api = PlaidApi(plaid.ApiClient(plaid.Configuration(host=plaid.Environment.Sandbox)))
    endpoints = {
        name.removesuffix("_endpoint"): f"plaid {value.settings['endpoint_path']}"
        for name, value in vars(plaid_api).items()
        if name.endswith("_endpoint")
    }
    snaptrade = SnapTrade(auth=SnapTradeAuth.commercial_api_key(consumer_key="k", client_id="c"))
    for tag, api in vars(snaptrade).items():
        if tag.startswith("_"):
            continue
        # Each operation is a method of a class in its path's module (``paths/...``), which
        # names the path; a deprecation wrapper hides the function, not the class.
        for klass in type(api).__mro__:
            path = getattr(sys.modules[klass.__module__], "path", None)
            for name in vars(klass):
                if path is not None and not name.startswith("_"):
                    endpoints.setdefault(f"{tag}.{name}", f"snaptrade {path.value}")
    return endpoints


def sdk_calls_in(path: Path, endpoints: dict[str, str]) -> set[str]:
    """The endpoints of the SDK operations a module calls (``x.item_get(...)``,
    ``x.trading.place_order(...)``), whatever the client object is named."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name, owner = node.func.attr, node.func.value
        keys = [name]
        if isinstance(owner, ast.Attribute):
            keys.insert(0, f"{owner.attr}.{name}")
        found |= {endpoints[key] for key in keys if key in endpoints}
    return found


def test_the_lists_name_every_provider_call_in_the_product() -> None:
    """A call added to the product's code fails here until the lists (and so the flows above,
    which must make every listed call) name it."""
    endpoints = sdk_endpoints()
    assert endpoints["item_get"] == "plaid /item/get"  # the maps are read as they are meant
    assert endpoints["trading.place_order"] == "snaptrade /trade/{tradeId}"
    modules = [ROOT / name for name in PRODUCT_FILES]
    modules += [path for folder in PRODUCT_CODE for path in sorted((ROOT / folder).rglob("*.py"))]
    called = set().union(*(sdk_calls_in(path, endpoints) for path in modules))
    assert called == PLAID_CALLS | SNAPTRADE_CALLS


def test_the_call_scan_sees_each_way_the_sdks_are_called(tmp_path: Path) -> None:
    endpoints = sdk_endpoints()
    module = tmp_path / "probe.py"
    module.write_text(
        "def run(client, snap, request):\n"
        "    client.investments_transactions_get(request)\n"
        "    call(client, lambda: client.webhook_verification_key_get(request))\n"
        "    snap.account_information.get_account_activities(account_id='a')\n"
        "    self._client.trading.place_order(trade_id='t')\n"
        "    snap.transactions_and_reporting.get(account_id='a')  # no such operation\n"
    )
    assert sdk_calls_in(module, endpoints) == {
        "plaid /investments/transactions/get",
        "plaid /webhook_verification_key/get",
        "snaptrade /accounts/{accountId}/activities",
        "snaptrade /trade/{tradeId}",
    }


def test_the_snaptrade_request_check_refuses_each_kind_of_mistake() -> None:
    schemas = RequestSchemas(SNAPTRADE_SPEC)

    def impact(body: Any, **query: list[str]) -> list[str]:
        return schemas.check(
            RecordedRequest(
                endpoint="snaptrade /trade/impact",
                method="POST",
                path_params={},
                query={"userId": ["u"], "userSecret": ["[masked]"], **query},
                body=body,
                body_is_json=True,
            )
        )

    good = {
        "account_id": SCHWAB_ACCOUNT,
        "action": "BUY",
        "universal_symbol_id": SCHWAB_ACCOUNT,
        "order_type": "Market",
        "time_in_force": "Day",
        "units": 1.0,
    }
    assert impact(good, clientId=["c"], timestamp=["1"]) == []
    assert any("units" in p for p in impact({**good, "units": "one"}))
    assert any("action" in p for p in impact({**good, "action": "HOLD"}))
    assert any("account_id" in p for p in impact({**good, "account_id": "not-a-uuid"}))
    assert any("undeclared field body.quantity" in p for p in impact({**good, "quantity": 1}))
    assert any("undeclared query parameter debug" in p for p in impact(good, debug=["1"]))
    assert any("required body" in p for p in impact(None))
    missing_user = schemas.check(
        RecordedRequest("snaptrade /accounts", "GET", {}, {"userSecret": ["x"]}, None, True)
    )
    assert missing_user == ["required query parameter userId is missing"]


def test_the_plaid_request_check_refuses_each_kind_of_mistake() -> None:
    models = PlaidModels()
    # The body as the SDK sends it, built from its request models as the project builds it.
    good = plaid.ApiClient.sanitize_for_serialization(
        LinkTokenCreateRequest(
            client_name="Brokerage Hub",
            language="en",
            country_codes=[CountryCode("US")],
            user=LinkTokenCreateRequestUser(client_user_id=NEW_USER),
            products=[Products("investments")],
            hosted_link=LinkTokenCreateHostedLink(),
        )
    )

    def problems(body: Any, **query: list[str]) -> list[str]:
        recorded = RecordedRequest("plaid /link/token/create", "POST", {}, query, body, True)
        return plaid_request_problems(models, recorded)

    assert problems(good) == []
    unnamed = {key: value for key, value in good.items() if key != "client_name"}
    assert any("missing" in p and "'client_name'" in p for p in problems(unnamed))
    assert any("country_codes" in p for p in problems({**good, "country_codes": "US"}))
    assert any("client_name" in p for p in problems({**good, "client_name": 7}))
    assert any("investmentz" in p for p in problems({**good, "products": ["investmentz"]}))
    assert any("client_nme" in p for p in problems({**good, "client_nme": "Hub"}))
    assert any("client_user_id" in p for p in problems({**good, "user": {}}))
    assert problems(good, debug=["1"]) == ["undeclared query parameter debug"]
    not_json = RecordedRequest("plaid /item/get", "POST", {}, {}, "access_token=x", False)
    assert plaid_request_problems(models, not_json) == ["the body is not JSON"]
