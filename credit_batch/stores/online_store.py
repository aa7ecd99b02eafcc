"""The online store: each customer's newest batch features, for online prediction.

The night materializes every feature set it extracts (:func:`materialize`):
each customer's row of the snapshot goes to ``online_features`` in the
results database, keyed by feature set and customer, with the snapshot it
came from. Online prediction from batch features (the lecture's second kind,
:func:`credit_batch.steps.online.score_customer`) reads one row back
(:func:`features_of`) and scores it with the batch's own code.

Writes are point-in-time safe: a customer's row is replaced only by a row of
the same or a newer snapshot, so a backfill of an older snapshot, run after a
newer night, changes nothing (the out-of-order writes Feast had to fix,
feast-dev/feast pull request 1961). A customer repeated within a snapshot is
not materialized (the night quarantines those rows too).

The features are stored as one JSON array per row, in the spec's order (the
feature set's digest fixes it), the values as the lake holds them (floats
written shortest-round-trip, so read back to the bit). An array, not an
object: the names would be most of the bytes (2M rows: 660 MB of objects,
about 250 MB of arrays), which the merge writes and the embedded service
holds in memory.
JSON is built by DuckDB from the lake's Arrow batches, one partition at a
time: 2M rows of 10 features in about a quarter of a second, with no Python
loop over rows. On PostgreSQL the table's primary key answers a lookup and
the merge is one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE``; on DuckDB
(the embedded default) the merge is a ``DELETE`` and an ``INSERT``, in one
transaction, and the HTTP service reads lookups from memory
(:func:`feature_tables`) as it does the scores.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import re
import time

from credit_batch.checks import utcnow
from credit_batch.config import Settings
from credit_batch.errors import DataError
from credit_batch.features import FeatureSpec
from credit_batch.stores import lake, results
from credit_batch.stores.db import Database, read_sql

__all__ = [
    "feature_sets",
    "feature_tables",
    "features_of",
    "features_of_many",
    "index_of",
    "indexed",
    "materialize",
]

logger = logging.getLogger(__name__)


def materialize(settings: Settings, spec: FeatureSpec, snapshot_date: dt.date) -> dict:
    """Write the snapshot's rows of ``spec``'s feature set (from the lake) to the online store.

    Parameters
    ----------
    settings : Settings
        Where the lake and the results database are.
    spec : FeatureSpec
        The feature set's spec; its partition of ``snapshot_date`` must be in the lake.
    snapshot_date : datetime.date
        The snapshot whose rows are written.

    Returns
    -------
    dict
        ``feature_set``, ``snapshot_date``, ``rows`` (written or kept),
        ``kept_newer`` (customers whose stored row is of a newer snapshot, left
        as they were), ``repeated`` (customers left out) and ``seconds``.
    """
    t0 = time.perf_counter()
    parts = lake.features_parts(settings.lake, snapshot_date, feature_set=spec.feature_set)
    source = lake.dataset(settings.lake, [p.uri for p in parts], spec.arrow_schema())
    if settings.online_url:
        rows, kept, repeated = _to_redis(settings, source, spec, snapshot_date)
        return _done(spec, snapshot_date, rows, kept, repeated, t0)
    with results.open_results(settings, key_type=spec.key_type) as db, db.transaction():
        results.lock(db, settings, f"online/{spec.feature_set}")
        suffix = results.key_suffix(db, settings, spec.key_type)
        stage = read_sql(settings.sql_dir, "load/stage_online.sql")
        db.execute(stage.replace("{key_type}", results.KEY_SQL[spec.key_type]))
        rows, repeated = _stage(db, source, spec, snapshot_date)
        upsert = read_sql(settings.sql_dir, f"load/upsert_online.{db.dialect}.sql")
        written = [db.execute(sql) for sql in _statements(results.keyed_sql(upsert, suffix))][-1]
        db.execute("DROP TABLE online_staged")
    kept = rows - written  # the last statement inserts (or updates) every row it writes
    return _done(spec, snapshot_date, rows, kept, repeated, t0)


def _done(spec: FeatureSpec, date: dt.date, rows: int, kept: int, repeated: int, t0) -> dict:
    done = {
        "feature_set": spec.feature_set,
        "snapshot_date": date,
        "rows": rows,
        "kept_newer": kept,
        "repeated": repeated,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    logger.info("online store: %s", done)
    return done


def _to_redis(settings: Settings, source, spec: FeatureSpec, date: dt.date):
    """The snapshot's rows into the Redis online store: (rows, kept newer, repeated)."""
    from credit_batch.stores.online_redis import RedisOnlineStore

    store = RedisOnlineStore(settings.online_url)
    try:
        with _json_rows(source, spec) as (reader, repeated):
            rows, kept = store.write(spec.feature_set, date, reader, utcnow())
    finally:
        store.close()
    return rows, kept, repeated


def _statements(script: str) -> list[str]:
    """The ``;``-separated statements of ``script``, its ``--`` comments left out."""
    code = re.sub(r"--[^\n]*", "", script)
    return [statement for statement in code.split(";") if statement.strip()]


def _stage(db: Database, source, spec: FeatureSpec, date: dt.date) -> tuple[int, int]:
    """Insert each customer's row as JSON into ``online_staged``; (rows, repeated customers)."""
    with _json_rows(source, spec) as (reader, repeated):
        rows = sum(db.bulk_insert("online_staged", _table(batch)) for batch in reader)
    if repeated:
        logger.warning("online store: %d customers repeated on %s: not written", repeated, date)
    return rows, repeated


@contextlib.contextmanager
def _json_rows(source, spec: FeatureSpec):
    """Arrow batches of each customer's row with its features as a JSON array (DuckDB's
    ``json_array``), repeated customers left out; and how many were repeated."""
    import duckdb

    packed = ", ".join(f'"{name}"' for name in spec.names)  # checked identifiers
    con = duckdb.connect()
    try:
        con.register("lake_rows", source)
        con.sql(_REPEATED)
        repeated = con.sql("SELECT COUNT(*) FROM repeated").fetchall()[0][0]
        params = [spec.feature_set, utcnow()]
        yield con.sql(_JSON.format(packed=packed), params=params).to_arrow_reader(250_000), repeated
    finally:
        con.close()


_REPEATED = (
    "CREATE TEMPORARY TABLE repeated AS SELECT customer_id FROM lake_rows "
    "GROUP BY customer_id HAVING COUNT(*) > 1"
)
_JSON = (
    "SELECT ?::VARCHAR AS feature_set, customer_id, snapshot_date, "
    "json_array({packed})::VARCHAR AS features, ?::TIMESTAMP AS written_at "
    "FROM lake_rows WHERE customer_id NOT IN (SELECT customer_id FROM repeated)"
)


def _table(batch):
    import pyarrow as pa

    return pa.Table.from_batches([batch])


def features_of(settings: Settings, spec: FeatureSpec, customer_id) -> dict | None:
    """``customer_id``'s newest stored features of ``spec``'s feature set, or None.

    Returns ``{"snapshot_date", "features", "written_at"}``: ``features`` maps
    each feature to its value as the lake held it (None where missing).
    ``customer_id`` must already be of the spec's key type.
    """
    return features_of_many(settings, spec, [customer_id]).get(customer_id)


def features_of_many(settings: Settings, spec: FeatureSpec, customer_ids, *, db=None) -> dict:
    """:func:`features_of` of each of ``customer_ids`` in one query per 500 ids:
    ``{id: row}`` (an id the store holds nothing of is left out). ``db``: an open
    connection to the results to use (a stream consumer's), else one is opened."""
    if customer_ids and settings.online_url:
        return _from_redis(settings, spec, list(customer_ids))
    if not customer_ids or (db is None and not results.exists(settings)):
        return {}
    if db is None:
        with results.open_results(settings, read_only=True) as opened:
            return features_of_many(settings, spec, customer_ids, db=opened)
    suffixes = results.key_suffixes(db, settings)
    if spec.key_type not in suffixes:
        return {}
    sql = results.keyed_sql(read_sql(settings.sql_dir, "serve/online_features_of.sql"),
                            suffixes[spec.key_type])  # fmt: skip
    found, ids = {}, list(customer_ids)
    for first in range(0, len(ids), _IDS_PER_QUERY):
        chunk = ids[first : first + _IDS_PER_QUERY]
        names = ", ".join(f":k{i}" for i in range(len(chunk)))  # bound, never inlined
        params = {"feature_set": spec.feature_set, **{f"k{i}": k for i, k in enumerate(chunk)}}
        for row in db.fetch_arrow(sql.replace(":customer_ids", names), params).to_pylist():
            key = row.pop("customer_id")
            found[key] = _decoded(row, spec)
    return found


_IDS_PER_QUERY = 500


def _from_redis(settings: Settings, spec: FeatureSpec, customer_ids: list) -> dict:
    from credit_batch.stores.online_redis import RedisOnlineStore

    store = RedisOnlineStore(settings.online_url)
    try:
        found = store.read(spec.feature_set, customer_ids)
    finally:
        store.close()
    return {key: _decoded(row, spec) for key, row in found.items()}


def _decoded(row: dict, spec: FeatureSpec) -> dict:
    """``row`` with its features by name (stored as a JSON array in the spec's order)."""
    values = json.loads(row["features"])
    if not isinstance(values, list) or len(values) != len(spec.names):
        raise DataError(
            f"the online store's row of feature set {spec.feature_set} is not a JSON array "
            f"of its {len(spec.names)} features; a night that extracts it writes it again",
            feature_set=spec.feature_set,
        )
    return {**row, "features": dict(zip(spec.names, values, strict=True))}


def feature_tables(settings: Settings) -> list:
    """The whole online store, one Arrow table per key type held (the service's index
    on DuckDB): ``feature_set``, ``customer_id``, ``snapshot_date``, ``features``."""
    with results.open_results(settings, read_only=True) as db:
        return [
            db.fetch_arrow(results.keyed_sql(_ALL, suffix))
            for suffix in results.key_suffixes(db, settings).values()
        ]


_ALL = (  # sorted by the database (no sorted copy in the service's memory)
    "SELECT feature_set, customer_id, snapshot_date, features, written_at FROM online_features "
    "ORDER BY feature_set, customer_id"
)


def feature_sets(settings: Settings) -> list[dict]:
    """Per feature set: customers held, the newest snapshot, when last written."""
    if not results.exists(settings):
        return []
    with results.open_results(settings, read_only=True) as db:
        sql = read_sql(settings.sql_dir, "serve/online_feature_sets.sql")
        return [
            row
            for suffix in results.key_suffixes(db, settings).values()
            for row in db.fetch_arrow(results.keyed_sql(sql, suffix)).to_pylist()
        ]


def index_of(tables: list) -> dict:
    """An in-memory index of :func:`feature_tables`: per feature set, its rows sorted by
    customer, for :func:`indexed` (the service's lookups on DuckDB)."""
    import pyarrow.compute as pc

    index = {}
    for table in tables:  # sorted by feature set and customer (:func:`feature_tables`)
        names = table.column("feature_set")
        for name in pc.unique(names).to_pylist():
            at = pc.index(names, name).as_py()
            part = table.slice(at, pc.sum(pc.equal(names, name)).as_py())  # a view, no copy
            keys = part.column("customer_id").to_numpy(zero_copy_only=False)
            index[name] = {"table": part.drop_columns(["feature_set"]), "keys": keys}
    return index


def indexed(index: dict, spec: FeatureSpec, customer_id) -> dict | None:
    """``customer_id``'s row of ``spec``'s feature set in ``index`` (as :func:`features_of`)."""
    import numpy as np

    part = index.get(spec.feature_set)
    if part is None:
        return None
    at = int(np.searchsorted(part["keys"], customer_id, side="left"))
    if at >= len(part["keys"]) or part["keys"][at] != customer_id:
        return None
    row = part["table"].slice(at, 1).to_pylist()[0]
    return _decoded({k: row[k] for k in ("snapshot_date", "features", "written_at")}, spec)
