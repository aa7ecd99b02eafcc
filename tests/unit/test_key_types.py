"""Keys of both kinds in one results database: GMSC's integer ids beside the loan book's
string ids, each model's slices in the keyed tables of its own key type."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from credit_batch import catalog, errors, pipeline, portfolio
from credit_batch.config import LENDER_SPEC_PATH
from credit_batch.run import RunOptions
from credit_batch.stores import results
from credit_batch.stores.db import connect, table_columns
from tests.conftest import expected_counts, query
from tests.e2e.test_lender_example import _BROKEN

pytestmark = pytest.mark.unit

DATE = dt.date(2026, 9, 30)
SMALL = {"importance_sample_rows": 400, "importance_repeats": 1}
PER_MODEL = """
SELECT r.model_name, COUNT(p.customer_id) AS n
FROM {table} p JOIN model_registry r USING (model_version)
WHERE p.snapshot_date = :d GROUP BY r.model_name ORDER BY r.model_name
"""


def add_lender(settings):
    """The loan book (string keys) beside the demo's GMSC book (integer keys), and a promoted
    ``lender`` champion on it; returns its record."""
    pipeline.demo_data(settings, "lender", rows=1_000, snapshots=3, seed=2)
    on_lender = dataclasses.replace(settings, spec_path=LENDER_SPEC_PATH)
    trained = pipeline.train(on_lender, until="2026-08-31", model_name="lender")
    return pipeline.promote(settings, trained.model_version, reason="the loan book")


def lender_oracle(settings, date=DATE) -> dict:
    """The loan book's rows of ``date`` and those breaking its spec's rules (SQL, apart)."""
    sql = "SELECT COUNT(*) AS n FROM loan_book WHERE month_end = :d AND "
    with connect(settings.warehouse_url, read_only=True) as wh:
        total, broken = (
            wh.fetch_arrow(sql + where, {"d": date}).to_pylist()[0]["n"]
            for where in ("TRUE", _BROKEN)
        )
    return {"rows_in": total, "quarantined": broken, "scored": total - broken}


def test_integer_and_string_keyed_models_load_side_by_side_in_one_results_database(demo):
    settings, _, gmsc = demo
    lender = add_lender(settings)
    night = portfolio.run_night(settings, RunOptions(snapshot_date=DATE, **SMALL))
    assert sorted(night.results) == ["gmsc", "lender"] and not night.failed
    want_gmsc, want_lender = expected_counts(settings, DATE), lender_oracle(settings)
    assert want_lender["quarantined"] > 0
    assert query(settings, PER_MODEL.format(table="predictions"), {"d": DATE}) == [
        {"model_name": "gmsc", "n": want_gmsc["scored"]}
    ]
    assert query(settings, PER_MODEL.format(table="predictions_string_keys"), {"d": DATE}) == [
        {"model_name": "lender", "n": want_lender["scored"]}
    ]
    quarantined = {
        table: query(settings, f"SELECT model_version, COUNT(*) AS n FROM {table} GROUP BY 1")
        for table in ("quarantine", "quarantine_string_keys")
    }
    assert quarantined == {
        "quarantine": [{"model_version": gmsc.model_version, "n": want_gmsc["quarantined"]}],
        "quarantine_string_keys": [
            {"model_version": lender.model_version, "n": want_lender["quarantined"]}
        ],
    }
    with connect(settings.results_url, read_only=True) as db:
        types = {t: table_columns(db, settings.sql_dir, t)["customer_id"] for t in quarantined}
        types |= {
            t: table_columns(db, settings.sql_dir, t)["customer_id"]
            for t in ("predictions", "predictions_string_keys")
        }
        assert results.key_suffixes(db, settings) == {"integer": "", "string": "_string_keys"}
    assert types == {
        "predictions": "BIGINT",
        "quarantine": "BIGINT",
        "predictions_string_keys": "VARCHAR",
        "quarantine_string_keys": "VARCHAR",
    }
    report = night.results["lender"].report["report_path"]
    assert f"{want_lender['scored']:,}" in Path(report).read_text(encoding="utf-8")


def test_lookups_of_either_kind_of_key_answer_from_the_model_that_keys_that_way(demo):
    """An ``LN...`` id is the loan book's, a number GMSC's: each lookup (the catalog's SQL
    and the service's in-memory index alike) answers with that model's newest score; the
    analysts' views show the newest score per model of each kind."""
    from credit_batch.serve import _ScoreIndex

    settings, _, gmsc = demo
    lender = add_lender(settings)
    for date in (dt.date(2026, 8, 31), DATE):
        portfolio.run_night(settings, RunOptions(snapshot_date=date, **SMALL))
    account = query(settings, "SELECT MIN(customer_id) AS c FROM predictions_string_keys")[0]["c"]
    number = query(settings, "SELECT MIN(customer_id) AS c FROM predictions")[0]["c"]
    index = _ScoreIndex(settings)
    for customer, record in ((account, lender), (str(number), gmsc)):
        for found in (catalog.lookups(settings, customer), index.lookups(customer, None)):
            assert [(r["model_name"], r["model_version"]) for r in found] == [
                (record.model_name, record.model_version)
            ]
            assert found[0]["snapshot_date"] == DATE and str(found[0]["customer_id"]) == customer
        history = catalog.history(settings, customer)
        assert [r["snapshot_date"] for r in history] == [DATE, dt.date(2026, 8, 31)]
    assert catalog.lookups(settings, "LN-never-seen") == []
    with pytest.raises(errors.ParameterError, match="customer id"):
        catalog.lookups(settings, "x" * 65)
    latest = "SELECT model_name, COUNT(*) AS n, COUNT(DISTINCT customer_id) AS c FROM {}"
    latest += " GROUP BY 1"
    customers = "SELECT COUNT(DISTINCT customer_id) AS c FROM {}"
    for view, table, name in (
        ("latest_predictions", "predictions", "gmsc"),
        ("latest_predictions_string_keys", "predictions_string_keys", "lender"),
    ):
        [c] = query(settings, customers.format(table))
        assert query(settings, latest.format(view)) == [{"model_name": name, "n": c["c"], **c}]


def test_a_string_keyed_database_takes_an_integer_keyed_model_beside_it(tmp_path):
    """The first model decides the plain tables' key type: here the loan book's strings;
    GMSC's integers then go to ``predictions_integer_keys``."""
    from credit_batch.config import Settings

    settings = Settings(home=tmp_path / "home")
    lender = add_lender(settings)
    pipeline.demo_data(settings, rows=1_500, snapshots=3, seed=4)
    gmsc = pipeline.promote(settings, pipeline.train(settings, until="2026-08-31").model_version)
    night = portfolio.run_night(settings, RunOptions(snapshot_date=DATE, **SMALL))
    assert sorted(night.results) == ["gmsc", "lender"] and not night.failed
    assert query(settings, PER_MODEL.format(table="predictions_integer_keys"), {"d": DATE}) == [
        {"model_name": "gmsc", "n": expected_counts(settings, DATE)["scored"]}
    ]
    assert query(settings, PER_MODEL.format(table="predictions"), {"d": DATE}) == [
        {"model_name": "lender", "n": lender_oracle(settings)["scored"]}
    ]
    number = query(settings, "SELECT MIN(customer_id) AS c FROM predictions_integer_keys")[0]["c"]
    account = query(settings, "SELECT MIN(customer_id) AS c FROM predictions")[0]["c"]
    for customer, record in ((str(number), gmsc), (account, lender)):
        [row] = catalog.lookups(settings, customer)
        assert (row["model_version"], row["snapshot_date"]) == (record.model_version, DATE)
