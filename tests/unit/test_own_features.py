"""A lender's own feature table, declared in a spec file: trained, scored, explained.

The table ``accounts`` has its own key, snapshot column, feature names and
types (an integer count, a boolean flag) and its own outcomes table; the
spec has no query file (the pipeline generates the SQL from its names).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from credit_batch import errors, pipeline
from credit_batch.features import DEFAULT_FEATURE_SPEC, load_spec
from credit_batch.stores.db import connect
from tests.conftest import query, run_pipeline
from tests.unit.test_spec import VALID

# Lanes per test: this file holds unit tests and tests that need a service.

DATE = dt.date(2026, 9, 30)
_TABLES = """
CREATE TABLE accounts AS
SELECT customer_id AS acct_no, snapshot_date AS as_of,
       revolving_unsecured_line_utilization AS utilization, age AS age_years,
       CAST(num_90_days_late AS INTEGER) AS times_90_late, debt_ratio > 1 AS over_indebted,
       CASE customer_id % 5 WHEN 0 THEN 'north' WHEN 1 THEN 'south' WHEN 2 THEN 'east'
            WHEN 3 THEN 'west' ELSE 'mars' END AS region,
       CASE WHEN customer_id % 401 = 0 THEN 'boat'
            WHEN num_real_estate_loans IS NULL OR customer_id % 11 = 0 THEN NULL
            WHEN num_real_estate_loans = 0 THEN 'rent'
            WHEN num_real_estate_loans = 1 THEN 'mortgage' ELSE 'own' END AS housing
FROM features;
CREATE TABLE account_outcomes AS
SELECT customer_id AS acct_no, snapshot_date AS as_of, delinquency AS went_bad FROM outcomes
"""
# An oracle written apart from the package: the rows that break the spec's rules.
_BROKEN = """
SELECT COUNT(*) AS n FROM accounts WHERE as_of = :d AND (
    utilization IS NULL OR utilization < 0 OR age_years IS NULL OR age_years < 18
    OR age_years > 120 OR times_90_late IS NULL OR times_90_late < 0
    OR times_90_late IN (96, 98) OR housing NOT IN ('own', 'rent', 'mortgage'))
"""
# Scored rows with a region the spec does not declare: scored as "other", counted.
_OTHER = """
SELECT COUNT(*) AS n FROM accounts WHERE as_of = :d AND region = 'mars'
    AND utilization >= 0 AND age_years BETWEEN 18 AND 120 AND times_90_late >= 0
    AND times_90_late NOT IN (96, 98)
    AND (housing IS NULL OR housing IN ('own', 'rent', 'mortgage'))
"""


@pytest.fixture(
    params=[
        pytest.param("duckdb", marks=pytest.mark.unit),
        pytest.param("postgresql", marks=pytest.mark.services),
    ]
)
def own(request, tmp_path):
    """A demo home whose warehouse also holds ``accounts``; a model trained on its spec."""
    fixture = "demo" if request.param == "duckdb" else "pg_demo"
    settings, _, champion = request.getfixturevalue(fixture)
    with connect(settings.warehouse_url) as wh:
        wh.run_script(_TABLES)
    (tmp_path / "spec").mkdir()
    path = tmp_path / "spec" / "accounts.toml"
    path.write_text(VALID)
    record = pipeline.train(dataclasses.replace(settings, spec_path=path), until="2026-08-31")
    return settings, path, record, champion


def _warehouse_count(settings, sql: str) -> int:
    with connect(settings.warehouse_url, read_only=True) as wh:
        return wh.fetch_arrow(sql, {"d": DATE}).to_pylist()[0]["n"]


def test_own_table_is_scored_by_its_spec_and_explained_per_its_features(own):
    settings, path, record, _ = own
    spec = load_spec(path)
    [row] = query(
        settings,
        "SELECT * FROM model_registry WHERE model_version = :v",
        {"v": record.model_version},
    )
    assert row["spec_hash"] == spec.digest and record.features == tuple(spec.names)
    run_pipeline(
        settings, snapshot_date="2026-09-30", model_version=record.model_version, repeats=2
    )
    key = {"d": DATE, "v": record.model_version}
    where = " WHERE snapshot_date = :d AND model_version = :v"
    rows = query(settings, "SELECT * FROM predictions" + where, key)
    total = _warehouse_count(settings, "SELECT COUNT(*) AS n FROM accounts WHERE as_of = :d")
    broken = _warehouse_count(settings, _BROKEN)
    assert broken > 0
    assert len(rows) == total - broken
    assert len(query(settings, "SELECT * FROM quarantine" + where, key)) == broken
    reasons = {r[f"reason_{i}"] for r in rows for i in (1, 2, 3)} - {None}
    assert reasons and reasons <= set(spec.names)  # a categorical is one reason, not one per level
    [run] = query(settings, "SELECT * FROM scoring_runs" + where, key)
    other = _warehouse_count(settings, _OTHER)
    assert run["rows_other_category"] == other > 0
    quarantined = query(
        settings, "SELECT reason FROM quarantine" + where + " AND reason LIKE 'housing%'", key
    )
    assert quarantined and all("isin" in q["reason"] for q in quarantined)
    importance = query(settings, "SELECT DISTINCT feature FROM feature_importance" + where, key)
    assert {r["feature"] for r in importance} == set(spec.names)
    drift = query(settings, "SELECT feature FROM drift" + where, key)
    assert {r["feature"] for r in drift} == {*spec.names, "score"}
    [text] = query(
        settings, "SELECT reason_text FROM feature_reasons WHERE feature = 'utilization'"
    )
    assert text["reason_text"] == "High use of credit lines"


def test_two_models_with_their_own_specs_keep_their_columns_apart(own):
    settings, _, record, champion = own
    run_pipeline(
        settings, snapshot_date="2026-09-30", model_version=record.model_version, repeats=1
    )
    run_pipeline(settings, snapshot_date="2026-09-30", repeats=1)  # the GMSC champion
    by_model = query(
        settings,
        "SELECT model_version, reason_1 FROM predictions WHERE snapshot_date = :d",
        {"d": DATE},
    )
    seen = {}
    for r in by_model:
        seen.setdefault(r["model_version"], set()).add(r["reason_1"])
    assert set(seen) == {record.model_version, champion.model_version}
    assert seen[record.model_version] - {None} <= set(record.features)
    assert seen[champion.model_version] - {None} <= set(DEFAULT_FEATURE_SPEC.names)
    gmsc_text = query(settings, "SELECT reason_text FROM feature_reasons WHERE feature = 'age'")
    assert gmsc_text == [{"reason_text": "Age of the borrower"}]


def test_a_model_whose_spec_the_warehouse_no_longer_fits_is_refused_before_any_write(own):
    settings, _, record, _ = own
    with connect(settings.warehouse_url) as wh:
        wh.run_script("ALTER TABLE accounts DROP COLUMN age_years")
        wh.run_script("ALTER TABLE accounts ADD COLUMN age_years VARCHAR")
        wh.run_script("ALTER TABLE accounts DROP COLUMN times_90_late")
    with pytest.raises(errors.SchemaMismatchError) as info:
        run_pipeline(settings, snapshot_date="2026-09-30", model_version=record.model_version)
    message = str(info.value)
    assert "column age_years is " in message and "not numeric" in message
    assert "column times_90_late is missing" in message
    assert not (Path(settings.lake_url) / "features" / "snapshot_date=2026-09-30").exists()
    assert (
        query(
            settings,
            "SELECT * FROM scoring_runs WHERE model_version = :v",
            {"v": record.model_version},
        )
        == []
    )


def test_spec_check_reports_what_the_warehouse_holds(own, capsys, monkeypatch):
    from credit_batch.cli import main

    settings, path, _, _ = own
    monkeypatch.setenv("CREDIT_BATCH_HOME", str(settings.home))
    monkeypatch.setenv("CREDIT_BATCH_WAREHOUSE_URL", settings.warehouse_url)
    monkeypatch.setenv("CREDIT_BATCH_RESULTS_URL", settings.results_url)
    assert main(["spec", "check", str(path), "--date", "2026-09-30"]) == 0
    out = capsys.readouterr().out
    broken = _warehouse_count(settings, _BROKEN)
    assert f"spec accounts ({path}): valid" in out
    assert "table accounts: 6 features fit (query-derived: none)" in out
    assert f"{broken:,} sampled rows break a rule" in out
    assert "region: undeclared categories (scored as other): mars (" in out
    assert "housing: undeclared categories (quarantined): boat (" in out
    assert main(["spec", "check", str(path), "--date", "2026-09-15"]) == 2
    assert "snapshot 2026-09-15 has no rows" in capsys.readouterr().err


@pytest.mark.parametrize(
    "fixture",
    [
        pytest.param("demo", marks=pytest.mark.unit),
        pytest.param("pg_demo", marks=pytest.mark.services),
    ],
)
def test_a_results_database_of_an_older_version_gets_the_new_columns_and_reads_as_gmsc(
    fixture, request
):
    """Registries written before specs hold GMSC models: their NULL spec reads as the default."""
    from credit_batch.stores import registry, results

    settings, _, champion = request.getfixturevalue(fixture)
    old = [
        ("model_registry", "spec"),
        ("model_registry", "spec_hash"),
        ("scoring_runs", "rows_other_category"),
        ("partial_dependence", "grid_label"),
    ]
    with connect(settings.results_url) as db:
        for table, column in old:
            db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    with results.open_results(settings) as db:  # a writer opens it: the columns come back
        record = registry.champion(db, settings)
    assert record.model_version == champion.model_version and record.spec is None
    assert record.feature_spec == DEFAULT_FEATURE_SPEC
    for table, column in old:  # the column is back (the query would fail without it)
        got = query(settings, f"SELECT {column} FROM {table}")
        assert all(r[column] is None for r in got)
    assert len(query(settings, "SELECT spec FROM model_registry")) >= 1  # not vacuous there
    run_pipeline(settings, snapshot_date="2026-09-30", repeats=1)
    [run] = query(settings, "SELECT rows_other_category FROM scoring_runs")
    assert run["rows_other_category"] == 0
