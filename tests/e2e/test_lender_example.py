"""The second example through the real DAG: a loan book with its own key and categories.

``credit-batch demo --example lender`` builds it; here the same warehouse is
scored by ``credit_batch_nightly`` under ``airflow dags test`` on DuckDB and
on PostgreSQL, and every figure is checked against an oracle written apart
from the package (SQL on the warehouse, the model's own ``predict_proba``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest

from credit_batch import pipeline
from credit_batch.config import LENDER_SPEC_PATH, Settings
from credit_batch.features import load_spec
from credit_batch.stores.db import connect
from tests.conftest import expected_counts, query
from tests.e2e.test_airflow_nightly import SMALL, airflow_dags_test

pytestmark = pytest.mark.e2e

NEWEST = dt.date(2026, 10, 31)
# The spec's rules, written again as SQL: the rows the night must quarantine
# (COALESCE: a NULL where NULL is allowed, e.g. housing, breaks no rule).
_BROKEN = """
COALESCE(age IS NULL OR age < 18 OR age > 100 OR income < 0 OR credit_limit IS NULL
 OR credit_limit < 0 OR balance IS NULL OR balance < 0 OR credit_limit = 0
 OR balance / credit_limit > 5 OR debt_to_income < 0 OR months_on_book IS NULL
 OR months_on_book < 0 OR inquiries_6m IS NULL OR inquiries_6m < 0
 OR missed_payments_12m IS NULL OR missed_payments_12m < 0 OR missed_payments_12m = 99
 OR has_mortgage IS NULL
 OR employment IS NULL
 OR employment NOT IN ('employed', 'self_employed', 'unemployed', 'retired', 'student', 'other')
 OR housing NOT IN ('own', 'mortgage', 'rent', 'family', 'other')
 OR loan_purpose IS NULL OR loan_purpose NOT IN ('car', 'home_improvement',
    'debt_consolidation', 'education', 'medical', 'business', 'wedding', 'travel', 'other')
 OR region IS NULL
 OR channel IS NULL OR channel NOT IN ('branch', 'online', 'broker', 'phone', 'partner'),
 FALSE)
"""
_REGIONS = (
    "'north_east', 'north_west', 'yorkshire', 'midlands', 'east', 'london', 'south_east', "
    "'south_west', 'wales', 'scotland'"
)


@pytest.fixture(params=["duckdb", "postgresql"])
def lender(request, tmp_path):
    """The loan book (4 month-ends, the newest without outcomes) and its promoted model,
    beside the GMSC book and its champion in the same warehouse and results database
    (integer keys first, the loan book's strings beside them)."""
    settings = Settings(home=tmp_path / "home")
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
        settings = dataclasses.replace(settings, warehouse_url=url, results_url=url)
    written = pipeline.demo_data(settings, rows=1_500, snapshots=4, seed=5)
    gmsc = pipeline.train(settings, until=written[-3]["snapshot_date"])
    pipeline.promote(settings, gmsc.model_version)
    written = pipeline.demo_data(settings, rows=3_000, snapshots=4, seed=3, example="lender")
    trained = pipeline.train(
        dataclasses.replace(settings, spec_path=LENDER_SPEC_PATH),
        until=written[-3]["snapshot_date"],
    )
    return settings, pipeline.promote(settings, trained.model_version)


def _count(settings, where: str) -> int:
    with connect(settings.warehouse_url, read_only=True) as wh:
        sql = f"SELECT COUNT(*) AS n FROM loan_book WHERE month_end = :d AND {where}"
        return wh.fetch_arrow(sql, {"d": NEWEST}).to_pylist()[0]["n"]


def test_the_loan_book_through_the_nightly_dag_is_scored_explained_and_counted_exactly(
    airflow_db, lender
):
    settings, record = lender
    spec = load_spec(LENDER_SPEC_PATH)
    airflow_dags_test(airflow_db, settings, "2026-11-02", SMALL)
    total, broken = _count(settings, "TRUE"), _count(settings, _BROKEN)
    other = _count(settings, f"region NOT IN ({_REGIONS}) AND NOT {_BROKEN}")
    assert broken > 0 and other > 0
    key = {"d": NEWEST, "v": record.model_version}
    where = " WHERE snapshot_date = :d AND model_version = :v"
    [run] = query(settings, "SELECT * FROM scoring_runs" + where, key)
    assert (run["rows_in"], run["rows_scored"], run["rows_quarantined"]) == (
        total,
        total - broken,
        broken,
    )
    assert run["rows_other_category"] == other
    table = "predictions_string_keys"  # beside GMSC's integer keys, in `predictions`
    rows = query(settings, f"SELECT * FROM {table}" + where + " ORDER BY customer_id", key)
    assert len(rows) == total - broken == len({r["customer_id"] for r in rows})
    assert all(r["customer_id"].startswith("LN") for r in rows)  # string keys, kept as strings
    _both_kinds_answer(settings, record, rows[0]["customer_id"], len(rows))
    reasons = {r[f"reason_{i}"] for r in rows for i in (1, 2, 3)} - {None}
    assert reasons <= set(spec.names) and reasons & set(spec.categorical)
    drift = query(settings, "SELECT feature, psi FROM drift" + where, key)
    assert {d["feature"] for d in drift} == {*spec.names, "score"}
    importance = query(settings, "SELECT feature, method FROM feature_importance" + where, key)
    assert {i["method"] for i in importance} == {"permutation_unlabeled"}  # no outcomes yet
    assert sorted(i["feature"] for i in importance) == sorted(spec.names)
    _reasons_add_up(settings, record, spec, rows[:300])


def _both_kinds_answer(settings, record, account: str, scored: int) -> None:
    """GMSC's slice of the same night, exact against its oracle; a lookup of either kind of
    key answers with the model that keys that way; the newest score per model of each."""
    from credit_batch import catalog

    want = expected_counts(settings, NEWEST)
    sql = "SELECT r.model_name, COUNT(*) AS n FROM {} p JOIN model_registry r USING"
    sql += " (model_version) WHERE p.snapshot_date = :d GROUP BY 1"
    assert query(settings, sql.format("predictions"), {"d": NEWEST}) == [
        {"model_name": "gmsc", "n": want["scored"]}
    ]
    number = query(settings, "SELECT MIN(customer_id) AS c FROM predictions")[0]["c"]
    for customer, name in ((account, record.model_name), (str(number), "gmsc")):
        [found] = catalog.lookups(settings, customer)
        assert (found["model_name"], found["snapshot_date"]) == (name, NEWEST)
    latest = "SELECT model_name, COUNT(*) AS n FROM {} GROUP BY 1"
    assert query(settings, latest.format("latest_predictions")) == [
        {"model_name": "gmsc", "n": want["scored"]}
    ]
    assert query(settings, latest.format("latest_predictions_string_keys")) == [
        {"model_name": record.model_name, "n": scored}  # one night: its every account
    ]


def _reasons_add_up(settings, record, spec, stored: list[dict]) -> None:
    """The stored scores are the model's own; the stored reasons its top SHAP values,
    which with the rest add up to the log-odds."""
    from credit_batch.steps import explain
    from credit_batch.steps.encoding import model_frame
    from credit_batch.stores import registry

    model = registry.load_model(
        settings, record.artifact_path, record.sha256, version=record.model_version
    )
    with connect(settings.warehouse_url, read_only=True) as wh:
        table = wh.fetch_arrow(spec.query("features"), {"snapshot_date": NEWEST})
    frame = table.to_pandas().set_index("customer_id").loc[[r["customer_id"] for r in stored]]
    x = model_frame(frame, spec)
    scores, phi, base = explain.explain(model, x, background=record.background)
    # within a few ulps of predict_proba (BLAS sums each row in another order), and the
    # stored scores the same bits: a row scores alike in any batch (explain._linear_scores)
    np.testing.assert_allclose(scores, model.predict_proba(x)[:, 1], rtol=4e-15, atol=0)
    np.testing.assert_array_equal([r["score"] for r in stored], scores)
    assert np.abs(phi.sum(axis=1) + base - np.log(scores / (1 - scores))).max() < 1e-6
    top = explain.top_reasons(phi, spec.names)
    assert [r["reason_1"] for r in stored] == top[0].to_pylist()
    np.testing.assert_allclose(
        [r["reason_1_value"] for r in stored], top[1].to_pylist(), rtol=1e-12
    )
