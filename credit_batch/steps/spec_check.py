"""Check a feature spec against the warehouse before training or scoring on it.

:func:`check_spec` answers what a team asks before its first night: do the
spec's tables and columns exist, do their types fit, what snapshots are
there, does the extract query run, and how many rows of a sample break the
declared rules (and which rule)? Nothing is written.
"""

from __future__ import annotations

import numpy as np

from credit_batch.checks import parse_date
from credit_batch.config import Settings
from credit_batch.errors import SchemaMismatchError
from credit_batch.features import FeatureSpec, load_spec
from credit_batch.steps.encoding import level_codes
from credit_batch.stores import warehouse
from credit_batch.stores.db import Database, table_columns, type_fits

__all__ = ["check_columns", "check_spec", "check_spec_file"]


def check_spec_file(settings: Settings, path=None, *, snapshot_date=None) -> dict:
    """Read the spec file ``path`` (default: the settings' spec) and check it against the
    settings' warehouse (:func:`check_spec`); return what was found, ``path`` included."""
    spec = load_spec(path or settings.spec_path)
    date = None if snapshot_date is None else parse_date(snapshot_date)
    with warehouse.open_warehouse(settings) as wh:
        found = check_spec(wh, spec, settings.sql_dir, snapshot_date=date)
    return {"path": str(path or settings.spec_path), **found}


def check_spec(
    db: Database, spec: FeatureSpec, sql_dir, *, snapshot_date=None, sample_rows: int = 10_000
) -> dict:
    """Check ``spec`` against the warehouse ``db``; return what was found.

    Raises SchemaMismatchError naming every missing or mistyped column (a
    feature the spec's own query derives need not be a table column), and
    SnapshotNotFoundError when the table holds no snapshot. Otherwise reads up
    to ``sample_rows`` rows of the snapshot (default: the newest) through the
    spec's extract query and counts the rows that break a rule, per rule. A feature
    read from another model's scores (``upstream_model``) is listed, not checked here.
    """
    from credit_batch.steps.validation import split_valid

    upstream = {f.name: f.upstream_model for f in spec.upstream}
    spec = spec.in_warehouse
    columns = check_columns(db, spec, sql_dir)
    snapshots = warehouse.list_snapshots(db, spec)
    date = warehouse.resolve_snapshot(db, spec, snapshot_date=snapshot_date)
    frame = _sample(db, spec, date, sample_rows)
    _, rejected = split_valid(frame, spec=spec)
    rules = rejected["reason"].str.split("; ").explode().value_counts()
    return {
        "spec": spec.name,
        "digest": spec.digest,
        "table": spec.table,
        "features": len(spec.features),
        "derived": [f.name for f in spec.features if f.name not in columns],
        "upstream": upstream,
        "snapshots": len(snapshots),
        "snapshot_date": date,
        "sample_rows": len(frame),
        "rows_breaking_rules": len(rejected),
        "broken_rules": {str(k): int(v) for k, v in rules.items()},
        "undeclared": {n: _undeclared(frame[n], spec.feature(n)) for n in spec.categorical},
        "unseen": {n: spec.feature(n).unseen for n in spec.categorical},
        "labeled_rows": _labeled_rows(db, spec, date, sql_dir),
    }


def check_columns(db: Database, spec: FeatureSpec, sql_dir) -> dict[str, str]:
    """Return the columns of ``spec.table`` and their types, or raise SchemaMismatchError
    naming every column the spec needs that is missing or of a type that cannot fit."""
    columns = _columns(db, spec.table, sql_dir)
    problems = _column_problems(spec, columns) + _event_problems(db, spec, sql_dir)
    if problems:
        raise SchemaMismatchError(
            f"spec {spec.name} does not fit the warehouse table {spec.table} in {db.url}: "
            + "; ".join(problems),
            problems=problems,
        )
    return columns


def _columns(db: Database, table: str, sql_dir) -> dict[str, str]:
    found = table_columns(db, sql_dir, table)
    if not found:
        raise SchemaMismatchError(
            f"the warehouse {db.url} has no table {table} (entity.table of the spec)",
            table=table,
        )
    return found


def _column_problems(spec: FeatureSpec, columns: dict[str, str]) -> list[str]:
    wanted = [(spec.key, f"key:{spec.key_type}"), (spec.snapshot_column, "date")]
    wanted += [(f.name, f.type) for f in spec.features if f.stream is None]
    problems = []
    for name, kind in wanted:
        if name not in columns:
            if spec.features_query is None or kind.startswith("key") or kind == "date":
                problems.append(f"column {name} is missing")
        elif not type_fits(kind, columns[name]):
            problems.append(f"column {name} is {columns[name]}, not {kind.split(':')[-1]}")
    problems += [
        f"column {a.name} (a fairness attribute) is missing"
        for a in spec.fairness
        if a.name not in columns
    ]
    return problems


def _event_problems(db: Database, spec: FeatureSpec, sql_dir) -> list[str]:
    """What the streaming features' SQL twin needs of the event table and does not find."""
    source = spec.events
    if source is None:
        return []
    found = table_columns(db, sql_dir, source.table)
    if not found:
        return [f"the event table {source.table} (events.table) is missing"]
    wanted = [source.key, source.id_column, source.time_column, source.kind_column]
    wanted += sorted({f.stream.field for f in spec.streaming if f.stream.field})
    return [f"column {name} of the event table {source.table} is missing"
            for name in dict.fromkeys(wanted) if name not in found]  # fmt: skip


def _sample(db: Database, spec: FeatureSpec, date, rows: int):
    import pyarrow as pa

    batches, n = [], 0
    for batch in warehouse.stream_features(db, spec, date, batch_rows=min(rows, 100_000)):
        batches.append(batch.slice(0, rows - n))
        n += batches[-1].num_rows
        if n >= rows:
            break
    return pa.Table.from_batches(batches, schema=spec.arrow_schema()).to_pandas()


def _undeclared(column, feature, *, top: int = 5) -> dict[str, int]:
    """The most frequent values of a categorical column that the spec does not declare."""
    extra = column[np.isnan(level_codes(column, feature.categories)) & column.notna()]
    return {str(k): int(v) for k, v in extra.value_counts().head(top).items()}


def _labeled_rows(db: Database, spec: FeatureSpec, date, sql_dir) -> int | None:
    """Outcomes known for ``date``; None where the outcomes table does not exist."""
    if not table_columns(db, sql_dir, spec.outcomes_table):
        return None
    table = db.fetch_arrow(spec.query("labeled_rows"), {"snapshot_date": date})
    return int(table.column("n_rows")[0].as_py())
