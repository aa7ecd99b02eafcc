"""The HTTP API in-process (FastAPI's TestClient): lookups, online = batch, keys, bad input."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from credit_batch import catalog, serve
from credit_batch.features import DEFAULT_FEATURE_SPEC, default_spec
from tests.conftest import query, revoked_within, run_pipeline, stored_state

# Lanes per test: this file holds unit tests and tests that need a service.

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")

NEWEST, OLDER = dt.date(2026, 10, 31), dt.date(2026, 9, 30)


@pytest.fixture(scope="module")
def served(tmp_path_factory, demo_template):
    """A demo scored on two snapshots, a key, and a client of the app over it."""
    import shutil

    from fastapi.testclient import TestClient

    from credit_batch.config import Settings

    home = tmp_path_factory.mktemp("served") / "home"
    shutil.copytree(demo_template[0], home)
    settings = Settings(home=home)
    for date in (OLDER, NEWEST):
        run_pipeline(settings, snapshot_date=date, sample_rows=500, repeats=1)
    key = serve.create_api_key(settings, "tests")
    revoked = serve.create_api_key(settings, "old")
    serve.revoke_api_key(settings, "old")
    client = TestClient(serve.create_app(settings), raise_server_exceptions=False)
    client.headers["Authorization"] = f"Bearer {key}"
    return settings, client, revoked


def _stored(settings, customer_id: int, date: dt.date) -> dict:
    [row] = query(
        settings,
        "SELECT * FROM predictions WHERE customer_id = :c AND snapshot_date = :d",
        {"c": customer_id, "d": date},
    )
    return row


@pytest.mark.unit
def test_lookup_gives_exactly_the_stored_newest_champion_score(served):
    settings, client, _ = served
    for customer in (1, 17, 2024):
        got = client.get(f"/v1/customers/{customer}/score")
        assert got.status_code == 200
        body, want = got.json(), _stored(settings, customer, NEWEST)
        for column in ("score", "risk_band", "points", "run_id", "model_version", "reason_1"):
            assert body[column] == want[column], column
        assert body["snapshot_date"] == NEWEST.isoformat()
        older = client.get(f"/v1/customers/{customer}/score", params={"as_of": "2026-10-15"})
        assert older.json()["score"] == _stored(settings, customer, OLDER)["score"]
        history = client.get(f"/v1/customers/{customer}/history").json()
        assert [h["snapshot_date"] for h in history] == [NEWEST.isoformat(), OLDER.isoformat()]


@pytest.mark.unit
def test_scoring_a_customer_now_gives_the_stored_score_of_their_newest_features(served):
    settings, client, _ = served
    newest = {
        r["customer_id"]
        for r in query(
            settings, "SELECT customer_id FROM predictions WHERE snapshot_date = :d", {"d": NEWEST}
        )
    }
    older_only = query(
        settings,
        "SELECT customer_id FROM predictions WHERE snapshot_date = :d ORDER BY customer_id",
        {"d": OLDER},
    )
    gone = next(r["customer_id"] for r in older_only if r["customer_id"] not in newest)
    for customer, date in ((1, NEWEST), (17, NEWEST), (2024, NEWEST), (gone, OLDER)):
        got = client.post(f"/v1/models/gmsc/customers/{customer}/score")
        assert got.status_code == 200, got.text
        body, want = got.json(), _stored(settings, customer, date)
        assert (body["score"], body["risk_band"], body["points"]) == (
            want["score"], want["risk_band"], want["points"]
        )  # fmt: skip
        assert body["features_snapshot_date"] == date.isoformat(), customer
        assert body["reasons"][0]["feature"] == want["reason_1"] and body["overridden"] == []
    version = _stored(settings, 1, NEWEST)["model_version"]
    named = client.post("/v1/models/gmsc/customers/1/score", params={"version": version})
    assert named.status_code == 200 and named.json()["model_version"] == version


@pytest.mark.unit
def test_adverse_action_route_gives_the_stored_reasons_of_a_decline_and_404_otherwise(served):
    settings, client, _ = served
    rows = query(
        settings,
        "SELECT customer_id, feature, value FROM adverse_action WHERE snapshot_date = :d "
        "ORDER BY customer_id, reason_rank",
        {"d": NEWEST},
    )
    declined = rows[0]["customer_id"]
    got = client.get(f"/v1/models/gmsc/customers/{declined}/adverse-action?date={NEWEST}")
    assert got.status_code == 200, got.text
    body = got.json()
    mine = [(r["feature"], r["value"]) for r in rows if r["customer_id"] == declined]
    assert [(r["feature"], r["value"]) for r in body["reasons"]] == mine
    assert body["score"] > body["cutoff"] and body["model_name"] == "gmsc"
    accepted = query(
        settings,
        "SELECT MIN(customer_id) AS c FROM predictions WHERE snapshot_date = :d AND score <= 0.1",
        {"d": NEWEST},
    )[0]["c"]
    got = client.get(f"/v1/models/gmsc/customers/{accepted}/adverse-action?date={NEWEST}")
    assert got.status_code == 404 and "no decline of customer" in got.json()["detail"]
    got = client.get(f"/v1/models/gmsc/customers/{declined}/adverse-action?date=2026-13-01")
    assert got.status_code == 422


@pytest.mark.unit
def test_scoring_a_customer_now_refuses_what_it_cannot_answer(served):
    _, client, _ = served
    unknown = client.post("/v1/models/gmsc/customers/99999999/score")
    assert unknown.status_code == 404 and "no stored features of customer 99999999" in unknown.text
    assert client.post("/v1/models/nobody/customers/1/score").status_code == 404
    stale = client.post("/v1/models/gmsc/customers/1/score", params={"version": "nope-1"})
    assert stale.status_code == 404 and "'nope-1' is not registered" in stale.text
    bad = client.post("/v1/models/gmsc/customers/1/score", json={"age": 30})
    assert bad.status_code == 422 and bad.json()["name"] == "age"
    assert "is not a request-time feature of the model" in bad.json()["rule"]
    assert client.post("/v1/models/gmsc/customers/x1/score").status_code == 422  # integer keys


@pytest.mark.unit
def test_a_query_parameter_the_route_does_not_take_is_a_422_naming_it(served):
    """``?asof=`` (a typo of ``as_of``) would otherwise answer for today, silently."""
    _, client, _ = served
    typo = client.get("/v1/customers/1/score", params={"asof": "2026-10-15"})
    assert typo.status_code == 422 and typo.json()["name"] == "asof"
    assert "'asof' is not one this route takes" in typo.json()["detail"]
    assert client.get("/v1/customers/1/score", params={"as_of": "2026-10-15"}).status_code == 200
    assert client.get("/healthz", params={"verbose": "1"}).status_code == 422


@pytest.mark.unit
def test_unknown_customer_and_a_date_before_any_snapshot_are_404(served):
    _, client, _ = served
    assert client.get("/v1/customers/99999999/score").status_code == 404
    assert client.get("/v1/customers/99999999/history").status_code == 404
    early = client.get("/v1/customers/1/score", params={"as_of": "2020-01-01"})
    assert early.status_code == 404 and "no score of customer 1" in early.json()["detail"]


@pytest.mark.unit
def test_online_scores_equal_the_batch_for_a_thousand_rows(served):
    import pyarrow.parquet as pq

    from credit_batch.stores import lake

    settings, client, _ = served
    [part, *_] = lake.features_parts(settings.lake, NEWEST, feature_set=default_spec().feature_set)
    rows = pq.read_table(part.path).slice(0, 1_000).to_pylist()
    stored = {
        r["customer_id"]: r
        for r in query(
            settings, "SELECT * FROM predictions WHERE snapshot_date = :d", {"d": NEWEST}
        )
    }
    quarantined = {
        r["customer_id"]
        for r in query(settings, "SELECT customer_id FROM quarantine WHERE snapshot_date = :d",
                       {"d": NEWEST})
    }  # fmt: skip
    checked = refused = 0
    for row in rows:
        customer = row.pop("customer_id")
        row.pop("snapshot_date")
        got = client.post("/v1/score", json=row)
        if customer in quarantined:
            assert got.status_code == 422, got.text
            refused += 1
            continue
        assert got.status_code == 200, got.text
        body, want = got.json(), stored[customer]
        assert body["score"] == want["score"]  # the same bits: one row alone, or in a chunk
        assert body["points"] == want["points"]
        assert body["risk_band"] == want["risk_band"]
        assert [r["feature"] for r in body["reasons"]] == [
            want[f"reason_{i}"] for i in (1, 2, 3) if want[f"reason_{i}"]
        ]
        checked += 1
    assert checked + refused == 1_000 and checked > 900


@pytest.mark.unit
def test_keys_missing_unknown_and_revoked_are_refused(served):
    settings, client, revoked = served
    path = "/v1/customers/1/score"
    bare = {"Authorization": ""}
    assert client.get(path, headers=bare).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer cbk_nope"}).status_code == 401
    for headers in (bare, {"Authorization": "Bearer cbk_nope"}):  # the 401 says how to get a key
        body = client.get(path, headers=headers).text
        assert "credit-batch api-key create --name NAME" in body, body
    assert client.get(path, headers={"Authorization": "Basic abc"}).status_code == 401
    assert client.get(path, headers={"Authorization": f"Bearer {revoked}"}).status_code == 403
    assert client.post("/v1/score", json={}, headers=bare).status_code == 401


@pytest.mark.unit
def test_health_readiness_metrics_and_openapi(served):
    _, client, _ = served
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["champion"].startswith("logreg-")
    client.get("/v1/customers/1/score")
    metrics = client.get("/metrics").text
    assert 'credit_batch_requests_total{route="/v1/customers/{customer_id}/score"' in metrics
    assert "credit_batch_request_seconds_bucket" in metrics
    assert f'credit_batch_champion{{version="{ready["champion"]}"}} 1.0' in metrics
    schema = client.get("/openapi.json").json()
    assert {"/v1/score", "/v1/customers/{customer_id}/score"} <= set(schema["paths"])
    post = schema["paths"]["/v1/score"]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == list(DEFAULT_FEATURE_SPEC.names)  # the champion's features
    age, income = body["properties"]["age"], body["properties"]["monthly_income"]
    assert (age["type"], age["minimum"], age["maximum"]) == (["number"], 18, 120)
    assert income["type"] == ["number", "null"]  # the spec allows it missing
    assert body["properties"]["num_90_days_late"]["not"] == {"enum": [96.0, 98.0]}
    assert body["additionalProperties"] is False
    answers = {
        code: r["content"]["application/json"]["schema"] for code, r in post["responses"].items()
    }
    assert answers["200"] == {"$ref": "#/components/schemas/OnlineScore"}
    assert answers["422"] == {"$ref": "#/components/schemas/Problem"}
    assert "reason_1_text" in schema["components"]["schemas"]["Score"]["properties"]


def _applicant(settings) -> dict:
    import pyarrow.parquet as pq

    from credit_batch.stores import lake

    [part, *_] = lake.features_parts(settings.lake, NEWEST, feature_set=default_spec().feature_set)
    row = pq.read_table(part.path).slice(0, 1).to_pylist()[0]
    row.pop("customer_id")
    row.pop("snapshot_date")
    return row


BAD_BODIES = {
    "age_as_string": {"age": "forty"},
    "age_as_bool": {"age": True},
    "age_as_list": {"age": [40]},
    "age_as_object": {"age": {"v": 40}},
    "age_too_low": {"age": 12},
    "age_too_high": {"age": 130},
    "age_zero": {"age": 0},
    "late_code_96": {"num_30_59_days_late": 96},
    "late_code_98": {"num_90_days_late": 98},
    "late_negative": {"num_60_89_days_late": -1},
    "utilization_negative": {"revolving_unsecured_line_utilization": -0.5},
    "income_negative": {"monthly_income": -10},
    "flag_two": {"high_debt_ratio": 2},
    "sql_text": {"age": "1; DROP TABLE predictions"},
    "huge_number": {"age": 1e308},
    "huge_unbounded_number": {"num_90_days_late": 6.6e307},  # found by the fuzzing: a 500
    "integer_beyond_a_double": {"debt_ratio": 10**400},
    "integer_beyond_int64": {"monthly_income": 2**70},
}


@pytest.mark.unit
@pytest.mark.parametrize("name", sorted(BAD_BODIES))
def test_a_bad_field_is_a_422_naming_it_and_nothing_is_written(served, name):
    settings, client, _ = served
    body = {**_applicant(settings), **BAD_BODIES[name]}
    before = stored_state(settings)
    got = client.post("/v1/score", json=body)
    assert got.status_code == 422, got.text
    [field] = BAD_BODIES[name]
    assert field in got.json()["detail"]
    assert stored_state(settings) == before


@pytest.mark.unit
@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("post", "/v1/score", {"content": b"{not json"}, 422),
        ("post", "/v1/score", {"content": b"[1, 2]"}, 422),
        ("post", "/v1/score", {"content": b"null"}, 422),
        ("post", "/v1/score", {"content": b'"text"'}, 422),
        ("post", "/v1/score", {"json": {}}, 422),
        ("post", "/v1/score", {"json": {"age": 40}}, 422),
        ("post", "/v1/score", {"content": b"{" + b'"a": 1,' * 5000 + b'"b": 2}'}, 413),
        ("get", "/v1/customers/1/score", {"headers": {"content-length": "|{"}}, 400),
        ("get", "/v1/customers/1/score", {"headers": {"content-length": "-5"}}, 400),
        ("get", "/v1/customers/1/score", {"content": b"x" * 20_000}, 413),
        ("get", "/v1/customers/abc/score", {}, 422),
        ("get", "/v1/customers/1%3B%20DROP%20TABLE%20predictions/score", {}, 422),
        ("get", "/v1/customers/..%2F..%2Fetc%2Fpasswd/score", {}, 404),
        ("get", "/v1/customers/" + "9" * 80 + "/score", {}, 422),
        ("get", "/v1/customers/99999999999999999999/score", {}, 422),
        ("get", "/v1/customers/%C2%B9/score", {}, 422),  # "¹": a digit to isdigit, not to int
        ("get", "/v1/customers/%D9%A3/history", {}, 422),  # an Arabic-Indic three
        ("get", "/v1/customers/1/score?as_of=2026-13-01", {}, 422),
        ("get", "/v1/customers/1/score?as_of=yesterday", {}, 422),
        ("get", "/v1/customers/1/score?as_of=20261031", {}, 422),
        ("get", "/v1/customers/1/nothing", {}, 404),
        ("get", "/v1/customers//score", {}, 404),
        ("put", "/v1/score", {"json": {}}, 405),
        ("delete", "/v1/customers/1/score", {}, 405),
    ],
)
def test_malformed_requests_are_4xx_with_a_message_and_write_nothing(
    served, method, path, kwargs, status
):
    settings, client, _ = served
    before = stored_state(settings)
    kwargs = dict(kwargs)
    headers = {"content-type": "application/json"} if "content" in kwargs else {}
    headers |= kwargs.pop("headers", {})
    got = client.request(method.upper(), path, headers=headers, **kwargs)
    assert got.status_code == status, got.text
    assert got.json().get("detail")
    assert stored_state(settings) == before


@pytest.mark.unit
def test_missing_and_extra_fields_are_named(served):
    settings, client, _ = served
    body = _applicant(settings)
    missing = dict(body)
    del missing["age"]
    got = client.post("/v1/score", json=missing)
    assert got.status_code == 422 and "age" in got.json()["detail"]
    got = client.post("/v1/score", json={**body, "favourite_colour": "blue"})
    assert got.status_code == 422 and "favourite_colour" in got.json()["detail"]
    nulls = {**body, "monthly_income": None, "missing_monthly_income": 1.0}
    assert client.post("/v1/score", json=nulls).status_code == 200  # the spec allows it


@pytest.mark.unit
def test_the_cli_lookup_prints_the_stored_row_and_refuses_a_bad_id(served, capsys, monkeypatch):
    from credit_batch import cli

    settings, _, _ = served
    monkeypatch.setenv("CREDIT_BATCH_HOME", str(settings.home))
    assert cli.main(["lookup", "17", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["score"] == _stored(settings, 17, NEWEST)["score"]
    assert cli.main(["lookup", "17", "--as-of", "2020-01-01"]) == 2
    assert "no score of customer 17 at or before 2020-01-01" in capsys.readouterr().err
    assert cli.main(["lookup", "x17"]) == 2
    assert cli.main(["lookup", "17", "--history"]) == 0
    assert "(2 rows)" in capsys.readouterr().out
    assert catalog.lookup(settings, 17, as_of=OLDER)["snapshot_date"] == OLDER


@pytest.mark.services
@pytest.mark.postgres
def test_on_postgresql_lookups_and_online_scores_answer_from_the_database(pg_demo):
    from fastapi.testclient import TestClient

    settings, _, _ = pg_demo
    run_pipeline(settings, snapshot_date=NEWEST, sample_rows=500, repeats=1)
    client = TestClient(serve.create_app(settings), raise_server_exceptions=False)
    client.headers["Authorization"] = f"Bearer {serve.create_api_key(settings, 'pg')}"
    assert client.get("/readyz").json()["status"] == "ready"
    got = client.get("/v1/customers/17/score")
    assert got.status_code == 200 and got.json()["score"] == _stored(settings, 17, NEWEST)["score"]
    assert client.get("/v1/customers/99999999/score").status_code == 404
    assert client.post("/v1/score", json=_applicant(settings)).status_code == 200
    now = client.post("/v1/models/gmsc/customers/17/score")  # the online store's row, by key
    assert now.status_code == 200 and now.json()["score"] == _stored(settings, 17, NEWEST)["score"]
    assert client.post("/v1/models/gmsc/customers/99999999/score").status_code == 404
    key = client.headers.pop("Authorization").removeprefix("Bearer ")
    waited = revoked_within(client, key, lambda: serve.revoke_api_key(settings, "pg"))
    # "Within 5 s", as on DuckDB: slack 1 s for the refresh's read and the polling (50 ms).
    assert waited <= serve.CACHE_SECONDS + 1.0, waited


@pytest.mark.services
@pytest.mark.postgres
def test_the_service_answers_as_the_read_only_analyst_role(pg_demo, pg_admin):
    """The service needs only SELECT: it runs as a login role in ``analyst``."""
    import shutil
    import subprocess
    import uuid
    from dataclasses import replace

    from fastapi.testclient import TestClient

    from tests.conftest import PG_USER, REPO

    settings, _, _ = pg_demo
    run_pipeline(settings, snapshot_date=NEWEST, sample_rows=500, repeats=1)
    key = serve.create_api_key(settings, "reader")
    psql = shutil.which("psql") or pytest.skip("psql is not installed")
    roles = [psql, settings.results_url, "-q", "-v", "schema=public", "-f"]
    made = subprocess.run(  # the script itself takes a role a concurrent run made first
        [*roles, str(REPO / "sql/roles/postgresql.sql")], capture_output=True, check=False
    )
    assert made.returncode == 0, made.stderr
    role = f"cb_reader_{uuid.uuid4().hex[:8]}"
    pg_admin.execute(f'CREATE ROLE "{role}" LOGIN IN ROLE analyst')
    try:
        login = settings.results_url.replace(f"//{PG_USER}@", f"//{role}@", 1)
        client = TestClient(serve.create_app(replace(settings, results_url=login)))
        client.headers["Authorization"] = f"Bearer {key}"
        assert client.get("/readyz").json()["status"] == "ready"
        got = client.get("/v1/customers/17/score")
        assert got.status_code == 200
        assert got.json()["score"] == _stored(settings, 17, NEWEST)["score"]
        assert client.get("/v1/customers/17/history").status_code == 200
        assert client.post("/v1/score", json=_applicant(settings)).status_code == 200
        with pytest.raises(Exception, match="permission denied"):  # the role writes nothing
            serve.create_api_key(replace(settings, results_url=login), "not-allowed")
    finally:
        pg_admin.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.mark.unit
def test_the_refresh_threads_end_with_their_app(served, monkeypatch):
    import gc

    from fastapi.testclient import TestClient

    settings, client, _ = served
    monkeypatch.setattr(serve, "CACHE_SECONDS", 0.05)
    before = set(serve._THREADS)
    app = serve.create_app(settings)
    mine = TestClient(app)
    mine.headers["Authorization"] = client.headers["Authorization"]
    assert mine.get("/v1/customers/17/score").status_code == 200  # keys, score index
    assert mine.post("/v1/score", json=_applicant(settings)).status_code == 200  # champion
    started = [t for t in serve._THREADS if t not in before]
    assert len(started) == 3 and all(t.is_alive() for t in started)
    del app, mine
    gc.collect()
    for thread in started:
        thread.join(timeout=5)
    assert not any(t.is_alive() for t in started), "a refresh thread outlived its app"
