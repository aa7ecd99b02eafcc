"""The error budget at its exact boundary, repeated customer ids, and latest_predictions
across dates and models: each checked against what the warehouse holds."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from credit_batch import errors, pipeline
from tests.conftest import expected_counts, query, run_pipeline

pytestmark = pytest.mark.unit

DATE = dt.date(2026, 9, 30)


def _warehouse(settings):
    return duckdb.connect(settings.warehouse_url.removeprefix("duckdb:///"))


_A_VALID_CUSTOMER = (
    "SELECT MIN(customer_id) FROM features WHERE snapshot_date = ? AND age BETWEEN 30 AND 60"
)


def _break_one_more_row(settings) -> None:
    """Give one valid customer of DATE an impossible age."""
    with _warehouse(settings) as con:
        con.execute(
            "UPDATE features SET age = 0 "
            f"WHERE snapshot_date = ? AND customer_id = ({_A_VALID_CUSTOMER})",
            [DATE, DATE],
        )


def test_error_budget_holds_exactly_at_its_boundary_and_one_more_row_fails(demo):
    settings, _, _ = demo
    want = expected_counts(settings, DATE)
    assert want["quarantined"] > 0
    budget = want["quarantined"] / want["rows_in"]
    out = run_pipeline(settings, snapshot_date=DATE, max_quarantine_fraction=budget, repeats=1)
    assert out["loaded"]["rows_quarantined"] == want["quarantined"]
    _break_one_more_row(settings)
    assert expected_counts(settings, DATE)["quarantined"] == want["quarantined"] + 1
    with pytest.raises(errors.QuarantineBudgetError, match="error budget"):
        run_pipeline(settings, snapshot_date=DATE, max_quarantine_fraction=budget, repeats=1)
    stored = query(
        settings, "SELECT COUNT(*) AS n FROM predictions WHERE snapshot_date = :d", {"d": DATE}
    )
    assert stored == [{"n": want["scored"]}]  # the earlier slice, untouched


@pytest.mark.parametrize("rows_per_partition", [None, 1_000])
def test_a_customer_id_present_twice_quarantines_every_copy_and_scores_neither(
    demo, rows_per_partition
):
    """The copy goes in last: rows come in the table's order (the extract sorts nothing),
    so with 1,000-row partitions the two copies are scored by different tasks."""
    settings, _, _ = demo
    with _warehouse(settings) as con:
        [(customer,)] = con.execute(_A_VALID_CUSTOMER, [DATE]).fetchall()
        # a warehouse without a primary key, as many are: the copy goes in
        con.execute("CREATE TABLE unkeyed AS SELECT * FROM features")
        con.execute("DROP TABLE features")
        con.execute("ALTER TABLE unkeyed RENAME TO features")
        con.execute(
            "INSERT INTO features "
            "SELECT * FROM features WHERE snapshot_date = ? AND customer_id = ?",
            [DATE, customer],
        )
    want = expected_counts(settings, DATE)
    out = run_pipeline(
        settings, snapshot_date=DATE, repeats=1, rows_per_partition=rows_per_partition
    )
    if rows_per_partition:  # the copies sit in the first and the last partition
        assert len(out["plan"].partitions) == -(-want["rows_in"] // rows_per_partition) > 1
    copies = query(
        settings,
        "SELECT reason FROM quarantine WHERE snapshot_date = :d AND customer_id = :c",
        {"d": DATE, "c": customer},
    )
    assert len(copies) == 2 and all("duplicate" in c["reason"] for c in copies)
    scored = query(
        settings,
        "SELECT COUNT(*) AS n FROM predictions WHERE snapshot_date = :d AND customer_id = :c",
        {"d": DATE, "c": customer},
    )
    assert scored == [{"n": 0}]
    [run] = query(settings, "SELECT rows_in, rows_scored, rows_quarantined FROM scoring_runs")
    assert run == {
        "rows_in": want["rows_in"],
        "rows_scored": want["scored"] - 2,
        "rows_quarantined": want["quarantined"] + 2,
    }


def test_latest_predictions_gives_each_customers_newest_champion_score(demo):
    settings, written, first = demo
    run_pipeline(settings, snapshot_date="2026-09-30", repeats=1)
    run_pipeline(settings, snapshot_date="2026-10-31", repeats=1)
    other = pipeline.train(settings, until=written[-3]["snapshot_date"], algorithm="hgb", seed=1)
    run_pipeline(settings, snapshot_date="2026-10-31", model_version=other.model_version, repeats=1)
    sql = (
        "SELECT p.customer_id, p.snapshot_date, p.model_version, p.score FROM predictions AS p "
        "JOIN latest_predictions AS l USING (customer_id, snapshot_date, model_version)"
    )
    latest = query(settings, "SELECT * FROM latest_predictions")

    def expected(champion):
        rows = query(
            settings,
            "SELECT customer_id, snapshot_date, score FROM predictions WHERE model_version = :m",
            {"m": champion},
        )
        newest = {}
        for r in sorted(rows, key=lambda r: r["snapshot_date"]):
            newest[r["customer_id"]] = (r["snapshot_date"], r["score"])
        return newest

    got = {r["customer_id"]: (r["snapshot_date"], r["score"]) for r in latest}
    assert got == expected(first.model_version)
    assert len(query(settings, sql)) == len(latest)
    pipeline.promote(settings, other.model_version)
    got = {
        r["customer_id"]: (r["snapshot_date"], r["score"])
        for r in query(settings, "SELECT * FROM latest_predictions")
    }
    assert got == expected(other.model_version)
    assert {d for d, _ in got.values()} == {dt.date(2026, 10, 31)}
