"""Named models on one results database: a champion, challengers and an audit trail each."""

from __future__ import annotations

import datetime as dt

import pytest

from credit_batch import pipeline
from credit_batch.errors import NoChampionError, ParameterError
from credit_batch.stores import registry, results
from tests.conftest import query, run_pipeline

pytestmark = pytest.mark.unit

DATE = "2026-09-30"


@pytest.fixture
def two_models(demo):
    """The demo's ``gmsc`` champion and a ``pd_cards`` champion on the same spec."""
    settings, written, gmsc = demo
    cards = pipeline.train(
        settings, until=written[-3]["snapshot_date"], seed=2, max_rows=2000, model_name="pd_cards"
    )
    pipeline.promote(settings, cards.model_version, reason="the cards book")
    return settings, gmsc, cards


def test_each_model_keeps_its_own_champion_when_another_is_promoted(two_models, demo):
    settings, gmsc, cards = two_models
    written = demo[1]
    newer = pipeline.train(
        settings, until=written[-3]["snapshot_date"], seed=3, max_rows=2000, model_name="pd_cards"
    )
    pipeline.promote(settings, newer.model_version, reason="a better cards model")
    roles = {
        r["model_version"]: (r["model_name"], r["status"])
        for r in query(settings, "SELECT model_version, model_name, status FROM model_registry")
    }
    assert roles == {
        gmsc.model_version: ("gmsc", "champion"),  # untouched by the cards promotion
        cards.model_version: ("pd_cards", "retired"),
        newer.model_version: ("pd_cards", "champion"),
    }
    trail = query(settings, "SELECT model_name, model_version, event FROM model_events")
    assert {(r["model_name"], r["model_version"], r["event"]) for r in trail} == {
        ("gmsc", gmsc.model_version, "promoted"),
        ("pd_cards", cards.model_version, "promoted"),
        ("pd_cards", cards.model_version, "retired"),
        ("pd_cards", newer.model_version, "promoted"),
    }


def test_with_two_champions_a_run_must_name_its_model_and_scores_that_one(two_models):
    settings, gmsc, cards = two_models
    with pytest.raises(ParameterError, match=r"model name.*gmsc \(.*pd_cards \("):
        registry.resolve(settings, None)
    assert (
        registry.resolve(settings, None, model_name="pd_cards").model_version == cards.model_version
    )
    run_pipeline(settings, snapshot_date=DATE, model_name="pd_cards", repeats=1, sample_rows=500)
    found = query(settings, "SELECT DISTINCT model_version FROM predictions")
    assert found == [{"model_version": cards.model_version}]
    with pytest.raises(ParameterError, match="belongs to model 'gmsc', not 'pd_cards'"):
        registry.resolve(settings, gmsc.model_version, model_name="pd_cards")
    with pytest.raises(NoChampionError, match="no champion of model 'pd_loans'"):
        registry.resolve(settings, None, model_name="pd_loans")


def test_the_same_training_inputs_under_another_name_are_refused_naming_the_owner(demo):
    settings, written, gmsc = demo
    with pytest.raises(ParameterError, match=r"registered for model 'gmsc'") as caught:
        pipeline.train(settings, until=written[-3]["snapshot_date"], seed=1, model_name="other")
    assert caught.value.value == "other"
    with results.open_results(settings, read_only=True) as db:
        assert [m["model_name"] for m in registry.list_models(db, settings)] == ["gmsc"]


@pytest.mark.parametrize("name", ["", "1cards", "pd cards", "x" * 65, "../etc", 7])
def test_a_bad_model_name_is_refused_by_rule_before_anything_is_trained(demo, name):
    settings, written, _ = demo
    before = query(settings, "SELECT COUNT(*) AS n FROM model_registry")
    with pytest.raises(ParameterError, match="model name must match"):
        pipeline.train(settings, until=written[-3]["snapshot_date"], model_name=name)
    assert query(settings, "SELECT COUNT(*) AS n FROM model_registry") == before


def test_lookup_answers_each_models_champion_score_or_the_named_ones(
    two_models, capsys, monkeypatch
):
    from credit_batch import catalog, cli

    settings, gmsc, cards = two_models
    for name in ("gmsc", "pd_cards"):
        run_pipeline(settings, snapshot_date=DATE, model_name=name, repeats=1, sample_rows=500)
    oracle = {
        r["model_version"]: r["score"]
        for r in query(
            settings, "SELECT model_version, score FROM predictions WHERE customer_id = 7"
        )
    }
    found = catalog.lookups(settings, 7)
    assert [(r["model_name"], r["model_version"]) for r in found] == [
        ("gmsc", gmsc.model_version),
        ("pd_cards", cards.model_version),
    ]
    assert [r["score"] for r in found] == [oracle[gmsc.model_version], oracle[cards.model_version]]
    assert (
        catalog.lookup(settings, 7, model_name="pd_cards")["model_version"] == cards.model_version
    )
    with pytest.raises(ParameterError, match="must name one of the models: gmsc, pd_cards"):
        catalog.lookup(settings, 7)
    monkeypatch.setenv("CREDIT_BATCH_HOME", str(settings.home))
    assert cli.main(["lookup", "7"]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if not x.startswith("  ")]
    assert [x.split(":")[0] for x in lines] == ["gmsc", "pd_cards"]
    assert cli.main(["lookup", "7", "--model-name", "pd_cards"]) == 0
    assert f"model {cards.model_version}" in capsys.readouterr().out


def test_the_http_api_answers_each_models_score_from_the_index(two_models):
    pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
    from fastapi.testclient import TestClient

    from credit_batch import serve

    settings, gmsc, cards = two_models
    run_pipeline(settings, snapshot_date=DATE, model_name="pd_cards", repeats=1, sample_rows=500)
    run_pipeline(
        settings, snapshot_date="2026-10-31", model_name="gmsc", repeats=1, sample_rows=500
    )
    stored = {
        (r["model_version"], str(r["snapshot_date"])): r["score"]
        for r in query(settings, "SELECT * FROM predictions WHERE customer_id = 11")
    }
    client = TestClient(serve.create_app(settings), raise_server_exceptions=False)
    client.headers["Authorization"] = f"Bearer {serve.create_api_key(settings, 'named')}"
    both = client.get("/v1/customers/11/scores")
    assert both.status_code == 200, both.text
    assert [(s["model_name"], s["snapshot_date"], s["score"]) for s in both.json()] == [
        ("gmsc", "2026-10-31", stored[(gmsc.model_version, "2026-10-31")]),
        ("pd_cards", DATE, stored[(cards.model_version, DATE)]),
    ]
    one = client.get("/v1/models/pd_cards/customers/11/score").json()
    assert (one["model_version"], one["score"]) == (
        cards.model_version,
        stored[(cards.model_version, DATE)],
    )
    older = client.get("/v1/models/gmsc/customers/11/score", params={"as_of": DATE})
    assert older.status_code == 404  # gmsc scored 2026-10-31 only
    ambiguous = client.get("/v1/customers/11/score")
    assert ambiguous.status_code == 422 and "gmsc, pd_cards" in ambiguous.text
    assert client.get("/v1/models/pd_loans/customers/11/score").status_code == 404
    assert client.get("/v1/models/no%20such/customers/11/score").status_code == 422


def test_online_scoring_names_its_model_and_answers_as_that_models_batch(two_models):
    pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
    import pyarrow.parquet as pq
    from fastapi.testclient import TestClient

    from credit_batch import serve
    from credit_batch.features import default_spec
    from credit_batch.stores import lake

    settings, gmsc, cards = two_models
    run_pipeline(settings, snapshot_date=DATE, model_name="pd_cards", repeats=1, sample_rows=500)
    date = dt.date.fromisoformat(DATE)
    [part, *_] = lake.features_parts(settings.lake, date, feature_set=default_spec().feature_set)
    row = pq.read_table(part.path).slice(0, 1).to_pylist()[0]
    customer = row.pop("customer_id")
    row.pop("snapshot_date")
    [batch] = query(
        settings,
        "SELECT score FROM predictions WHERE customer_id = :c AND model_version = :v",
        {"c": customer, "v": cards.model_version},
    )
    client = TestClient(serve.create_app(settings), raise_server_exceptions=False)
    client.headers["Authorization"] = f"Bearer {serve.create_api_key(settings, 'online')}"
    ready = client.get("/readyz").json()
    assert ready["champion"] == f"{gmsc.model_version},{cards.model_version}"
    online = client.post("/v1/models/pd_cards/score", json=row)
    assert online.status_code == 200, online.text
    assert online.json()["model_version"] == cards.model_version
    assert online.json()["score"] == pytest.approx(batch["score"], abs=1e-12)
    ambiguous = client.post("/v1/score", json=row)
    assert ambiguous.status_code == 422 and "gmsc, pd_cards" in ambiguous.text
    assert client.post("/v1/models/pd_loans/score", json=row).status_code == 404


def test_every_analyst_query_runs_on_a_database_of_two_models_and_finds_rows(two_models):
    import duckdb

    from tests.conftest import REPO

    settings, _, _ = two_models
    for name in ("gmsc", "pd_cards"):
        for date in (DATE, "2026-10-31"):
            run_pipeline(settings, snapshot_date=date, model_name=name, repeats=1, sample_rows=500)
    con = duckdb.connect(settings.results_url.removeprefix("duckdb:///"), read_only=True)
    for path in sorted((REPO / "sql" / "analyst").glob("*.sql")):
        assert con.sql(path.read_text()).fetchall(), path.name
    changes = con.sql((REPO / "sql/analyst/06_biggest_score_changes.sql").read_text()).fetchall()
    assert {row[0] for row in changes} <= {"gmsc", "pd_cards"}
    latest = "SELECT model_name, COUNT(*) FROM latest_predictions GROUP BY 1 ORDER BY 1"
    oracle = (  # each customer once per model: scored by that model's champion at any date
        "SELECT m.model_name, COUNT(DISTINCT p.customer_id) FROM predictions AS p "
        "JOIN model_registry AS m ON m.model_version = p.model_version "
        "WHERE m.status = 'champion' GROUP BY 1 ORDER BY 1"
    )
    assert con.sql(latest).fetchall() == con.sql(oracle).fetchall()
    assert [name for name, _ in con.sql(latest).fetchall()] == ["gmsc", "pd_cards"]
