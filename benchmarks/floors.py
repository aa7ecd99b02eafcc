"""The floors: what the engines alone take for the night's data, with no pipeline code.

A bar the pipeline misses may be missed by the engines themselves on this
machine; then no work on the pipeline can hold it, only a change of design or
of hardware. Each floor is measured on the same snapshot, in the same run, as
the pipeline's figures:

* the extract: DuckDB writes the features query to Parquet with its own
  multi-threaded writer (``COPY (query) TO``); PostgreSQL sends it as binary
  ``COPY ... TO STDOUT``, read and dropped by the client (no parsing at all);
* the load: DuckDB makes a table of the scored Parquet (``CREATE TABLE AS``, no
  key, no index); PostgreSQL takes binary ``COPY`` into tables with no index,
  from one connection and from two at once (the partition-per-slice design);
* the score: the score step in 2 warm processes, as measured for the limit.

Then the sum of the three, against the bare model, under the issue's bar.
"""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks.figures import (
    Bench,
    _best,
    _best_of,
    _pool,
    _score_paths,
    bare_seconds,
    postgres_twin,
    run_pipeline,
)
from benchmarks.output import Figure
from credit_batch.config import MAX_DUPLICATE_IDS
from credit_batch.stores.warehouse import _REPEATED


def floors(bench: Bench, *, pg_url: str | None) -> list[Figure]:
    """The engines' floors of extract and load, and of the whole, on DuckDB and PostgreSQL."""
    _pool(2)
    runs = [run_pipeline(bench, workers=2) for _ in range(bench.repeats)]  # as the limit's
    score = min(run["score"] for run in runs)
    plan = runs[-1]["plan"]
    paths = [str(p) for p in _score_paths(bench, plan)]  # the scored files the loads read
    bare = bare_seconds(bench, [p["path"] for p in plan.partitions])
    query = _features_query(bench)
    copy, group = min((_duckdb_copy_out(bench, query) for _ in range(bench.repeats)), key=sum)
    extract = copy + group
    load = _best(bench.repeats, lambda: _duckdb_table_from(bench, paths))
    out = [
        _rate("floor: DuckDB writes the snapshot to Parquet", bench.rows, extract, 5e6,
              f"COPY (features query) TO Parquet, DuckDB's own writer, all threads "
              f"({copy:.2f} s); then the repeated-id query (GROUP BY customer_id HAVING "
              f"COUNT(*) > 1, {group:.2f} s)"),
        _whole("DuckDB", bench.rows, bare, extract, score, load, 2.0),
    ]  # fmt: skip
    if pg_url:
        out += _postgres_floors(bench, pg_url, query, paths, bare=bare, score=score)
    return out


def _postgres_floors(bench: Bench, pg_url: str, query: str, paths: list, *, bare, score):
    postgres_twin(bench, pg_url, folder="pg-floors")
    extract = _best(bench.repeats, lambda: _postgres_copy_out(pg_url, query))
    n, one = _best_of(bench.repeats, lambda: _postgres_copy_in(pg_url, [paths]))
    halves = [paths[0::2], paths[1::2]]
    _, two = _best_of(bench.repeats, lambda: _postgres_copy_in(pg_url, halves))
    _, indexed = _best_of(bench.repeats, lambda: _postgres_copy_in(pg_url, halves, index=True))
    return [
        _rate("floor: PostgreSQL sends the snapshot", bench.rows, extract, 1e6,
              "COPY (features query) TO STDOUT, binary, read and dropped by the client; "
              "then the repeated-id query"),
        _rate("floor: PostgreSQL stores the scores, 1 connection", n, one, 1e6,
              "binary COPY of the scored Parquet into a table without index or key"),
        _rate("floor: PostgreSQL stores the scores, 2 connections", n, two, 1e6,
              "as above, half of the files each into its own table, at once"),
        _rate("floor: PostgreSQL stores the scores, 2 connections, indexed after", n, indexed,
              1e6, "as above, then each table's primary key and lookup index built, at once "
              "(a partition per slice, as lookups need it)"),
        _whole("PostgreSQL", bench.rows, bare, extract, score, indexed, 3.0),
    ]  # fmt: skip


def _rate(name: str, rows: int, seconds: float, bar: float, how: str) -> Figure:
    rate = rows / seconds
    return Figure(
        name,
        how,
        f"{rate:,.0f} rows/s ({seconds:.2f} s)",
        f"bar {bar:,.0f} rows/s",
        rate / bar,
        1.0,
        ">=",
        detail={"rows": rows, "seconds": seconds},
    )


def _whole(label: str, rows: int, bare: float, extract: float, score: float, load: float, bar):
    total = extract + score + load
    return Figure(
        f"floor: extract + score + load on {label}, vs bare model",
        f"the engines' extract and load floors plus the score step in 2 warm processes "
        f"(extract {extract:.2f} s, score {score:.2f} s, load {load:.2f} s)",
        f"{total:.2f} s",
        f"Parquet read + predict_proba {bare:.2f} s",
        total / bare,
        bar,
        "<=",
        detail={"extract": extract, "score": score, "load": load, "bare": bare, "rows": rows},
    )


def _features_query(bench: Bench) -> str:
    """The champion's features query for the bench's snapshot, the date written in."""
    record, _ = bench.model()
    sql = record.feature_spec.query("features").strip().rstrip(";")
    return sql.replace(":snapshot_date", f"DATE '{bench.date.isoformat()}'")


def _repeated(query: str) -> str:
    """The extract's repeated-id query (:func:`credit_batch.stores.warehouse.repeated_ids`)."""
    return _REPEATED.format(query=query).replace(":at_most", str(MAX_DUPLICATE_IDS + 1))


def _duckdb_copy_out(bench: Bench, query: str) -> tuple[float, float]:
    import duckdb

    out = bench.settings.home / "floor-extract"
    path = bench.settings.warehouse_url.removeprefix("duckdb:///")
    with duckdb.connect(path, read_only=True) as con:
        t0 = time.perf_counter()
        con.execute(f"COPY ({query}) TO '{out}' (FORMAT parquet, PER_THREAD_OUTPUT, OVERWRITE)")
        t1 = time.perf_counter()
        con.execute(_repeated(query)).fetchall()
        return t1 - t0, time.perf_counter() - t1


def _duckdb_table_from(bench: Bench, paths: list) -> float:
    import duckdb

    path = Path(bench.settings.home) / "floor-load.duckdb"
    path.unlink(missing_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute("SET preserve_insertion_order = false")
        t0 = time.perf_counter()
        con.execute("CREATE TABLE scores AS SELECT * FROM read_parquet($p)", {"p": paths})
        return time.perf_counter() - t0


def _postgres_copy_out(pg_url: str, query: str) -> float:
    import psycopg

    with psycopg.connect(pg_url) as con, con.cursor() as cur:
        t0 = time.perf_counter()
        with cur.copy(f"COPY ({query}) TO STDOUT (FORMAT binary)") as copy:
            for _ in copy:
                pass
        cur.execute(_repeated(query)).fetchall()
        return time.perf_counter() - t0


def _postgres_copy_in(pg_url: str, shares: list[list[str]], *, index=False) -> tuple[int, float]:
    """Rows and wall time of binary ``COPY`` of each share of files into its own table, at once.

    Share ``i`` goes into ``floor_i.predictions``: a copy of the table's columns with
    no key and no index (the load's own code writes only allow-listed tables);
    ``index``: then its primary key and lookup index, built after the rows.
    """
    from credit_batch.stores.db import connect

    schemas = [f"floor_{i}" for i in range(len(shares))]
    with connect(pg_url) as db:
        for schema in schemas:
            db.run_script(
                f"CREATE SCHEMA IF NOT EXISTS {schema}; DROP TABLE IF EXISTS {schema}.predictions;"
                f" CREATE TABLE {schema}.predictions (LIKE public.predictions)"
            )
        db.execute("CHECKPOINT")
    t0 = time.perf_counter()
    jobs = [pg_url] * len(shares), schemas, shares, [index] * len(shares)
    rows = sum(_pool(2).map(_copy_in, *jobs))
    return rows, time.perf_counter() - t0


def _copy_in(pg_url: str, schema: str, paths: list[str], index: bool) -> int:
    """In a worker: one connection's binary ``COPY`` of ``paths`` into ``schema.predictions``."""
    import pyarrow.dataset as ds

    from credit_batch.steps.scoring import scores_schema
    from credit_batch.stores.db import connect

    with connect(pg_url) as db, db.transaction():
        db.execute(f"SET LOCAL search_path TO {schema}")
        rows = db.bulk_insert("predictions", ds.dataset(paths, schema=scores_schema()))
        if index:
            db.run_script(_INDEXES)
        return rows


#: The keys of ``predictions`` (``sql/schema/predictions.postgresql.sql``), built after the rows.
_INDEXES = (
    "ALTER TABLE predictions ADD PRIMARY KEY (snapshot_date, customer_id, model_version);"
    " CREATE INDEX ON predictions (customer_id, snapshot_date)"
)
