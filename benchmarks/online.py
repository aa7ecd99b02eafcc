"""The online store: how fast a night's feature set is materialized, against plain copies.

One snapshot of ``rows`` customers of the GMSC spec (13 features) is written to
the lake as the extract writes it. Timed, best of ``repeats``: materializing it
(:func:`credit_batch.stores.online_store.materialize`: each row's features as a
JSON object, staged, merged point-in-time safe in one transaction) into an
empty store and into a full one (the nightly case: every customer's row
replaced by a newer snapshot's); the baseline in the same run is the plainest
bulk copy of the same rows into a typed table of the same database (DuckDB
``INSERT ... SELECT FROM read_parquet``; PostgreSQL binary ``COPY``, the
load's own path), which writes no JSON and merges nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import time
import uuid
from pathlib import Path

from benchmarks.output import Figure

__all__ = ["materialization"]

FIRST, NEXT = dt.date(2026, 9, 30), dt.date(2026, 10, 31)
REDIS = "redis://127.0.0.1:6379/0"
_HOW_REDIS = (
    "best of {repeats}; JSON per row, one script per 1,000 rows keeping newer snapshots "
    "(pipelined); baseline: a pipelined HSET loop of the same JSON rows, no check"
)


@functools.cache
def _spec():
    """The GMSC spec under a name of this run's own (its Redis keys are this run's alone)."""
    from credit_batch.features import default_spec

    return dataclasses.replace(default_spec(), name=f"bench_{uuid.uuid4().hex[:8]}")


def _redis_answers() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS, socket_timeout=1).ping())
    except Exception:  # noqa: BLE001 (no Redis: the figure is left out)
        return False


def materialization(
    home: Path, rows: int, *, pg_url: str | None = None, repeats: int = 3
) -> list[Figure]:
    from credit_batch.config import Settings

    settings = Settings(home=home)
    _write_snapshots(settings, rows)
    stores = [("DuckDB", settings)]
    if pg_url:
        stores.append(("PostgreSQL", dataclasses.replace(settings, results_url=pg_url)))
    if _redis_answers():
        stores.append(("Redis", dataclasses.replace(settings, online_url=REDIS)))
    out = []
    for name, where in stores:
        empty, full, copied = _timings(where, repeats)
        for case, seconds in (("into an empty store", empty), ("replacing every row", full)):
            out.append(
                Figure(
                    f"online store: materialize {rows:,} customers {case}, {name}",
                    _HOW_REDIS.format(repeats=repeats)
                    if name == "Redis"
                    else f"best of {repeats}; JSON per row, staged, merged newest-wins in one "
                    "transaction; baseline: a plain bulk copy of the same rows into a typed "
                    "table of the same database",
                    f"{rows / seconds:,.0f} rows/s ({seconds:.2f} s)",
                    f"{rows / copied:,.0f} rows/s ({copied:.2f} s)",
                    seconds / copied,
                    detail={"rows": rows, "seconds": seconds, "baseline": copied},
                )
            )
    return out


def _write_snapshots(settings, rows: int) -> None:
    import numpy as np
    import pyarrow as pa

    from credit_batch.stores import lake

    spec, rng = _spec(), np.random.default_rng(0)
    for date in (FIRST, NEXT):
        columns = {"snapshot_date": pa.array([date] * rows, pa.date32()),
                   "customer_id": pa.array(np.arange(1, rows + 1, dtype=np.int64))}  # fmt: skip
        for name in spec.names:
            columns[name] = pa.array(np.round(rng.gamma(2.0, 3.0, rows), 6))
        table = pa.table(columns).cast(spec.arrow_schema())
        lake.write_parts(
            table.to_batches(max_chunksize=100_000),
            lake.features_dir(settings.lake, date, feature_set=spec.feature_set),
            rows_per_part=1_000_000,
            schema=spec.arrow_schema(),
        )


def _timings(settings, repeats: int) -> tuple[float, float, float]:
    from credit_batch.stores import online_store

    spec = _spec()
    empty, full, copied = [], [], []
    for _ in range(repeats):
        _clear(settings)
        t0 = time.perf_counter()
        online_store.materialize(settings, spec, FIRST)
        empty.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        online_store.materialize(settings, spec, NEXT)  # every row replaced by a newer one
        full.append(time.perf_counter() - t0)
        copied.append(_plain_copy(settings, spec))
    _clear(settings)
    return min(empty), min(full), min(copied)


def _clear(settings) -> None:
    from credit_batch.stores import results

    if settings.online_url:
        import redis

        from credit_batch.stores.online_redis import PREFIX

        client = redis.Redis.from_url(settings.online_url)
        for key in ("bench:hset", f"{PREFIX}:{_spec().feature_set}"):
            batch = list(client.scan_iter(f"{key}:*", count=10_000))
            for first in range(0, len(batch), 10_000):
                client.delete(*batch[first : first + 10_000])
        client.close()
        return

    with results.open_results(settings) as db:
        db.execute("DELETE FROM online_features")


def _plain_copy(settings, spec) -> float:
    """Seconds of the plainest bulk copy of the FIRST snapshot into a typed table (Redis:
    a pipelined HSET loop of the rows' JSON)."""
    from credit_batch.stores import lake, results

    parts = lake.features_parts(settings.lake, FIRST, feature_set=spec.feature_set)
    source = lake.dataset(settings.lake, [p.uri for p in parts], spec.arrow_schema())
    if settings.online_url:
        return _hset_loop(settings, source, spec)
    with results.open_results(settings) as db:
        db.execute("DROP TABLE IF EXISTS features")
        columns = ", ".join(f"{f} DOUBLE PRECISION" for f in spec.names)
        db.execute(f"CREATE TABLE features (snapshot_date DATE, customer_id BIGINT, {columns})")
        t0 = time.perf_counter()
        with db.transaction():
            db.bulk_insert("features", source)
        seconds = time.perf_counter() - t0
        db.execute("DROP TABLE features")
    return seconds


def _hset_loop(settings, source, spec) -> float:
    import redis

    from credit_batch.stores.online_store import _json_rows

    with _json_rows(source, spec) as (reader, _):
        batches = list(reader)  # the JSON built before the clock starts
    client = redis.Redis.from_url(settings.online_url)
    t0 = time.perf_counter()
    for batch in batches:
        ids, values = batch.column("customer_id").to_pylist(), batch.column("features").to_pylist()
        for first in range(0, len(ids), 1_000):
            pipe = client.pipeline(transaction=False)
            for key, value in zip(ids[first : first + 1_000], values[first : first + 1_000],
                                  strict=True):  # fmt: skip
                pipe.hset(f"bench:hset:{key}", mapping={"snapshot_date": FIRST.isoformat(),
                                                        "features": value})  # fmt: skip
            pipe.execute()
    seconds = time.perf_counter() - t0
    client.close()
    return seconds
