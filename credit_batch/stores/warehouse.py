"""The warehouse: where the night's batch features come from.

Every query comes from the feature spec (:meth:`FeatureSpec.query`: the
spec's SQL files, or SQL generated from its checked table and column names);
each is bound to a snapshot date and streamed out as Arrow record batches,
so memory is bounded by the batch.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator

from credit_batch.checks import parse_date
from credit_batch.config import Settings
from credit_batch.errors import DataError, SnapshotNotFoundError
from credit_batch.features import FeatureSpec
from credit_batch.stores.db import Database, connect, read_sql

__all__ = [
    "GMSC_CSV_COLUMNS",
    "apply_schema",
    "list_snapshots",
    "read_gmsc_csv",
    "open_warehouse",
    "read_labeled",
    "repeated_ids",
    "stream_labeled",
    "replace_snapshot",
    "resolve_snapshot",
    "stream_features",
]

logger = logging.getLogger(__name__)

#: Columns of ``cs-training.csv`` and their names in the warehouse.
GMSC_CSV_COLUMNS = {
    "SeriousDlqin2yrs": "delinquency",
    "RevolvingUtilizationOfUnsecuredLines": "revolving_unsecured_line_utilization",
    "age": "age",
    "NumberOfTime30-59DaysPastDueNotWorse": "num_30_59_days_late",
    "DebtRatio": "debt_ratio",
    "MonthlyIncome": "monthly_income",
    "NumberOfOpenCreditLinesAndLoans": "num_open_credit_loans",
    "NumberOfTimes90DaysLate": "num_90_days_late",
    "NumberRealEstateLoansOrLines": "num_real_estate_loans",
    "NumberOfTime60-89DaysPastDueNotWorse": "num_60_89_days_late",
    "NumberOfDependents": "num_dependents",
}


def open_warehouse(settings: Settings, *, read_only: bool = True) -> Database:
    """Connect to the warehouse of ``settings``."""
    limit = settings.duckdb_memory_limit if read_only else None  # reads spill; writes need room
    return connect(settings.warehouse_url, read_only=read_only, memory_limit=limit)


def apply_schema(db: Database, settings: Settings) -> None:
    """Create the warehouse tables if they do not exist."""
    db.run_script(read_sql(settings.sql_dir, "warehouse/schema.sql"))


def replace_snapshot(db: Database, settings: Settings, date: dt.date, features, outcomes) -> int:
    """Replace one snapshot's features (and outcomes, if given) in one transaction."""
    params = {"snapshot_date": date}
    with db.transaction():
        db.execute(read_sql(settings.sql_dir, "warehouse/delete_snapshot.sql"), params)
        db.execute(read_sql(settings.sql_dir, "warehouse/delete_outcomes.sql"), params)
        n = db.bulk_insert("features", features)
        if outcomes is not None:
            db.bulk_insert("outcomes", outcomes)
    return n


def resolve_snapshot(db: Database, spec: FeatureSpec, *, snapshot_date=None, as_of=None) -> dt.date:
    """Return the snapshot date a run scores.

    An explicit ``snapshot_date`` must exist in the warehouse. Otherwise the
    newest snapshot at or before ``as_of`` (the run's logical date) is used.
    """
    if snapshot_date is not None:
        date = parse_date(snapshot_date)
        sql = spec.query("snapshot_rows")
        n = db.fetch_arrow(sql, {"snapshot_date": date}).column("n_rows")[0].as_py()
        if not n:
            raise _not_found(db, spec, f"snapshot {date} has no rows", date)
        return date
    as_of_date = dt.date.max if as_of is None else parse_date(as_of, name="as-of date")
    sql = spec.query("latest_snapshot")
    date = db.fetch_arrow(sql, {"as_of": as_of_date}).column("snapshot_date")[0].as_py()
    if date is None:
        raise _not_found(db, spec, f"no snapshot at or before {as_of_date}", as_of_date)
    return date


def _not_found(db: Database, spec: FeatureSpec, what: str, date: dt.date) -> Exception:
    """The error for a missing snapshot, naming the nearest ones the warehouse holds."""
    return SnapshotNotFoundError(
        f"{what} in the warehouse {db.url}; {_nearest_snapshots(db, spec, date)}",
        snapshot_date=date,
        warehouse=db.url,
    )


def list_snapshots(db: Database, spec: FeatureSpec) -> list[dict]:
    """The snapshot dates of ``spec``'s table and their row counts, newest first."""
    return db.fetch_arrow(spec.query("snapshots")).to_pylist()


def _nearest_snapshots(db: Database, spec: FeatureSpec, date: dt.date) -> str:
    """Says which snapshots are nearest to ``date`` (or that there are none)."""
    dates = [r["snapshot_date"] for r in list_snapshots(db, spec)]
    if not dates:
        return "it holds no snapshots: `credit-batch demo-data` writes the demo ones"
    before = max((d for d in dates if d < date), default=None)
    after = min((d for d in dates if d > date), default=None)
    near = ", ".join(str(d) for d in (before, after) if d is not None)
    return f"nearest: {near} ({len(dates)} snapshots, {min(dates)} .. {max(dates)})"


def stream_features(db: Database, spec: FeatureSpec, date: dt.date, *, batch_rows: int) -> Iterator:
    """Yield the snapshot's features as Arrow record batches in the spec's schema."""
    sql = spec.query("features")
    return db.stream_arrow(
        sql, {"snapshot_date": date}, schema=spec.arrow_schema(), batch_rows=batch_rows
    )


#: The customer ids the spec's features query returns more than once.
_REPEATED = (
    "SELECT customer_id FROM (\n{query}\n) AS snapshot\n"
    "GROUP BY customer_id HAVING COUNT(*) > 1\nLIMIT :at_most"
)


def repeated_ids(db: Database, spec: FeatureSpec, date: dt.date, *, at_most: int) -> set:
    """The customer ids that appear more than once in the snapshot (at most ``at_most``).

    The database groups the features query's ids, so the query need not order
    its rows (DuckDB sorted a 20M-row snapshot in 3.5 s; the grouping takes 0.9 s).
    """
    import pyarrow as pa

    sql = _REPEATED.format(query=spec.query("features").strip().rstrip(";"))
    params = {"snapshot_date": date, "at_most": at_most}
    schema = pa.schema([pa.field("customer_id", spec.key_arrow)])
    found = db.stream_arrow(sql, params, schema=schema, batch_rows=at_most)
    return {i for batch in found for i in batch.column("customer_id").to_pylist()}


#: Labeled rows :func:`read_labeled` reads whole; beyond, a sample (when asked for one).
READ_WHOLE_ROWS = 2_000_000


def read_labeled(
    db: Database,
    spec: FeatureSpec,
    date_from: dt.date,
    date_to: dt.date,
    *,
    sample_rows: int | None = None,
    seed: int = 0,
):
    """Return features joined to outcomes for snapshots in the range, as a pandas frame.

    ``sample_rows``: where the range holds more than :data:`READ_WHOLE_ROWS`
    rows, return only a seeded random sample of this many
    (:func:`credit_batch.sampling.sample_batches`), read as the rows stream,
    so that memory stays flat whatever the book's size (training on a
    50M-row snapshot held 23.6 GiB when it was read whole). Smaller ranges are
    read whole, as without it.
    """
    import pyarrow as pa

    from credit_batch.sampling import sample_batches

    schema = spec.arrow_schema(with_target=True)
    batches, head, rows = iter(stream_labeled(db, spec, date_from, date_to)), [], 0
    for batch in batches:
        head.append(batch)
        rows += batch.num_rows
        if sample_rows is not None and rows > READ_WHOLE_ROWS:
            logger.info("over %d labeled rows: sampling %d", READ_WHOLE_ROWS, sample_rows)
            table = sample_batches(_drained(head, batches), n=sample_rows, seed=seed)
            return table.to_pandas()
    return pa.Table.from_batches(head, schema=schema).to_pandas()


def _drained(head: list, rest: Iterator) -> Iterator:
    """``head``'s batches, each let go once yielded, then ``rest``'s."""
    while head:
        yield head.pop(0)
    yield from rest


#: The spec's labeled query, for the customers of one bound list only.
_LABELED_AMONG = "SELECT * FROM (\n{query}\n) AS labeled WHERE {among}"
#: DuckDB: a list lookup, not ``IN (SELECT UNNEST(...))`` (a semi join): 0.62 s against
#: 1.17 s for 24,000 customers of a 20M-row snapshot.
_AMONG = {
    "duckdb": "list_contains(:customers, customer_id)",
    "postgresql": "customer_id = ANY(:customers)",
}


def stream_labeled(
    db: Database,
    spec: FeatureSpec,
    date_from: dt.date,
    date_to: dt.date,
    *,
    customers: list | None = None,
):
    """Features joined to outcomes for snapshots in the range, as Arrow record batches.

    ``customers``: only these customer ids (a sample), bound as one list: the
    database filters the spec's query, reading the outcomes of 22,000
    customers rather than of the whole snapshot.
    """
    sql, params = spec.query("labeled"), {"date_from": date_from, "date_to": date_to}
    if customers is not None:
        among = _AMONG[db.dialect]
        sql = _LABELED_AMONG.format(query=sql.strip().rstrip(";"), among=among)
        params["customers"] = list(customers)
    return db.stream_arrow(
        sql, params, schema=spec.arrow_schema(with_target=True), batch_rows=500_000
    )


def read_gmsc_csv(path: str, snapshot_date: object):
    """``(features, outcomes)`` Arrow tables of a ``cs-training.csv``, checked before any
    database is opened (a missing file or column is refused by name).

    The unnamed first column (a row number) becomes ``customer_id``; ``NA`` is
    null; ``SeriousDlqin2yrs`` goes to ``outcomes``.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    date = parse_date(snapshot_date)
    try:
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(null_values=["NA", ""]))
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"cannot read CSV {path}: {exc}", path=path) from exc
    missing = [c for c in GMSC_CSV_COLUMNS if c not in table.column_names]
    if missing or table.num_rows == 0:
        raise DataError(f"CSV {path} lacks the Give Me Some Credit columns {missing}", path=path)
    ids = pa.array(table.column(0).to_numpy(zero_copy_only=False), pa.int64())
    dates = pa.array([date] * table.num_rows, pa.date32())
    features = {"snapshot_date": dates, "customer_id": ids}
    for raw, name in GMSC_CSV_COLUMNS.items():
        if name != "delinquency":
            features[name] = table.column(raw).cast(pa.float64())
    outcomes = pa.table(
        {
            "snapshot_date": dates,
            "customer_id": ids,
            "delinquency": table.column("SeriousDlqin2yrs").cast(pa.int16()),
        }
    )
    return pa.table(features), outcomes
