"""The results database: schema, slice replacement, run records.

Only one task writes at a time (the load, then the importance step); every
write replaces the slice it owns inside one transaction, so retries and
reruns never duplicate or half-write.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from credit_batch.checks import allowed_rows, utcnow
from credit_batch.config import Settings
from credit_batch.errors import (
    DataError,
    QuarantineBudgetError,
    ReconciliationError,
    SchemaVersionError,
)
from credit_batch.faults import fault_point
from credit_batch.stores.db import (
    Database,
    check_identifier,
    connect,
    database_exists,
    read_sql,
    table_columns,
    type_fits,
)

if TYPE_CHECKING:
    from credit_batch.run import Run

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "apply_schema",
    "check_schema_version",
    "schema_version",
    "KEY_SQL",
    "KEY_SUFFIX",
    "database_key_type",
    "key_suffix",
    "key_suffixes",
    "keyed_sql",
    "check_partitions",
    "exists",
    "finish_load",
    "loaded_from",
    "lock",
    "measured_slices",
    "open_results",
    "performance_history",
    "replace_comparison",
    "replace_fairness",
    "replace_importance",
    "replace_performance",
    "scored_slices",
    "slice_scores",
    "upgrade",
    "replace_reasons",
    "replace_predictions",
    "run_record",
]

logger = logging.getLogger(__name__)


#: SQL type of ``customer_id`` per key type of a spec.
KEY_SQL = {"integer": "BIGINT", "string": "VARCHAR"}


def open_results(
    settings: Settings,
    *,
    read_only: bool = False,
    key_type: str | None = None,
    bounded: bool = False,
) -> Database:
    """Connect to the results database; a writer also applies the schema.

    ``key_type`` (a spec's): the keyed tables of that type are created if missing,
    under their own names in a fresh database (none given: integer keys), else
    beside the first type's (:data:`KEY_SUFFIX`). ``bounded``: a
    DuckDB file gets ``settings.duckdb_memory_limit`` and spills beyond it (the
    load: a 20M-row slice's insert and reconciliation held 1.5-2 GiB without).
    """
    limit = settings.duckdb_memory_limit if bounded else None
    db = connect(
        settings.results_url,
        read_only=read_only,
        schema=settings.results_schema,
        memory_limit=limit,
    )
    try:
        if read_only:
            check_schema_version(db, settings)
        else:
            apply_schema(db, settings, key_type=key_type)
    except BaseException:
        db.close()
        raise
    return db


#: What this process has applied the schema to: (url, schema, key type) -> its shape
#: then (:func:`_shape`). A writer opening it again with the same shape and the current
#: version skips the DDL (three steps of each of a segmented model's 200 units open the
#: database: the DDL was a third of a unit's load); a new process, perhaps a newer
#: release, applies it once.
_APPLIED: dict[tuple, int] = {}


def apply_schema(db: Database, settings: Settings, *, key_type: str | None = None) -> None:
    """Create the tables if missing, add the columns they lack, (re)create the analyst views.

    One transaction under the ``schema`` lock: two writers opening a fresh
    PostgreSQL database at once would otherwise race on the same DDL. Once per
    process and database, while its recorded version is this release's.
    """
    done = (db.url, settings.results_schema, key_type)
    same = done in _APPLIED and _APPLIED[done] == _shape(db, settings)
    if same and schema_version(db, settings) == SCHEMA_VERSION:
        return
    _apply_schema(db, settings, key_type=key_type)
    _APPLIED[done] = _shape(db, settings)


def _shape(db: Database, settings: Settings) -> int:
    """How many columns the tables and views of the connection's schema have."""
    return db.fetch_arrow(read_sql(settings.sql_dir, "schema/shape.sql")).column(0)[0].as_py()


def _apply_schema(db: Database, settings: Settings, *, key_type: str | None) -> None:
    with db.transaction():
        lock(db, settings, "schema")
        found = schema_version(db, settings)
        if found is not None and found > SCHEMA_VERSION:
            raise _version_error(db, found)
        if db.dialect == "postgresql" and settings.results_schema != "public":
            create = read_sql(settings.sql_dir, "schema/results_schema.sql")
            db.run_script(create.replace("{schema}", check_identifier(settings.results_schema)))
        db.run_script(read_sql(settings.sql_dir, "schema/results.sql"))
        first = database_key_type(db, settings) or key_type or "integer"
        _create_keyed(db, settings, first, "")
        if key_type not in (None, first):
            _create_keyed(db, settings, key_type, KEY_SUFFIX[key_type])
        _add_missing_columns(db, settings)
        _migrate(db, settings, found)
        db.run_script(read_sql(settings.sql_dir, "views/analyst_views.sql"))
        views = read_sql(settings.sql_dir, "views/keyed_views.sql")
        for suffix in key_suffixes(db, settings).values():
            db.run_script(views.replace("{suffix}", suffix))


def _create_keyed(db: Database, settings: Settings, key_type: str, suffix: str) -> None:
    """Create the keyed tables (:data:`KEYED_TABLES`) of ``key_type`` under ``suffix``."""
    names = [f"schema/{t}.{db.dialect}.sql" for t in ("predictions", "online_features")]
    for name in [*names, "schema/quarantine.sql", "schema/adverse_action.sql"]:
        script = keyed_sql(read_sql(settings.sql_dir, name), suffix)
        db.run_script(script.replace("{key_type}", KEY_SQL[key_type]))


#: Columns added since the first release, as (table, column, type): a results
#: database created before gets them when a writer next opens it. A NULL spec
#: reads as the GMSC spec (the only one there was).
_ADDED_COLUMNS = (
    ("model_registry", "spec", "VARCHAR"),
    ("model_registry", "spec_hash", "VARCHAR"),
    ("scoring_runs", "rows_other_category", "BIGINT"),
    ("partial_dependence", "grid_label", "VARCHAR"),
    ("model_registry", "validation_date", "DATE"),
    ("model_registry", "validation", "VARCHAR"),
    ("model_registry", "gate_status", "VARCHAR"),
    ("model_registry", "model_card", "VARCHAR"),
    ("scoring_runs", "input_fingerprint", "VARCHAR"),
    ("scoring_runs", "points_base", "DOUBLE PRECISION"),
    ("scoring_runs", "points_odds", "DOUBLE PRECISION"),
    ("scoring_runs", "points_pdo", "DOUBLE PRECISION"),
    ("predictions", "points", "DOUBLE PRECISION"),
    ("scoring_runs", "role", "VARCHAR"),
    ("realized_performance", "in_sample", "BOOLEAN"),
    ("model_registry", "policy", "VARCHAR"),
    ("model_registry", "model_name", "VARCHAR"),  # schema version 2
    ("model_events", "model_name", "VARCHAR"),
    ("model_registry", "segment_by", "VARCHAR"),  # schema version 3
    ("model_registry", "segment", "VARCHAR"),
    ("scoring_runs", "decline_cutoff", "DOUBLE PRECISION"),  # schema version 5
    ("scoring_runs", "rows_declined", "BIGINT"),
    ("model_registry", "inventory", "VARCHAR"),
)


def _add_missing_columns(db: Database, settings: Settings) -> None:
    """Add the columns of :data:`_ADDED_COLUMNS` a table lacks (no DDL when none is missing)."""
    for table in dict.fromkeys(t for t, _, _ in _ADDED_COLUMNS):
        have = table_columns(db, settings.sql_dir, table)
        for column, kind in [(c, k) for t, c, k in _ADDED_COLUMNS if t == table]:
            if column not in have:
                logger.info("adding column %s.%s to %s", table, column, db.url)
                db.execute(
                    f"ALTER TABLE {check_identifier(table, tables=True)} "
                    f"ADD COLUMN {check_identifier(column)} {kind}"
                )


def schema_version(db: Database, settings: Settings) -> int | None:
    """The newest schema version recorded in ``db``: 1 for a database made before
    versions were recorded, None for one without tables."""
    if not table_columns(db, settings.sql_dir, "model_registry"):
        return None
    if not table_columns(db, settings.sql_dir, "schema_migrations"):
        return 1
    found = db.fetch_arrow(read_sql(settings.sql_dir, "schema/version.sql")).column("version")
    return found[0].as_py() or 1


def upgrade(settings: Settings) -> tuple[int | None, int]:
    """Migrate the results database to :data:`SCHEMA_VERSION` in place (as every writer
    does when it opens it); return the versions before (None: a new database) and after."""
    with connect(settings.results_url, schema=settings.results_schema) as db:
        before = schema_version(db, settings)
    with open_results(settings) as db:
        return before, schema_version(db, settings)


def check_schema_version(db: Database, settings: Settings) -> None:
    """Refuse to read a results database of another schema version than this release's."""
    found = schema_version(db, settings)
    if found is not None and found != SCHEMA_VERSION:
        raise _version_error(db, found)


def _version_error(db: Database, found: int) -> SchemaVersionError:
    if found > SCHEMA_VERSION:
        what = f"was written by a newer credit-batch; this one reads up to version {SCHEMA_VERSION}"
    else:
        what = (
            f"is older than this credit-batch's (version {SCHEMA_VERSION}); "
            "`credit-batch upgrade` migrates it"
        )
    return SchemaVersionError(
        f"the results database {db.url} is at schema version {found}, which {what}",
        version=found,
    )


def _migrate(db: Database, settings: Settings, found: int | None) -> None:
    """Run the migrations after ``found`` (all of them on a new database), each recorded."""
    for version in sorted(v for v in MIGRATIONS if v > (found or 1)):
        description, function = MIGRATIONS[version]
        if found is not None:
            logger.info("migrating %s to schema version %d: %s", db.url, version, description)
        function(db, settings)
        db.execute(
            read_sql(settings.sql_dir, "schema/record_version.sql"),
            {"version": version, "description": description, "applied_at": utcnow()},
        )


def _named_models(db: Database, settings: Settings) -> None:
    """Name every version registered before names: its spec's name (GMSC's if none)."""
    import json

    from credit_batch.features import default_spec

    rows = db.fetch_arrow(read_sql(settings.sql_dir, "schema/unnamed_versions.sql")).to_pylist()
    for row in rows:
        name = json.loads(row["spec"])["name"] if row["spec"] else default_spec().name
        db.execute(
            read_sql(settings.sql_dir, "schema/name_version.sql"),
            {"model_version": row["model_version"], "model_name": name},
        )
    db.execute(read_sql(settings.sql_dir, "schema/name_events.sql"))


def _no_rows_to_change(db: Database, settings: Settings) -> None:
    """Every version registered before segments is unsegmented (both columns NULL)."""


def _no_lineage(db: Database, settings: Settings) -> None:
    """No version registered before lineage read another model: ``model_lineage`` (created
    by the schema script) starts empty."""


def _no_adverse_action(db: Database, settings: Settings) -> None:
    """Runs scored before adverse-action reasons have none: ``adverse_action`` and
    ``fairness`` (created by the schema script) start empty, ``rows_declined`` stays NULL; versions
    registered before the inventory have no ``inventory`` (NULL: the page says so)."""


#: The versioned migrations, in order: ``version: (description, function)``.
#: Version 1 is every database made before versions were recorded (the columns
#: of :data:`_ADDED_COLUMNS` are added in place before any migration runs).
MIGRATIONS = {
    2: ("named models: model_registry.model_name and model_events.model_name", _named_models),
    3: ("segments: model_registry.segment_by and model_registry.segment", _no_rows_to_change),
    4: ("lineage: model_lineage, the upstream versions a version was trained on", _no_lineage),
    5: ("adverse_action, fairness and model_registry.inventory", _no_adverse_action),
}
SCHEMA_VERSION = max(MIGRATIONS)


#: Tables whose ``customer_id`` has a key type. A results database holds them, under
#: these names, for the key type it was created with; a model keyed the other way
#: (integer beside string ids) has its own beside them, suffixed: ``predictions_string_keys``.
KEYED_TABLES = ("predictions", "quarantine", "online_features", "adverse_action")
#: Suffix of the keyed tables of a key type that is not the database's first.
KEY_SUFFIX = {"integer": "_integer_keys", "string": "_string_keys"}
_KEYED_NAME = re.compile(rf"\b({'|'.join(KEYED_TABLES)})(_customer_idx)?\b")


def database_key_type(db: Database, settings: Settings) -> str | None:
    """The key type ``predictions`` was created with; None before it exists."""
    found = table_columns(db, settings.sql_dir, "predictions").get("customer_id", "")
    if not found:
        return None
    return "string" if type_fits("key:string", found) else "integer"


def key_suffix(db: Database, settings: Settings, key_type: str) -> str:
    """The suffix of the keyed tables of ``key_type`` here: "" for the database's own."""
    first = database_key_type(db, settings)
    return "" if first in (None, key_type) else KEY_SUFFIX[key_type]


def key_suffixes(db: Database, settings: Settings) -> dict[str, str]:
    """``{key type: suffix}`` of the keyed tables this database holds (none when fresh)."""
    first = database_key_type(db, settings)
    if first is None:
        return {}
    found = {first: ""}
    for other, suffix in KEY_SUFFIX.items():
        if other != first and table_columns(db, settings.sql_dir, "predictions" + suffix):
            found[other] = suffix
    return found


def keyed_sql(sql: str, suffix: str) -> str:
    """``sql`` reading the keyed tables of ``suffix`` (:data:`KEYED_TABLES`, allow-listed)."""
    if not suffix:
        return sql
    if suffix not in KEY_SUFFIX.values():
        raise ValueError(f"key suffix {suffix!r} must be one of {sorted(KEY_SUFFIX.values())}")
    return _KEYED_NAME.sub(lambda m: m.group(1) + suffix + (m.group(2) or ""), sql)


def read_keyed(db: Database, settings: Settings, name: str, key_type: str) -> str:
    """The SQL file ``name`` reading the keyed tables of ``key_type`` in this database."""
    return keyed_sql(read_sql(settings.sql_dir, name), key_suffix(db, settings, key_type))


def replace_reasons(db: Database, settings: Settings, reasons: dict[str, str]) -> None:
    """Write the reason text of each feature of ``reasons`` (other features keep theirs).

    Called when a model is registered, with its spec's texts; ``feature_reasons``
    is keyed by feature name, so two specs sharing a feature name share its text
    (the newest registration's).
    """
    import pyarrow as pa

    texts = pa.table({"feature": list(reasons), "reason_text": list(reasons.values())})
    lock(db, settings, "feature_reasons")
    delete = read_sql(settings.sql_dir, "load/delete_feature_reasons.sql")
    for feature in reasons:
        db.execute(delete, {"feature": feature})
    db.bulk_insert("feature_reasons", texts)


def replace_performance(
    db: Database, settings: Settings, performance: dict, calibration: list[dict]
) -> None:
    """Replace a slice's ``realized_performance`` row and ``calibration`` rows, in one transaction.

    ``performance`` holds the slice's ``snapshot_date`` and ``model_version``;
    each calibration row its ``grouping`` and bucket.
    """
    import pyarrow as pa

    key = {k: performance[k] for k in ("snapshot_date", "model_version")}
    with db.transaction():
        lock(db, settings, f"performance/{key['snapshot_date']}/{key['model_version']}")
        for name in ("monitor/delete_performance.sql", "monitor/delete_calibration.sql"):
            db.execute(read_sql(settings.sql_dir, name), key)
        db.bulk_insert("realized_performance", pa.Table.from_pylist([performance]))
        if calibration:
            db.bulk_insert("calibration", pa.Table.from_pylist([{**key, **r} for r in calibration]))


def loaded_from(db: Database, settings: Settings, run: Run) -> str | None:
    """The run id of the slice's newest load if it came from ``run``'s input fingerprint."""
    sql = read_keyed(db, settings, "load/loaded_from.sql", run.spec.key_type)
    found = db.fetch_arrow(sql, run.key).to_pylist()
    if found and run.input_fingerprint and found[0]["input_fingerprint"] == run.input_fingerprint:
        return found[0]["run_id"]
    return None


def replace_comparison(db: Database, settings: Settings, champion: Run, challenger: Run) -> int:
    """Replace the ``challenger_comparison`` rows of a challenger's slice against the
    champion's on the same snapshot; return the rows written. "Accepted" is a score at
    or below the champion's own policy's swap cutoff."""
    import pyarrow as pa

    cutoff = champion.policy.swap_cutoff
    key = {
        "snapshot_date": champion.snapshot_date,
        "champion_version": champion.model_version,
        "challenger_version": challenger.model_version,
    }
    with db.transaction():
        lock(db, settings, f"comparison/{'/'.join(map(str, key.values()))}")
        db.execute(read_sql(settings.sql_dir, "load/delete_comparison.sql"), key)
        found = db.fetch_arrow(
            read_keyed(db, settings, "load/compare_challenger.sql", champion.spec.key_type),
            {**key, "swap_cutoff": cutoff},
        ).to_pylist()
        rows = [{**key, **r, "swap_cutoff": cutoff} for r in found]
        return db.bulk_insert("challenger_comparison", pa.Table.from_pylist(rows))


def performance_history(db: Database, settings: Settings) -> list[dict]:
    """Every ``realized_performance`` row, by model and snapshot."""
    return db.fetch_arrow(read_sql(settings.sql_dir, "monitor/history.sql")).to_pylist()


def scored_slices(db: Database, settings: Settings) -> list[dict]:
    """Every loaded (snapshot, model version) slice, with its rows scored, newest first."""
    return db.fetch_arrow(read_sql(settings.sql_dir, "monitor/slices.sql")).to_pylist()


def measured_slices(db: Database, settings: Settings) -> set[tuple]:
    """The (snapshot date, model version) slices with a ``realized_performance`` row."""
    rows = db.fetch_arrow(read_sql(settings.sql_dir, "monitor/measured.sql")).to_pylist()
    return {(r["snapshot_date"], r["model_version"]) for r in rows}


def slice_scores(db: Database, settings: Settings, key: dict, *, key_type: str):
    """The ``customer_id``, ``score`` and ``risk_band`` of a slice's predictions (Arrow)."""
    return db.fetch_arrow(read_keyed(db, settings, "monitor/slice_scores.sql", key_type), key)


def lock(db: Database, settings: Settings, name: str) -> None:
    """Hold the lock ``name`` until the current transaction ends.

    Every delete-then-insert of a slice takes one: without it, two writers of
    the same slice would both delete (nothing they can see) and the second
    insert would collide with the first's rows at commit. PostgreSQL takes a
    transaction-scoped advisory lock; DuckDB needs none (one process at a time
    may open the file to write).
    """
    if db.dialect == "postgresql":
        db.fetch_arrow(read_sql(settings.sql_dir, "load/lock.postgresql.sql"), {"lock_key": name})


def replace_predictions(
    db: Database,
    settings: Settings,
    scored,
    run: dict,
    *,
    key_type: str,
    quarantined=None,
    adverse=None,
    shap_summary=None,
    drift=None,
    fairness=None,
) -> int:
    """Replace the (snapshot, model) slice with ``scored`` and record the run, atomically.

    Parameters
    ----------
    scored : pyarrow.dataset.Dataset
        The scored partitions, columns of :func:`credit_batch.steps.scoring.scores_schema`.
    run : dict
        The ``scoring_runs`` row; ``rows_in``, ``rows_scored``,
        ``rows_quarantined`` must reconcile with what is inserted.
    key_type : str
        The model's key type: its slice lives in that type's keyed tables.
    quarantined : pyarrow.dataset.Dataset, optional
        The rejected rows, columns of ``quarantine``; replace that slice too.
    adverse : pyarrow.dataset.Dataset, optional
        The declined rows' reasons, columns of ``adverse_action``; replace that slice too.
    shap_summary, drift, fairness : pyarrow.Table, optional
        Rows of ``shap_summary``, ``drift`` and (the night's) ``fairness`` for the slice;
        replace them too.
    """
    import pyarrow as pa

    key = {"snapshot_date": run["snapshot_date"], "model_version": run["model_version"]}
    with db.transaction():
        lock(db, settings, _slice_lock(key))
        suffix = key_suffix(db, settings, key_type)
        for name in _SLICE_DELETES:
            db.execute(keyed_sql(read_sql(settings.sql_dir, name), suffix), key)
        fault_point("load.after_delete")
        inserted = _insert_scores(db, key, scored, "predictions" + suffix)
        rejected = 0 if quarantined is None else db.bulk_insert("quarantine" + suffix, quarantined)
        if adverse is not None:
            db.bulk_insert("adverse_action" + suffix, adverse)
        if shap_summary is not None:
            db.execute(read_sql(settings.sql_dir, "load/delete_shap_summary.sql"), key)
            db.bulk_insert("shap_summary", shap_summary)
        if drift is not None:
            db.execute(read_sql(settings.sql_dir, "load/delete_drift.sql"), key)
            db.bulk_insert("drift", drift)
        if fairness is not None:
            replace_fairness(db, settings, fairness, kind="night", **key)
        fault_point("load.after_insert")
        _reconcile(db, settings, key, inserted, run, rejected, suffix)
        db.execute(read_sql(settings.sql_dir, "load/delete_run.sql"), {"run_id": run["run_id"]})
        db.bulk_insert("scoring_runs", pa.Table.from_pylist([run]))
        fault_point("load.before_commit")
    fault_point("load.after_commit")
    return inserted


#: What a slice's load deletes before it inserts (keyed tables).
_SLICE_DELETES = (
    "load/delete_predictions.sql",
    "load/delete_quarantine.sql",
    "load/delete_adverse_action.sql",
)


def replace_fairness(
    db: Database, settings: Settings, rows, *, kind: str, snapshot_date, model_version: str
) -> None:
    """Replace the ``fairness`` rows of one (kind, snapshot, version) with ``rows`` (Arrow)."""
    key = {"kind": kind, "snapshot_date": snapshot_date, "model_version": model_version}
    db.execute(read_sql(settings.sql_dir, "load/delete_fairness.sql"), key)
    if rows.num_rows:
        db.bulk_insert("fairness", rows)


def _insert_scores(db: Database, key: dict, scored, table: str) -> int:
    try:
        return db.bulk_insert(table, scored)
    except DataError as exc:  # a unique key broken: the scored files repeat a customer
        raise ReconciliationError(
            f"slice {key['snapshot_date']}/{key['model_version']} does not reconcile: {exc}; "
            "nothing was loaded",
        ) from exc


def _slice_lock(key: dict) -> str:
    return f"slice/{key['snapshot_date']}/{key['model_version']}"


def _reconcile(
    db: Database, settings: Settings, key: dict, inserted: int, run: dict, rejected: int, suffix
) -> None:
    sql = keyed_sql(read_sql(settings.sql_dir, "load/count_slice.sql"), suffix)
    counts = db.fetch_arrow(sql, key).to_pylist()[0]
    expected = run["rows_in"] - run["rows_quarantined"]
    if not (
        inserted == counts["n_rows"] == counts["n_customers"] == run["rows_scored"] == expected
        and rejected == run["rows_quarantined"]
    ):
        raise ReconciliationError(
            f"slice {key['snapshot_date']}/{key['model_version']} does not reconcile: "
            f"rows in {run['rows_in']}, quarantined {run['rows_quarantined']}, "
            f"scored {run['rows_scored']}, inserted {inserted} (+{rejected} quarantined), "
            f"stored {counts['n_rows']}, "
            f"distinct customers {counts['n_customers']}; nothing was loaded",
            counts=counts,
            inserted=inserted,
        )


def replace_importance(
    db: Database,
    settings: Settings,
    tables: dict,
    *,
    run_id: str,
    status: str,
    seconds: float,
    key: dict,
    dependence=None,
) -> None:
    """Replace the (snapshot, model) slices of importance (each method) and partial
    dependence; mark the run's importance status."""
    with db.transaction():
        lock(db, settings, _slice_lock(key))
        if dependence is not None:
            db.execute(read_sql(settings.sql_dir, "load/delete_partial_dependence.sql"), key)
            db.bulk_insert("partial_dependence", dependence)
        for method, rows in tables.items():
            db.execute(
                read_sql(settings.sql_dir, "load/delete_importance.sql"), {**key, "method": method}
            )
            db.bulk_insert("feature_importance", rows)
        fault_point("importance.before_commit")
        db.execute(
            read_sql(settings.sql_dir, "load/finish_importance.sql"),
            {"run_id": run_id, "importance_status": status, "importance_seconds": seconds},
        )


def check_partitions(run: Run, scored: list[dict]) -> None:
    """Refuse to load unless every partition reconciles and the budget holds.

    Every partition: rows in = rows scored + rows quarantined; the partitions
    add up to the rows extracted; the quarantined share is within the run's
    error budget (exactly at the budget passes).
    """
    bad = [s["index"] for s in scored if s["rows_in"] != s["rows_scored"] + s["rows_quarantined"]]
    total_in = sum(s["rows_in"] for s in scored)
    if bad or total_in != run.rows_in:
        raise ReconciliationError(
            f"run {run.run_id}: partitions {bad} lost rows, or partitions hold "
            f"{total_in:,} rows where extract read {run.rows_in:,}; nothing was loaded",
            run_id=run.run_id,
            partitions=bad,
        )
    scales = {tuple(s.get("points_scale") or ()) for s in scored}
    if len(scales) > 1:
        raise ReconciliationError(
            f"run {run.run_id}: partitions were scored on different points scales {sorted(scales)} "
            "(CREDIT_BATCH_POINTS_* differ between workers); nothing was loaded",
            run_id=run.run_id,
        )
    # rows of a segment without a champion are held by coverage, not by the data's rules
    quarantined = sum(s["rows_quarantined"] - s.get("rows_uncovered", 0) for s in scored)
    if quarantined > allowed_rows(run.max_quarantine_fraction, run.rows_in):
        raise QuarantineBudgetError(
            f"run {run.run_id}: {quarantined:,} of {run.rows_in:,} rows broke the feature "
            f"rules, more than the error budget of {run.max_quarantine_fraction:.2%}; "
            "nothing was loaded (see lake/quarantine/ for the rows and reasons)",
            run_id=run.run_id,
            quarantined=quarantined,
        )


def run_record(
    run: Run,
    scored: list[dict],
    *,
    score_psi: float | None = None,
    drift_status: str | None = None,
) -> dict:
    """The run's ``scoring_runs`` row as the load writes it."""
    return {
        "run_id": run.run_id,
        "snapshot_date": run.snapshot_date,
        "model_version": run.model_version,
        "airflow_dag_id": run.airflow_dag_id,
        "airflow_run_id": run.airflow_run_id,
        "started_at": run.started_at,
        "finished_at": utcnow(),
        "status": "loaded",
        "rows_in": run.rows_in,
        "rows_scored": sum(s["rows_scored"] for s in scored),
        "rows_quarantined": sum(s["rows_quarantined"] for s in scored),
        "rows_other_category": sum(s.get("rows_other_category", 0) for s in scored),
        "partitions": len(scored),
        "chunk_rows": run.chunk_rows,
        "extract_seconds": run.extract_seconds,
        "score_seconds": sum(s["seconds"] for s in scored),
        "load_seconds": None,
        "importance_seconds": None,
        "importance_status": "skipped: scored in shadow" if run.shadow else "pending",
        "score_psi": score_psi,
        "drift_status": drift_status,
        "report_path": None,
        "input_fingerprint": run.input_fingerprint,
        "role": run.role,
        "decline_cutoff": run.policy.swap_cutoff,
        "rows_declined": sum(s.get("rows_declined", 0) for s in scored),
        **dict(zip(("points_base", "points_odds", "points_pdo"), _scale(scored), strict=True)),
    }


def _scale(scored: list[dict]) -> list:
    found = scored[0].get("points_scale") if scored else None
    return list(found) if found else [None, None, None]


def finish_load(
    db: Database, settings: Settings, run_id: str, *, seconds: float, key_type: str
) -> None:
    """Record the load's seconds on the run, and refresh the planner's statistics.

    PostgreSQL's planner knows nothing of rows just bulk-loaded until
    ``ANALYZE`` (autovacuum may be off or late): a join over 300,000 fresh
    rows ran for minutes instead of milliseconds.
    """
    db.execute(
        read_sql(settings.sql_dir, "load/finish_load.sql"),
        {"load_seconds": seconds, "run_id": run_id},
    )
    if db.dialect == "postgresql":
        db.run_script(read_keyed(db, settings, "load/analyze.postgresql.sql", key_type))


def exists(settings: Settings) -> bool:
    """False only for a DuckDB results file not created yet (a fresh home)."""
    return database_exists(settings.results_url)
