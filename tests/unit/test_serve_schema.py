"""The HTTP API fuzzed from its own OpenAPI document with schemathesis.

Schemathesis reads ``/openapi.json`` (whose applicant body is the champion's
features with their rules) and sends each route generated requests, valid
and broken ones, in-process through the ASGI app. Every answer must be no
5xx, a documented status, and a body that matches its documented schema; a
request the schema forbids must be refused with a 4xx; and nothing is written.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from credit_batch import serve
from tests.conftest import query, run_pipeline

pytestmark = pytest.mark.unit

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed")

from hypothesis import HealthCheck, settings  # noqa: E402  (installed with schemathesis)
from schemathesis import GenerationMode, checks  # noqa: E402

NEWEST = dt.date(2026, 10, 31)
#: What each answer must satisfy.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]
#: Generated requests per operation.
EXAMPLES = 150
#: The written tables, counted before and after the fuzzing.
TABLES = ("predictions", "scoring_runs", "quarantine", "api_keys", "model_registry")


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory, demo_template):
    """A demo scored once, a key, and the app over it (its schema read from the app)."""
    import shutil

    from credit_batch.config import Settings

    home = tmp_path_factory.mktemp("fuzzed") / "home"
    shutil.copytree(demo_template[0], home)
    settings = Settings(home=home)
    run_pipeline(settings, snapshot_date=NEWEST, sample_rows=500, repeats=1)
    key = serve.create_api_key(settings, "fuzz")
    counts = {t: query(settings, f"SELECT count(*) AS n FROM {t}")[0]["n"] for t in TABLES}
    yield settings, serve.create_app(settings), key
    after = {t: query(settings, f"SELECT count(*) AS n FROM {t}")[0]["n"] for t in TABLES}
    assert after == counts, "a fuzzed request wrote to the results"


def _operations(app) -> list:
    loaded = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [found.ok() for found in loaded.get_all_operations()]


def _fuzz(operation, mode, auth: dict) -> Counter:
    """Generated requests of one operation, each answer checked; the statuses counted."""
    from hypothesis import given

    seen = Counter()

    @given(case=operation.as_strategy(mode))
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    def fuzz(case) -> None:
        seen[case.call_and_validate(headers=auth, checks=CHECKS).status_code] += 1

    fuzz()
    return seen


#: Every operation of the app, each fuzzed by a test of its own (spread over the workers).
ROUTES = (
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
    "GET /v1/customers/{customer_id}/score",
    "GET /v1/customers/{customer_id}/scores",
    "GET /v1/models/{model_name}/customers/{customer_id}/score",
    "POST /v1/models/{model_name}/customers/{customer_id}/score",
    "GET /v1/customers/{customer_id}/history",
    "GET /v1/models/{model_name}/customers/{customer_id}/adverse-action",
    "POST /v1/score",
    "POST /v1/models/{model_name}/score",
)


@pytest.fixture(scope="module")
def operations(fuzzed) -> dict:
    """The app's operations by label, its schema read once per worker."""
    return {op.label: op for op in _operations(fuzzed[1])}


def test_every_operation_of_the_app_is_fuzzed(operations):
    assert list(operations) == list(ROUTES)


@pytest.mark.parametrize("label", ROUTES)
def test_fuzzed_requests_get_no_5xx_and_answers_match_the_schema(fuzzed, operations, label):
    """Generated requests of one operation (valid and broken), each answer checked."""
    auth, operation = {"Authorization": f"Bearer {fuzzed[2]}"}, operations[label]
    answered = {
        mode: _fuzz(operation, mode, auth)
        for mode in GenerationMode
        if mode is GenerationMode.POSITIVE or "/v1/" in label  # health routes take no input
    }
    print({mode.value: dict(found) for mode, found in answered.items()})
    if label == "POST /v1/score":
        assert answered[GenerationMode.POSITIVE][200] >= EXAMPLES / 2  # applicants scored
        broken = answered[GenerationMode.NEGATIVE]  # a broken body, a missing key, ...
        assert sum(n for status, n in broken.items() if 400 <= status < 500) >= EXAMPLES / 2
        assert broken[422] >= 10  # broken applicants refused, naming the field
