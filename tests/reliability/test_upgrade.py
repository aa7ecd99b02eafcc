"""A results database written by the release before named models upgrades in place.

``tests/data/results_v1`` holds such a database (its rows, one Parquet file
per table, and that release's schema files): each test rebuilds it on DuckDB
or PostgreSQL as that release made it, then opens it with this one.
"""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from credit_batch import catalog, pipeline
from credit_batch.errors import SchemaVersionError
from credit_batch.stores import registry, results
from credit_batch.stores.db import connect, table_columns
from tests.conftest import REPO, make_settings, query

pytestmark = pytest.mark.services

V1 = REPO / "tests" / "data" / "results_v1"
TABLES = sorted(p.stem for p in V1.glob("*.parquet"))
CHAMPION = "hgb-20260731-85dcc00d4f"
RETIRED = "logreg-20260831-6f356207ac"


def _written_by_v1(url: str) -> None:
    """The v1 release's schema (its own files) and rows, in the database at ``url``."""
    with connect(url) as db, db.transaction():
        for name in ("results.sql", f"predictions.{db.dialect}.sql", "analyst_views.sql"):
            db.run_script((V1 / "schema" / name).read_text().replace("{key_type}", "BIGINT"))
        for table in TABLES:
            rows = pq.read_table(V1 / f"{table}.parquet")
            if rows.num_rows:
                db.bulk_insert(table, rows)


@pytest.fixture(params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def old_results(request, tmp_path):
    """Settings whose results database is the v1 one (the warehouse is not needed)."""
    if request.param == "duckdb":
        url = f"duckdb:///{tmp_path / 'results.duckdb'}"
    else:
        url = request.getfixturevalue("pg_url")
    _written_by_v1(url)
    return make_settings(tmp_path / "home", results_url=url)


def _rows(settings, table: str, columns: list[str]) -> list[tuple]:
    cols = ", ".join(columns)
    found = query(settings, f"SELECT {cols} FROM {table}")
    return sorted((tuple(str(r[c]) for c in columns) for r in found), key=repr)


def test_a_reader_refuses_the_old_database_naming_the_upgrade_and_changes_nothing(old_results):
    with pytest.raises(SchemaVersionError, match=r"schema version 1.*credit-batch upgrade"):
        registry.resolve(old_results, None)
    with connect(old_results.results_url) as db:
        assert results.schema_version(db, old_results) == 1  # no migration table made
        assert "model_name" not in table_columns(db, old_results.sql_dir, "model_registry")


def test_upgrade_keeps_every_row_and_names_each_version_by_its_spec(old_results):
    settings = old_results
    before = {t: pq.read_table(V1 / f"{t}.parquet") for t in TABLES}
    assert pipeline.upgrade(settings) == (1, results.SCHEMA_VERSION)
    for table, old in before.items():  # every old row, every old column, as it was
        assert query(settings, f"SELECT COUNT(*) AS n FROM {table}")[0]["n"] == old.num_rows
        columns = [c for c in old.column_names if c not in ("value",)]
        expected = sorted((tuple(str(r[c]) for c in columns) for r in old.to_pylist()), key=repr)
        assert _rows(settings, table, columns) == expected, table
    names = query(settings, "SELECT model_version, model_name FROM model_registry")
    assert {r["model_version"]: r["model_name"] for r in names} == {
        CHAMPION: "gmsc",
        RETIRED: "gmsc",
    }
    assert {r["model_name"] for r in query(settings, "SELECT model_name FROM model_events")} == {
        "gmsc"
    }
    assert registry.resolve(settings, None).model_version == CHAMPION
    assert registry.resolve(settings, None, model_name="gmsc").model_version == CHAMPION


def test_after_the_upgrade_lookups_answer_what_the_old_release_stored(old_results):
    settings = old_results
    pipeline.upgrade(settings)
    stored = pq.read_table(V1 / "predictions.parquet").to_pylist()
    newest = max(r["snapshot_date"] for r in stored if r["model_version"] == CHAMPION)
    want = {
        r["customer_id"]: r
        for r in stored
        if r["model_version"] == CHAMPION and r["snapshot_date"] == newest
    }
    for customer in sorted(want)[:5]:
        found = catalog.lookup(settings, customer)
        assert found["model_version"] == CHAMPION
        assert found["score"] == want[customer]["score"]
        assert found["risk_band"] == want[customer]["risk_band"]


def test_a_second_upgrade_changes_nothing_and_promotion_stays_per_model(old_results):
    settings = old_results
    pipeline.upgrade(settings)
    first = query(settings, "SELECT version, applied_at FROM schema_migrations")
    assert pipeline.upgrade(settings) == (results.SCHEMA_VERSION,) * 2
    assert query(settings, "SELECT version, applied_at FROM schema_migrations") == first
    promoted = pipeline.promote(settings, RETIRED, reason="back to the demo's model")
    assert promoted.status == "champion" and promoted.model_name == "gmsc"
    trail = query(settings, "SELECT model_version, event, model_name FROM model_events")
    assert {(r["model_version"], r["event"]) for r in trail} >= {
        (RETIRED, "promoted"),
        (CHAMPION, "retired"),
    }
    assert {r["model_name"] for r in trail} == {"gmsc"}


def test_a_database_of_a_newer_release_is_refused_by_readers_and_writers(old_results):
    settings = old_results
    pipeline.upgrade(settings)
    newer = results.SCHEMA_VERSION + 1
    with connect(settings.results_url) as db:
        db.execute(
            "INSERT INTO schema_migrations (version, description, applied_at) "
            "VALUES (:v, 'from the future', CURRENT_TIMESTAMP)",
            {"v": newer},
        )
    for read_only in (True, False):
        with pytest.raises(SchemaVersionError, match=f"schema version {newer}.*newer"):
            results.open_results(settings, read_only=read_only).close()
    rows = pq.read_table(V1 / "predictions.parquet").num_rows
    assert query(settings, "SELECT COUNT(*) AS n FROM predictions") == [{"n": rows}]
