"""The same pipeline with warehouse and results in PostgreSQL (127.0.0.1:5432)."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from credit_batch import errors, pipeline
from credit_batch.run import RunOptions
from credit_batch.stores.db import _adbc_postgresql as _REAL_DRIVER
from tests.conftest import REPO, advisory_waits, expected_counts, query, run_pipeline

pytestmark = pytest.mark.services

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
    # B's backend, in this test's own database, blocked by A's backend in it: not any
    # ungranted advisory lock of the cluster (another test's, under xdist).
    while not any(blockers for _, blockers in advisory_waits(pg_admin, settings.results_url)):
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


_READ_TABLE = """
CREATE TABLE features (
    snapshot_date DATE, customer_id BIGINT, n INTEGER, x DOUBLE PRECISION,
    amount NUMERIC(12, 2), label VARCHAR, at TIMESTAMP, flag BOOLEAN
);
INSERT INTO features VALUES
    ('2026-09-30', 1, 7, 5e-324, 12.5, 'a', '2026-09-30 01:02:03.456789', true),
    ('2026-09-30', 2, NULL, 1.7976931348623157e308, NULL, NULL, NULL, NULL),
    ('2026-09-30', 3, -2147483648, 0.30000000000000004, -0.01, 'é,"' || chr(10) || '''',
     NULL, false),
    ('2026-10-31', 4, 1, 1.0, 1, 'it''s', NULL, true)
"""
_READ_QUERY = "SELECT * FROM features WHERE snapshot_date = :d AND customer_id = ANY(:ids)"


def _read_schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("snapshot_date", pa.date32()),
            ("customer_id", pa.int64()),
            ("n", pa.int64()),
            ("x", pa.float64()),
            ("amount", pa.float64()),
            ("label", pa.dictionary(pa.int32(), pa.string())),
            ("at", pa.timestamp("us")),
            ("flag", pa.bool_()),
        ]
    )


def _read(url, monkeypatch, *, binary: bool, batch_rows: int = 100):
    import pyarrow as pa

    from credit_batch.stores import db as dbm

    used = []

    def driver():
        used.append(binary)
        return _REAL_DRIVER() if binary else None

    monkeypatch.setattr(dbm, "_adbc_postgresql", driver)
    with dbm.connect(url, read_only=True) as db:
        params = {"d": dt.date(2026, 9, 30), "ids": [1, 2, 3, 4]}
        found = db.stream_arrow(_READ_QUERY, params, schema=_read_schema(), batch_rows=batch_rows)
        batches = list(found)
    assert used and set(used) == {binary}
    return pa.Table.from_batches(batches, schema=_read_schema()), batches


def test_binary_read_from_postgresql_equals_the_csv_read_value_for_value(pg_url, monkeypatch):
    """ADBC's binary COPY and the CSV path give the same rows, types and values, NULLs kept."""
    from credit_batch.stores.db import connect

    with connect(pg_url) as db:
        db.run_script(_READ_TABLE)
    binary, _ = _read(pg_url, monkeypatch, binary=True)
    text, _ = _read(pg_url, monkeypatch, binary=False)
    assert binary.sort_by("customer_id").equals(text.sort_by("customer_id"))
    assert binary.sort_by("customer_id").to_pylist()[2]["label"] == "é,\"\n'"
    assert binary.num_rows == 3  # the bound date kept October's row out


def test_binary_read_from_postgresql_yields_batches_of_at_most_batch_rows(pg_url, monkeypatch):
    from credit_batch.stores.db import connect

    with connect(pg_url) as db:
        db.run_script(_READ_TABLE)
    table, batches = _read(pg_url, monkeypatch, binary=True, batch_rows=2)
    assert [b.num_rows for b in batches] == [2, 1]
    assert table.num_rows == 3


def test_binary_read_of_a_column_of_the_wrong_type_names_the_column(pg_url):
    from credit_batch.stores.db import connect

    with connect(pg_url) as db:
        db.run_script("CREATE TABLE features (customer_id BIGINT, x TEXT)")
        db.run_script("INSERT INTO features VALUES (1, '0.5'), (2, 'forty')")
        import pyarrow as pa

        schema = pa.schema([("customer_id", pa.int64()), ("x", pa.float64())])
        with pytest.raises(errors.SchemaMismatchError, match=r"column x \(string\).*double"):
            list(db.stream_arrow("SELECT * FROM features", None, schema=schema, batch_rows=10))


def test_binary_read_through_a_read_only_connection_cannot_write(pg_url):
    """The reader's own connection is read-only as the warehouse's is: a query that writes fails."""
    import pyarrow as pa

    from credit_batch.stores.db import connect

    with connect(pg_url) as db:
        db.run_script("CREATE TABLE features (customer_id BIGINT)")
    schema = pa.schema([("customer_id", pa.int64())])
    writes = "WITH w AS (INSERT INTO features VALUES (1) RETURNING *) SELECT * FROM w"
    with connect(pg_url, read_only=True) as db:
        with pytest.raises(errors.DataError, match="read-only transaction"):
            list(db.stream_arrow(writes, None, schema=schema, batch_rows=10))
        assert db.fetch_arrow("SELECT COUNT(*) AS n FROM features").to_pylist() == [{"n": 0}]


def test_a_binary_read_stopped_early_closes_its_connection(pg_url, pg_admin):
    import pyarrow as pa

    from credit_batch.stores.db import connect

    with connect(pg_url) as db:
        db.run_script(
            "CREATE TABLE features AS SELECT g AS customer_id FROM generate_series(1, 200000) g"
        )
        schema = pa.schema([("customer_id", pa.int64())])
        rows = db.stream_arrow("SELECT * FROM features", None, schema=schema, batch_rows=1_000)
        assert next(rows).num_rows == 1_000
        rows.close()
        name = pg_url.rsplit("/", 1)[1]
        others = "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = %s AND pid <> %s"
        pid = db.fetch_arrow("SELECT pg_backend_pid() AS p").to_pylist()[0]["p"]
        # The client closes at once; the server's backend leaves pg_stat_activity
        # when it has noticed, which on a loaded machine takes a moment. A stream
        # left open stays there for good, so waiting a bounded 5 s cannot pass it.
        deadline = time.monotonic() + 5.0
        while (left := pg_admin.execute(others, (name, pid)).fetchone()[0]) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.05)
        assert left == 0


def test_a_promotion_of_one_model_never_waits_for_another_models(pg_demo):
    import threading

    from credit_batch.stores import registry, results
    from credit_batch.stores.db import connect

    settings, written, gmsc = pg_demo
    until = written[-3]["snapshot_date"]
    cards = pipeline.train(settings, until=until, seed=2, max_rows=2000, model_name="pd_cards")
    done: list = []
    holder = connect(settings.results_url)
    with holder.transaction():  # a promotion of gmsc in progress: its model's lock held
        results.lock(holder, settings, "champion/gmsc")
        promoting = threading.Thread(
            target=lambda: done.append(pipeline.promote(settings, cards.model_version, reason="r"))
        )
        promoting.start()
        promoting.join(30)
        assert not promoting.is_alive(), "pd_cards' promotion waited for gmsc's lock"
    holder.close()
    assert done[0].status == "champion"
    with results.open_results(settings, read_only=True) as db:
        champions = {r.model_name: r.model_version for r in registry.champions(db, settings)}
    assert champions == {"gmsc": gmsc.model_version, "pd_cards": cards.model_version}


def test_a_model_reading_another_on_postgresql_reads_that_nights_scores(pg_demo, tmp_path):
    """Warehouse and results on PostgreSQL: the reader trains on gmsc's stored scores
    (lineage recorded), scores after it from the night's scores, to 1e-12 of its own
    predict_proba; a version closing the cycle is refused under the graph's lock."""
    from credit_batch import portfolio
    from credit_batch.errors import ModelGraphError
    from credit_batch.features import load_spec
    from tests.unit.test_models_reading_models import (
        SMALL,
        _oracle,
        _scores,
        promoted_reader,
        spec_file,
    )

    settings, written, gmsc = pg_demo
    dates = [w["snapshot_date"] for w in written]
    reader = promoted_reader(settings, tmp_path / "spec", dates[-2], **SMALL)
    night = portfolio.run_night(settings, RunOptions(snapshot_date=dates[-2], **SMALL))
    assert sorted(night.results) == ["gmsc", "gmsc_reader"] and not night.failed
    want = _oracle(settings, reader, gmsc, dates[-2])
    got = _scores(settings, reader.model_version, dates[-2])
    assert set(got) == set(want) and max(abs(got[k]["score"] - want[k]) for k in want) <= 1e-12
    lineage = query(settings, "SELECT model_version, upstream_version FROM model_lineage")
    assert lineage == [
        {"model_version": reader.model_version, "upstream_version": gmsc.model_version}
    ]
    back = load_spec(spec_file(tmp_path / "back", name="gmsc", reads="gmsc_reader"))
    with pytest.raises(ModelGraphError, match="cycle: gmsc -> gmsc_reader -> gmsc"):
        pipeline.train(settings, since=dates[-2], until=dates[-2], spec=back, model_name="gmsc")
