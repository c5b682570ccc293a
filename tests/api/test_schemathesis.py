"""Schemathesis against both live apps: every operation of each published OpenAPI document,
called in-process (ASGI) with an owner's key (the operator token for `POST
/v1/account/create`), must never answer 5xx and must answer as documented: a documented
status, content type, headers and body schema; schema-violating input is refused.

Embedded mode only (SQLite, chdb): the point is the HTTP contract, which both modes share, and
the distributed stack would not fit the time budget. Bounded: the examples and coverage
phases in full, 20 fuzzed examples per operation, one seed, no example database, so a run
is reproducible and takes about a minute on two cores.

The projection runners live on schemathesis' event loop (the apps' lifespan starts them),
so a key issued by the command API authenticates on the read API, and reads see the writes.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from infra.bootstrap import Platform, bootstrap
from tests.conftest import ADMIN_TOKEN, assert_error, embedded_settings

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    unsupported_method,
]
"""Not `positive_data_acceptance`: the published schemas are looser than the rules the API
enforces (name patterns, e-mail syntax, Idempotency-Key charset), so a schema-valid request
may rightly be refused with 400."""

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20_260_601,
        "generation": {"max-examples": 20, "database": "none", "deterministic": True},
        # `504 CONSISTENCY_TIMEOUT` is the documented answer to a min_position the read model
        # has not reached (fuzzed ones are mostly far ahead); see `test_read_api`.
        "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "504"]}},
    }
)
OPENAPI = "/docs/openapi.json"
OPERATOR = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class Live:
    """One embedded platform serving both apps, with an account, its owner key and a record."""

    def __init__(self, data: Path) -> None:
        self.platform: Platform = bootstrap(
            embedded_settings(
                data,
                min_position_timeout=0.05,  # fuzzed min_positions are mostly out of reach
                rate_limit_anonymous_per_minute=1_000_000,  # or public routes soon answer 429
            )
        )
        self.command = self.platform.command_app()
        self.read = self.platform.read_app()
        self._run_projections_with(self.read)
        self.command_schema = schemathesis.openapi.from_asgi(OPENAPI, self.command, config=CONFIG)
        self.read_schema = schemathesis.openapi.from_asgi(OPENAPI, self.read, config=CONFIG)
        self.account_id, self.auth = self._tenant()

    def _run_projections_with(self, app: Any) -> None:
        stop = asyncio.Event()
        runners: list[asyncio.Task[None]] = []

        async def start() -> None:
            runners.extend(
                asyncio.create_task(self.platform.runner(projection).run(stop))
                for projection in self.platform.projections().values()
            )

        async def finish() -> None:
            stop.set()
            await asyncio.gather(*runners)

        app.on_startup.append(start)
        app.on_shutdown.append(finish)

    def call(self, schema: Any, route: str, auth: dict[str, str], **parts: Any) -> Any:
        """`route` is "METHOD /path" as in the document; answers the JSON of a 2xx."""
        method, path = route.split(" ", 1)
        response = schema[path][method].Case(**parts).call(headers=auth)
        assert response.status_code < 300, response.text
        return response.json()["data"]

    def _tenant(self) -> tuple[str, dict[str, str]]:
        opened = {"name": "Fuzz", "email": "ops@fuzz.example", "plan": "pro"}
        account = self.call(self.command_schema, "POST /v1/account/create", OPERATOR, body=opened)
        key = {"account_id": account["id"], "name": "fuzz", "role": "owner"}
        issued = self.call(self.command_schema, "POST /v1/apikey/generate", OPERATOR, body=key)
        auth = {"Authorization": f"Bearer {issued['secret']}"}
        # The record the documents' examples name, so the examples phase reads real data.
        record = {"source": "orders", "id": "order-1001", "data": {"total": 42}}
        written = self.call(self.command_schema, "POST /v1/ingest", auth, body=record)
        self._caught_up(written["position"], auth)
        return str(account["id"]), auth

    def _caught_up(self, position: int, auth: dict[str, str]) -> None:
        deadline = time.monotonic() + 30
        read = self.read_schema["/v1/data/{source}/{record_id}"]["GET"]
        where = {"source": "orders", "record_id": "order-1001"}
        while read.Case(path_parameters=where).call(headers=auth).status_code != 200:
            assert time.monotonic() < deadline, f"the read side did not reach {position}"
            time.sleep(0.01)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    live = Live(tmp_path_factory.mktemp("schemathesis") / "data")
    try:
        yield live
    finally:
        asgi.shutdown_lifespans()  # stops the projection runners on schemathesis' loop
        asyncio.run(live.platform.aclose())


@pytest.fixture(scope="module")
def command_openapi(live: Live) -> Any:
    return live.command_schema


@pytest.fixture(scope="module")
def read_openapi(live: Live) -> Any:
    return live.read_schema


@pytest.fixture(autouse=True)
def _lazy_schema_node_id(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32's lazy schemas read `node._nodeid`, which pytest 9 no longer has
    (it names each operation's subtest from it); give it the node id."""
    request.node._nodeid = request.node.nodeid


command_api = schemathesis.pytest.from_fixture("command_openapi")
read_api = schemathesis.pytest.from_fixture("read_openapi")


@command_api.parametrize()
def test_command_api(case: schemathesis.Case, live: Live) -> None:
    # Random ids in paths keep the fuzzer away from the account it uses: a PUT or DELETE of
    # /v1/account/{id} would otherwise suspend or close it halfway through.
    operator_only = case.operation.label == "POST /v1/account/create"
    case.call_and_validate(headers=OPERATOR if operator_only else live.auth, checks=CHECKS)


OWN_ACCOUNT_READS = {
    "GET /v1/account/{account_id}",
    "GET /v1/account/{account_id}/history",
    "GET /v1/usage/{account_id}",
    "GET /v1/billing/{account_id}",
}


@read_api.parametrize()
def test_read_api(case: schemathesis.Case, live: Live) -> None:
    if case.operation.label in OWN_ACCOUNT_READS and _is_uuid(case.path_parameters["account_id"]):
        # Reads are safe: aim them at the caller's own account so that fuzzed `as_of`,
        # `from`/`to`/`granularity` and `period` reach the code behind them, not a 404.
        case.path_parameters["account_id"] = live.account_id
    response = case.call_and_validate(headers=live.auth, checks=CHECKS)
    if response.status_code == 504:
        assert response.json()["error"]["code"] == "CONSISTENCY_TIMEOUT", response.text


def _is_uuid(value: object) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def test_a_source_named_query_can_be_listed(live: Live) -> None:
    """`POST /v1/data/query` makes `query` a static segment; a hidden GET lists that source."""
    record = {"source": "query", "id": "q-1", "data": {}}
    live.call(live.command_schema, "POST /v1/ingest", live.auth, body=record)
    listing = live.read_schema["/v1/data/{source}"]["GET"]
    response = listing.Case(path_parameters={"source": "query"}).call(headers=live.auth)
    assert response.status_code == 200, response.text


# What the runs above found, pinned down.


def test_options_is_answered_without_credentials(live: Live) -> None:
    """Litestar answers OPTIONS itself; behind the guard, undeclared, that was a 500."""
    with asgi.get_client(live.command) as client:
        response = client.options("/v1/ingest")
    assert response.status_code == 204, response.text
    assert _methods(response.headers["allow"]) == {"OPTIONS", "POST"}


def test_a_wrong_method_names_the_allowed_ones(live: Live) -> None:
    """RFC 9110: a 405 carries `Allow` (the error handler used to drop it)."""
    with asgi.get_client(live.command) as client:
        response = client.get("/v1/ingest", headers=live.auth)
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert _methods(response.headers["allow"]) == {"OPTIONS", "POST"}


def _methods(allow: str) -> set[str]:
    return {method.strip() for method in allow.split(",")}


@pytest.mark.parametrize("path", ["/v1/ingest", "/v1/ingest/stream?source=s"])
def test_an_empty_body_is_a_clear_400(live: Live, path: str) -> None:
    """It was `data: 'data'` for a JSON body, and 200 with nothing accepted for a stream."""
    with asgi.get_client(live.command) as client:
        response = client.post(path, data=b"", headers=live.auth)
    error = assert_error(response, 400, "VALIDATION_FAILED")
    assert error["details"][0]["field"] == "$"
    assert error["message"].startswith("$: the request body is empty"), error


def test_the_token_endpoint_documents_its_own_bodies(live: Live) -> None:
    """RFC 6749 bodies, not the envelope the other routes document."""
    operation = live.command_schema["/v1/oauth/token"]["POST"]
    response = operation.Case().call()
    assert response.json()["error"] == "unsupported_grant_type"
    operation.Case().validate_response(response, checks=[response_schema_conformance])
