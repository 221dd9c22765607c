"""Fuzzing the HTTP sidecar: schemathesis against its OpenAPI description, and raw bodies.

schemathesis generates the requests (valid and invalid events, from the schemas
embedded in the OpenAPI document); httpx sends them over loopback to the real server
(schemathesis' own requests transport breaks on the urllib3-future installed here);
schemathesis checks every response against the document. The logger behind the
server talks to the real broker.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import checks

from monitor.sidecar import PredictionLogger
from monitor.sidecar.openapi import OPENAPI_FILE, openapi_document, render
from tests.sidecar.sidecar_support import running_sidecar

pytestmark = pytest.mark.integration

SCHEMA = schemathesis.openapi.from_dict(openapi_document())
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
    checks.positive_data_acceptance,
]
FUZZ = settings(max_examples=40, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def sidecar_url(kafka_bootstrap: str) -> Iterator[tuple[str, PredictionLogger]]:
    # The future bound (limits.max_future_seconds) is relative to the clock, which JSON
    # Schema cannot state (the document describes it in words): lifted here so that every
    # schema-valid time up to the year 3000 must be accepted.
    logger = PredictionLogger(bootstrap_servers=kafka_bootstrap, predictions_topic="fuzz.predictions",
                              labels_topic="fuzz.labels", max_future_seconds=1e12)
    with running_sidecar(logger) as url:
        yield url, logger
    logger.close(timeout=10)


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as session:
        yield session


def _send(client: httpx.Client, case: schemathesis.Case, base_url: str) -> httpx.Response:
    kwargs = case.as_transport_kwargs(base_url=base_url)
    kwargs.pop("cookies", None)
    if "data" in kwargs:
        kwargs["content"] = kwargs.pop("data")
    return client.request(**kwargs)


def test_openapi_file_is_current() -> None:
    assert OPENAPI_FILE.read_text(encoding="utf-8") == render(), (
        "schemas/openapi.sidecar.json is stale: python -m monitor.sidecar.openapi --write"
    )


def test_served_openapi_is_the_committed_one(sidecar_url: tuple[str, PredictionLogger]) -> None:
    url, _ = sidecar_url
    assert httpx.get(f"{url}/openapi.json").json() == json.loads(OPENAPI_FILE.read_text(encoding="utf-8"))


@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])
@pytest.mark.parametrize("path", ["/v1/predictions", "/v1/labels"])
def test_schemathesis(sidecar_url: tuple[str, PredictionLogger], client: httpx.Client, path: str,
                      mode: schemathesis.GenerationMode) -> None:
    url, logger = sidecar_url
    operation = SCHEMA[path]["POST"]

    @FUZZ
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        response = _send(client, case, url)
        case.validate_response(schemathesis.Response.from_httpx(response, verify=False), checks=CHECKS)

    run()
    assert logger.outbox.alive


@FUZZ
@given(body=st.one_of(
    st.binary(max_size=2000),
    st.recursive(st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(),
                 lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
                 max_leaves=30).map(lambda value: json.dumps(value).encode()),
))
def test_arbitrary_bodies_never_crash(sidecar_url: tuple[str, PredictionLogger], client: httpx.Client,
                                      body: bytes) -> None:
    url, _ = sidecar_url
    for path in ("/v1/predictions", "/v1/labels"):
        response = client.post(f"{url}{path}", content=body)
        assert response.status_code in (202, 400, 413), response.text
        payload = response.json()
        if response.status_code == 400:
            assert payload["error"] in ("not_json", "schema", "invalid_events")
