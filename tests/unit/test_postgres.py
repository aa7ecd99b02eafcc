"""The same pipeline with warehouse and results in PostgreSQL (127.0.0.1:5432)."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest

from credit_batch import errors, pipeline
from credit_batch.run import RunOptions
from tests.conftest import REPO, expected_counts, query, run_pipeline

SLICE = "SELECT * FROM predictions WHERE snapshot_date = :d ORDER BY customer_id"


def test_postgres_run_stores_one_score_per_customer_and_rerun_leaves_identical_rows(pg_demo):
    settings, _, record = pg_demo
    run_pipeline(
        settings, snapshot_date="2026-09-30", rows_per_partition=1_000, sample_rows=800, repeats=2
    )
    first = query(settings, SLICE, {"d": dt.date(2026, 9, 30)})
    run_pipeline(
        settings, snapshot_date="2026-09-30", rows_per_partition=1_000, sample_rows=800, repeats=2
    )
    second = query(settings, SLICE, {"d": dt.date(2026, 9, 30)})
    want = expected_counts(settings, dt.date(2026, 9, 30))
    assert len(first) == len(second) == want["scored"]
    assert len({r["customer_id"] for r in second}) == want["scored"]
    assert len(query(settings, "SELECT * FROM quarantine")) == want["quarantined"] > 0
    drop = [{k: v for k, v in r.items() if k != "run_id"} for r in first]
    assert drop == [{k: v for k, v in r.items() if k != "run_id"} for r in second]
    assert {r["model_version"] for r in second} == {record.model_version}
    assert len(query(settings, "SELECT * FROM feature_importance")) == 26  # with, without labels


def test_postgres_copy_stores_the_scored_files_bit_for_bit(pg_demo):
    """The CSV stream of COPY loses no bit of a double."""
    import pyarrow.parquet as pq

    settings, _, record = pg_demo
    run_pipeline(settings, snapshot_date="2026-10-31")
    stored = {
        r["customer_id"]: r["score"] for r in query(settings, SLICE, {"d": dt.date(2026, 10, 31)})
    }
    files = sorted((Path(settings.lake_url) / "scores").rglob("part-*.parquet"))
    parquet = pq.read_table(files, partitioning=None).to_pydict()
    assert dict(zip(parquet["customer_id"], parquet["score"], strict=True)) == stored


def test_postgres_extract_writes_row_groups_of_many_rows_not_one_per_copy_row(pg_demo):
    """COPY hands out one row per block; the features part must not get one row group each."""
    import pyarrow.parquet as pq

    settings, _, _ = pg_demo
    plan = pipeline.extract(settings, RunOptions(snapshot_date="2026-09-30"))
    (part,) = plan.partitions
    meta = pq.ParquetFile(part["path"]).metadata
    assert meta.num_rows == part["rows"] == plan.run.rows_in > 2_000
    assert meta.num_row_groups == 1


def test_postgres_date_with_no_snapshot_writes_nothing(pg_demo):
    settings, _, _ = pg_demo
    with pytest.raises(errors.SnapshotNotFoundError, match="2026-10-15"):
        pipeline.extract(settings, RunOptions(snapshot_date="2026-10-15"))
    assert query(settings, "SELECT * FROM predictions") == []
    assert query(settings, "SELECT * FROM scoring_runs") == []


def test_analyst_queries_run_as_they_are_in_psql(pg_demo):
    settings, _, _ = pg_demo
    run_pipeline(settings, snapshot_date="2026-09-30", sample_rows=500, repeats=1)
    run_pipeline(settings, snapshot_date="2026-10-31")
    if shutil.which("psql") is None:
        pytest.skip("psql is not installed")
    dbname = settings.results_url.rsplit("/", 1)[1]
    for path in sorted((REPO / "sql" / "analyst").glob("*.sql")):
        done = subprocess.run(
            [
                "psql",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                dbname,
                "-v",
                "ON_ERROR_STOP=1",
                "-f",
                str(path),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, (path.name, done.stderr)
        assert "(0 rows)" not in done.stdout, path.name


def test_a_postgres_load_leaves_the_planner_statistics_of_what_it_loaded(pg_demo):
    """Autovacuum may be off or late: the load itself runs ANALYZE of the slice's tables."""
    settings, _, _ = pg_demo
    run_pipeline(settings, snapshot_date="2026-09-30", repeats=1)
    rows = query(
        settings,
        "SELECT relname, n_live_tup, last_analyze FROM pg_stat_user_tables "
        "WHERE relname IN ('predictions', 'quarantine', 'scoring_runs') ORDER BY relname",
    )
    assert [r["relname"] for r in rows] == ["predictions", "quarantine", "scoring_runs"]
    assert all(r["last_analyze"] is not None for r in rows), rows
    [stats] = query(settings, "SELECT reltuples FROM pg_class WHERE relname = 'predictions'")
    want = expected_counts(settings, dt.date(2026, 9, 30))
    assert stats["reltuples"] == want["scored"]  # the planner knows the rows just loaded


def test_two_writers_of_one_importance_slice_wait_in_turn_and_leave_one_copy(
    pg_demo, pg_admin, tmp_path, monkeypatch
):
    """Writer A pauses before its commit; B must wait for A's lock, not collide with its rows.

    Without a lock, B's delete cannot see A's uncommitted rows, its insert waits
    on A's unique keys and fails at A's commit ("duplicate key").
    """
    import threading
    import time

    import pyarrow as pa

    from credit_batch.stores import results

    settings, _, record = pg_demo
    run_pipeline(settings, snapshot_date="2026-09-30", repeats=1)
    key = {"snapshot_date": dt.date(2026, 9, 30), "model_version": record.model_version}
    where = " WHERE snapshot_date = :snapshot_date AND model_version = :model_version"
    importance = query(settings, "SELECT * FROM feature_importance" + where, key)
    dependence = query(settings, "SELECT * FROM partial_dependence" + where, key)
    [run] = query(settings, "SELECT run_id FROM scoring_runs" + where, key)
    tables = {
        m: pa.Table.from_pylist([r for r in importance if r["method"] == m])
        for m in {r["method"] for r in importance}
    }
    monkeypatch.setenv("CREDIT_BATCH_FAULT", "importance.before_commit:pause")
    monkeypatch.setenv("CREDIT_BATCH_FAULT_ONCE", str(tmp_path / "once"))
    monkeypatch.setenv("CREDIT_BATCH_FAULT_DIR", str(tmp_path))
    failures = []

    def write():
        try:
            with results.open_results(settings) as db:
                results.replace_importance(
                    db,
                    settings,
                    tables,
                    run_id=run["run_id"],
                    status="computed",
                    seconds=1.0,
                    key=key,
                    dependence=pa.Table.from_pylist(dependence),
                )
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    first = threading.Thread(target=write)
    first.start()
    deadline = time.monotonic() + 60
    while not (tmp_path / "importance.before_commit.reached").exists():
        assert time.monotonic() < deadline, "writer A never reached its commit"
        time.sleep(0.05)
    second = threading.Thread(target=write)
    second.start()
    waiting = "SELECT COUNT(*) FROM pg_locks WHERE NOT granted AND locktype = 'advisory'"
    while pg_admin.execute(waiting).fetchone()[0] == 0:
        assert time.monotonic() < deadline, "writer B did not wait for A's lock"
        time.sleep(0.05)
    (tmp_path / "importance.before_commit.go").touch()
    first.join(60)
    second.join(60)
    assert failures == []
    assert len(query(settings, "SELECT * FROM feature_importance" + where, key)) == len(importance)
    assert len(query(settings, "SELECT * FROM partial_dependence" + where, key)) == len(dependence)


_TYPED_TABLE = """
CREATE TABLE features (
    n_small INTEGER, n_big BIGINT NOT NULL, x DOUBLE PRECISION, label VARCHAR,
    day DATE, at TIMESTAMP, at_utc TIMESTAMPTZ, flag BOOLEAN
)
"""


def _typed_rows():
    import pyarrow as pa

    return pa.table(
        {
            "n_small": pa.array([1, None, -(2**31)], pa.int64()),
            "n_big": pa.array([2**62, 5, -1], pa.int64()),
            "x": [5e-324, 1.7976931348623157e308, 0.1 + 0.2],
            "label": pa.array(["a", None, 'é,"\n']).dictionary_encode(),
            "day": [dt.date(2026, 9, 30), None, dt.date(1, 1, 1)],
            "at": [dt.datetime(2026, 9, 30, 1, 2, 3, 456789), None, dt.datetime(2000, 1, 1)],
            "at_utc": pa.array(
                [dt.datetime(2026, 9, 30, 23, 59, tzinfo=dt.UTC), None, None],
                pa.timestamp("us", tz="UTC"),
            ),
            "flag": [True, None, False],
        }
    )


def test_bulk_insert_into_postgresql_keeps_every_value_of_every_type_exactly(pg_url):
    """Binary COPY casts each column to the table's own type: doubles, dates and text exact."""
    from credit_batch.stores.db import connect

    rows = _typed_rows()
    with connect(pg_url) as db:
        db.run_script(_TYPED_TABLE)
        assert db.bulk_insert("features", rows) == 3
        back = db.fetch_arrow("SELECT * FROM features ORDER BY n_big DESC").to_pylist()
    assert back == rows.to_pylist()


def test_bulk_insert_of_a_value_too_big_for_its_column_names_the_table_and_writes_nothing(pg_url):
    import pyarrow as pa

    from credit_batch.stores.db import connect

    too_big = _typed_rows().set_column(0, "n_small", pa.array([1, 2**40, 3], pa.int64()))
    with connect(pg_url) as db:
        db.run_script(_TYPED_TABLE)
        fails = pytest.raises(errors.DataError, match=r"features.*does not fit")
        with fails as caught, db.transaction():
            db.bulk_insert("features", too_big)
        assert caught.value.table == "features"
        assert db.fetch_arrow("SELECT COUNT(*) AS n FROM features").to_pylist() == [{"n": 0}]


def test_bulk_insert_into_a_json_column_goes_as_text_and_keeps_the_rows(pg_url):
    """A type binary COPY is not given (JSON here) falls back to CSV, which the server parses."""
    import pyarrow as pa

    from credit_batch.stores.db import connect

    with connect(pg_url) as db:
        db.run_script("CREATE TABLE outcomes (customer_id BIGINT, details JSON)")
        rows = pa.table({"customer_id": [1, 2], "details": ['{"a": 1}', None]})
        assert db.bulk_insert("outcomes", rows) == 2
        back = db.fetch_arrow("SELECT customer_id, details::text AS d FROM outcomes ORDER BY 1")
    assert back.to_pylist() == [{"customer_id": 1, "d": '{"a": 1}'}, {"customer_id": 2, "d": None}]
