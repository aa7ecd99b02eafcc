"""The run's steps as plain functions: what a DAG task or a CLI command calls.

A run scores one snapshot date with one model version::

    plan = extract(settings, as_of=...)                 # warehouse -> lake/features
    done = [score_partition(settings, plan["run"], p)   # one per partition, in parallel
            for p in plan["partitions"]]
    load(settings, plan["run"], done)                   # lake/scores -> predictions
    explain(settings, plan["run"])                      # -> feature_importance

Inputs and outputs are small JSON-able dicts (paths, keys, counts), so the
same functions run through Airflow's XCom or in one process.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import repeat
from pathlib import Path

import numpy as np

from credit_batch import drift, lake, registry, results, warehouse
from credit_batch.config import (
    DEFAULT_IMPORTANCE_REPEATS,
    DEFAULT_IMPORTANCE_SAMPLE_ROWS,
    DEFAULT_MAX_QUARANTINE_FRACTION,
    DEFAULT_SEED,
    MAX_CHUNK_ROWS,
    MAX_DUPLICATE_IDS,
    MAX_IMPORTANCE_REPEATS,
    MAX_IMPORTANCE_SAMPLE_ROWS,
    MAX_PARTITION_ROWS,
    MAX_WORKERS,
    Settings,
    check_rows,
)
from credit_batch.db import read_sql
from credit_batch.errors import (
    DataError,
    DriftError,
    ParameterError,
    QuarantineBudgetError,
    ReconciliationError,
    SchemaMismatchError,
)
from credit_batch.faults import fault_point
from credit_batch.features import DEFAULT_FEATURE_SPEC
from credit_batch.validation import DuplicateTracker

logger = logging.getLogger(__name__)

#: Scored files of earlier runs of a slice are deleted after a load once they
#: are this old (younger ones may belong to a run of the same slice going on).
SUPERSEDED_RUN_SECONDS = 3600.0


def new_run_id(airflow_dag_id: str | None = None, airflow_run_id: str | None = None) -> str:
    """A run id: stable for one Airflow DAG run (so task retries share it), else random."""
    if airflow_dag_id and airflow_run_id:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"airflow:{airflow_dag_id}/{airflow_run_id}").hex
    return uuid.uuid4().hex


def extract(
    settings: Settings,
    *,
    snapshot_date=None,
    as_of=None,
    model_version=None,
    rows_per_partition: int | None = None,
    chunk_rows: int | None = None,
    max_quarantine_fraction: float = DEFAULT_MAX_QUARANTINE_FRACTION,
    fail_on_drift: bool = False,
    run_id: str | None = None,
    airflow_dag_id: str | None = None,
    airflow_run_id: str | None = None,
) -> dict:
    """Resolve the run (snapshot, model) and write the snapshot's feature partitions.

    Returns ``{"run": {...}, "partitions": [{"index", "path", "rows"}, ...]}``.
    Every parameter is validated before anything is written.
    """
    started, t0 = results.utcnow(), time.perf_counter()
    part_rows = check_rows(
        "rows_per_partition",
        rows_per_partition or settings.partition_rows,
        maximum=MAX_PARTITION_ROWS,
        minimum=100,
    )
    chunk = check_rows("chunk_rows", chunk_rows or settings.chunk_rows, maximum=MAX_CHUNK_ROWS)
    budget = check_fraction("max_quarantine_fraction", max_quarantine_fraction)
    run_id = lake.check_run_id(run_id) if run_id is not None else None
    model = _resolve_model(settings, model_version)
    _check_model_features(model)
    tracker = DuplicateTracker()
    with warehouse.open_warehouse(settings) as wh:
        date = warehouse.resolve_snapshot(wh, settings, snapshot_date=snapshot_date, as_of=as_of)
        batches = warehouse.stream_features(wh, settings, date, batch_rows=min(chunk, part_rows))
        parts = lake.write_parts(
            map(tracker.observe, batches),
            lake.features_dir(settings.lake, date),
            rows_per_part=part_rows,
            schema=DEFAULT_FEATURE_SPEC.arrow_schema(),
            dictionary_columns=DEFAULT_FEATURE_SPEC.dictionary_columns,
        )
    rows_in = sum(p["rows"] for p in parts)
    _check_duplicates(tracker.ids, rows_in, budget, date)
    run = {
        "run_id": run_id or new_run_id(airflow_dag_id, airflow_run_id),
        "snapshot_date": date.isoformat(),
        "model_version": model.model_version,
        "artifact_path": model.artifact_path,
        "sha256": model.sha256,
        "features": model.feature_names,
        "explainer_background": model.background,
        "drift_reference": model.reference_bins,
        "fail_on_drift": bool(fail_on_drift),
        "chunk_rows": chunk,
        "max_quarantine_fraction": budget,
        "duplicate_ids": sorted(tracker.ids),
        "airflow_dag_id": airflow_dag_id,
        "airflow_run_id": airflow_run_id,
        "started_at": started.isoformat(),
        "rows_in": rows_in,
        "extract_seconds": time.perf_counter() - t0,
    }
    logger.info("extracted %d rows of %s into %d partitions", rows_in, date, len(parts))
    fault_point("extract.before_return")
    return {"run": run, "partitions": [{"index": i, **p} for i, p in enumerate(parts)]}


def _check_model_features(model: registry.ModelRecord) -> None:
    unknown = [f for f in model.feature_names if f not in DEFAULT_FEATURE_SPEC.names]
    if unknown:
        raise SchemaMismatchError(
            f"model {model.model_version} needs features {unknown} that the warehouse "
            f"extract does not provide (it provides {DEFAULT_FEATURE_SPEC.names})",
            unknown=unknown,
        )


def check_fraction(name: str, value: object) -> float:
    """Return ``value`` if it is a number in [0, 1], else raise ParameterError."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ParameterError(name, value, "must be a number between 0 and 1")
    return float(value)


def _check_duplicates(ids: set[int], rows_in: int, budget: float, date: dt.date) -> None:
    if len(ids) > min(budget * rows_in, MAX_DUPLICATE_IDS):
        raise QuarantineBudgetError(
            f"snapshot {date} repeats {len(ids):,} customer ids (e.g. {sorted(ids)[:5]}); "
            f"more than the error budget of {budget:.2%} of {rows_in:,} rows allows",
            duplicates=len(ids),
        )


def _resolve_model(settings: Settings, model_version: str | None) -> registry.ModelRecord:
    with results.open_results(settings, read_only=_results_exist(settings)) as db:
        if model_version is not None:
            return registry.get_model(db, settings, model_version)
        return registry.champion(db, settings)


def _results_exist(settings: Settings) -> bool:
    """True unless the results DB is a DuckDB file not created yet (then open to create)."""
    url = settings.results_url
    return not url.startswith("duckdb:///") or Path(url.removeprefix("duckdb:///")).exists()


def score_partition(settings: Settings, run: dict, partition: dict) -> dict:
    """Validate and score one extracted partition; return its paths, counts and seconds.

    A partition already scored by this run from the same input file (a task
    retry after a crash later on) is reused, not recomputed: its manifest
    records the input's and outputs' sha256, and all three must still match.
    """
    t0 = time.perf_counter()
    out, quarantine = _outputs(settings, run, partition["index"])
    key = _manifest_key(run, partition)
    counts = _reusable(out, quarantine, key)
    if counts is None:
        with _thread_limit(settings.score_threads):
            counts = _score(settings, run, partition, out, quarantine, key)
    return {
        "index": partition["index"],
        "path": str(out),
        "quarantine_path": str(quarantine),
        "rows_in": partition["rows"],
        **counts,
        "seconds": time.perf_counter() - t0,
    }


def score_partitions(
    settings: Settings, run: dict, partitions: list[dict], *, workers: int = 1
) -> Iterator[dict]:
    """Score every partition, in order: one after another, or in ``workers`` processes.

    ``workers > 1`` runs :func:`score_partition` in that many spawned
    processes, as the DAG's mapped tasks run on a worker with that many slots
    (each task uses ``settings.score_threads`` threads). Yields the results in
    the order of ``partitions``; the first error is raised once running tasks end.
    """
    check_rows("workers", workers, maximum=MAX_WORKERS)
    return _score_in_order(settings, run, partitions, workers)


def _score_in_order(settings: Settings, run: dict, partitions: list[dict], workers: int):
    if workers == 1 or len(partitions) < 2:
        yield from (score_partition(settings, run, p) for p in partitions)
        return
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    processes = min(workers, len(partitions))
    with ProcessPoolExecutor(processes, mp_context=get_context("spawn")) as pool:
        yield from pool.map(score_partition, repeat(settings), repeat(run), partitions)


@contextmanager
def _thread_limit(threads: int):
    """At most ``threads`` threads for Arrow and for BLAS/OpenMP (threadpoolctl) in the block."""
    import pyarrow as pa
    from threadpoolctl import threadpool_limits

    before = pa.cpu_count()
    pa.set_cpu_count(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        pa.set_cpu_count(before)


def _score(
    settings: Settings, run: dict, partition: dict, out: Path, quarantine: Path, key: dict
) -> dict:
    """Score a partition into ``out`` and ``quarantine``; write its manifest; return counts."""
    from credit_batch.scoring import score_file

    model = registry.load_model(
        settings.home, run["artifact_path"], run["sha256"], version=run["model_version"]
    )
    counts = score_file(
        Path(partition["path"]),
        out,
        model,
        feature_names=run["features"],
        model_version=run["model_version"],
        run_id=run["run_id"],
        chunk_rows=run["chunk_rows"],
        quarantine_path=quarantine,
        duplicate_ids=frozenset(run["duplicate_ids"]),
        background=run["explainer_background"],
        drift_reference=run["drift_reference"],
        bands=settings.risk_bands,
    )
    fault_point("score.before_manifest")
    lake.write_manifest(
        out,
        {
            **key,
            **counts,
            "output_sha256": lake.sha256_file(out),
            "quarantine_sha256": lake.sha256_file(quarantine),
        },
    )
    return counts


def _manifest_key(run: dict, partition: dict) -> dict:
    return {
        "input_sha256": lake.sha256_file(Path(partition["path"])),
        "model_sha256": run["sha256"],
        "run_id": run["run_id"],
        "chunk_rows": run["chunk_rows"],
        "duplicate_ids": run["duplicate_ids"],
    }


def _reusable(out: Path, quarantine: Path, key: dict) -> dict | None:
    """The counts of a complete earlier scoring of the same input, or None."""
    manifest = lake.read_manifest(out)
    if (
        manifest is None
        or any(manifest.get(k) != v for k, v in key.items())
        or not out.is_file()
        or not quarantine.is_file()
        or lake.sha256_file(out) != manifest.get("output_sha256")
        or lake.sha256_file(quarantine) != manifest.get("quarantine_sha256")
    ):
        return None
    logger.info("reusing scored partition %s (manifest matches)", out)
    return {
        "rows_scored": manifest["rows_scored"],
        "rows_quarantined": manifest["rows_quarantined"],
        "shap_abs_sum": manifest["shap_abs_sum"],
        "drift_counts": manifest["drift_counts"],
        "reused": True,
    }


def _outputs(settings: Settings, run: dict, index: int) -> tuple[Path, Path]:
    date = dt.date.fromisoformat(run["snapshot_date"])
    name = lake.part_name(index)
    return (
        lake.scores_dir(settings.lake, date, run["model_version"], run["run_id"]) / name,
        lake.quarantine_dir(settings.lake, date, run["model_version"], run["run_id"]) / name,
    )


def load(settings: Settings, run: dict, scored: list[dict]) -> dict:
    """Replace the run's (snapshot, model) slices of ``predictions`` and ``quarantine``.

    Before anything is written: every partition reconciles (rows in = scored +
    quarantined), the partitions add up to the rows extracted, and the
    quarantined share is within the run's error budget. The write is one
    transaction, which also checks that every stored customer id is unique.
    """
    t0 = time.perf_counter()
    scored = sorted(scored, key=lambda s: s["index"])
    _reconcile_partitions(run, scored)
    date = dt.date.fromisoformat(run["snapshot_date"])
    for key in ("path", "quarantine_path"):
        folder = Path(scored[0][key]).parent if scored else None
        if folder is not None:
            lake.remove_stale_parts(folder, keep={Path(s[key]).name for s in scored})
    record = _run_record(run, scored)
    drift_rows = _drift_rows(run, scored, record)
    with results.open_results(settings) as db:
        inserted = results.replace_predictions(
            db,
            settings,
            _dataset(scored, "path"),
            record,
            quarantined=_dataset(scored, "quarantine_path"),
            shap_summary=_shap_summary(run, scored),
            drift=drift_rows,
        )
        record["load_seconds"] = time.perf_counter() - t0
        db.execute(
            read_sql(settings.sql_dir, "load/finish_load.sql"),
            {"load_seconds": record["load_seconds"], "run_id": run["run_id"]},
        )
    for key in ("path", "quarantine_path"):
        if scored:
            lake.remove_superseded_runs(
                Path(scored[0][key]).parent, older_than_seconds=SUPERSEDED_RUN_SECONDS
            )
    logger.info("loaded %d predictions for %s / %s", inserted, date, run["model_version"])
    return {
        "run_id": run["run_id"],
        "rows_loaded": inserted,
        "rows_quarantined": record["rows_quarantined"],
        "results": db.url,
    }


def _drift_rows(run: dict, scored: list[dict], record: dict):
    """PSI of each feature and the score; sets the run's drift status; may refuse the load."""
    import pyarrow as pa

    reference = run.get("drift_reference")
    if not reference or not scored:
        return None
    names, values = list(reference), []
    for name in names:
        counts = sum(np.asarray(s["drift_counts"][name]) for s in scored)
        values.append(drift.psi(reference[name]["expected"], counts))
    record["score_psi"] = values[names.index(drift.SCORE)]
    record["drift_status"] = drift.band(record["score_psi"])
    if run.get("fail_on_drift") and record["drift_status"] == "act":
        raise DriftError(
            f"run {run['run_id']}: score PSI {record['score_psi']:.3f} against the training "
            "data is in the act band (> 0.25) and fail_on_drift is set; nothing was loaded",
            psi=record["score_psi"],
        )
    n, date = len(names), dt.date.fromisoformat(run["snapshot_date"])
    return pa.table(
        {
            "snapshot_date": [date] * n,
            "model_version": [run["model_version"]] * n,
            "run_id": [run["run_id"]] * n,
            "feature": names,
            "psi": values,
            "band": [drift.band(v) for v in values],
            "rows_compared": [record["rows_scored"]] * n,
        }
    )


def _shap_summary(run: dict, scored: list[dict]):
    """Mean |SHAP| per feature over every scored row of the run, ranked."""
    import numpy as np
    import pyarrow as pa

    rows = sum(s["rows_scored"] for s in scored)
    total = np.sum([s["shap_abs_sum"] for s in scored], axis=0) if scored else None
    if not rows or total is None:
        return None
    mean = total / rows
    rank = np.empty(len(mean), dtype=np.int32)
    rank[np.argsort(-mean, kind="stable")] = np.arange(1, len(mean) + 1)
    n = len(mean)
    return pa.table(
        {
            "snapshot_date": [dt.date.fromisoformat(run["snapshot_date"])] * n,
            "model_version": [run["model_version"]] * n,
            "run_id": [run["run_id"]] * n,
            "feature": run["features"],
            "mean_abs_shap": mean,
            "importance_rank": rank,
            "rows_explained": [rows] * n,
        }
    )


def _dataset(scored: list[dict], key: str):
    import pyarrow.dataset as ds

    from credit_batch.scoring import quarantine_schema, scores_schema

    schema = scores_schema() if key == "path" else quarantine_schema()
    return ds.dataset([s[key] for s in scored], format="parquet", schema=schema)


def _reconcile_partitions(run: dict, scored: list[dict]) -> None:
    bad = [s["index"] for s in scored if s["rows_in"] != s["rows_scored"] + s["rows_quarantined"]]
    total_in = sum(s["rows_in"] for s in scored)
    if bad or total_in != run["rows_in"]:
        raise ReconciliationError(
            f"run {run['run_id']}: partitions {bad} lost rows, or partitions hold "
            f"{total_in:,} rows where extract read {run['rows_in']:,}; nothing was loaded",
            run_id=run["run_id"],
            partitions=bad,
        )
    quarantined = sum(s["rows_quarantined"] for s in scored)
    if quarantined > run["max_quarantine_fraction"] * run["rows_in"]:
        raise QuarantineBudgetError(
            f"run {run['run_id']}: {quarantined:,} of {run['rows_in']:,} rows broke the feature "
            f"rules, more than the error budget of {run['max_quarantine_fraction']:.2%}; "
            "nothing was loaded (see lake/quarantine/ for the rows and reasons)",
            run_id=run["run_id"],
            quarantined=quarantined,
        )


def _run_record(run: dict, scored: list[dict]) -> dict:
    return {
        "run_id": run["run_id"],
        "snapshot_date": dt.date.fromisoformat(run["snapshot_date"]),
        "model_version": run["model_version"],
        "airflow_dag_id": run["airflow_dag_id"],
        "airflow_run_id": run["airflow_run_id"],
        "started_at": dt.datetime.fromisoformat(run["started_at"]),
        "finished_at": results.utcnow(),
        "status": "loaded",
        "rows_in": run["rows_in"],
        "rows_scored": sum(s["rows_scored"] for s in scored),
        "rows_quarantined": sum(s["rows_quarantined"] for s in scored),
        "partitions": len(scored),
        "chunk_rows": run["chunk_rows"],
        "extract_seconds": run["extract_seconds"],
        "score_seconds": sum(s["seconds"] for s in scored),
        "load_seconds": None,
        "importance_seconds": None,
        "importance_status": "pending",
        "score_psi": None,
        "drift_status": None,
        "report_path": None,
    }


def explain(
    settings: Settings,
    run: dict,
    *,
    sample_rows: int = DEFAULT_IMPORTANCE_SAMPLE_ROWS,
    repeats: int = DEFAULT_IMPORTANCE_REPEATS,
    seed: int = DEFAULT_SEED,
) -> dict:
    """Permutation importance of the run's model on a sample of its snapshot.

    Always: without labels (how much the score moves when a feature is
    shuffled). Where outcomes are known: with labels (how much ROC AUC
    drops). Where none are known, the run record says so
    (``importance_status = 'skipped: ...'``) and nothing fails.
    """
    from credit_batch import importance

    t0 = time.perf_counter()
    check_rows("importance sample rows", sample_rows, maximum=MAX_IMPORTANCE_SAMPLE_ROWS)
    check_rows("importance repeats", repeats, maximum=MAX_IMPORTANCE_REPEATS)
    date = dt.date.fromisoformat(run["snapshot_date"])
    model = registry.load_model(
        settings.home, run["artifact_path"], run["sha256"], version=run["model_version"]
    )
    options = {"n_repeats": repeats, "seed": seed}
    unlabeled = importance.sample_rows(_lake_features(settings, date), n=sample_rows, seed=seed)
    label_free = importance.unlabeled_importance_frame(model, unlabeled[run["features"]], **options)
    tables = {
        importance.UNLABELED_METHOD: _importance_rows(
            label_free,
            run,
            importance.UNLABELED_METHOD,
            importance.UNLABELED_METRIC,
            repeats,
            len(unlabeled),
        )
    }
    dependence = _dependence_rows(model, unlabeled, run, label_free["feature"].tolist()[:3])
    with warehouse.open_warehouse(settings) as wh:
        labeled = _valid_rows(warehouse.read_labeled(wh, settings, date, date))
    status = f"skipped: no outcomes known for snapshot {date}"
    if len(labeled) and labeled[DEFAULT_FEATURE_SPEC.target].nunique() == 2:
        sample = importance.sample_rows(labeled, n=sample_rows, seed=seed)
        y = sample[DEFAULT_FEATURE_SPEC.target].to_numpy()
        frame = importance.permutation_importance_frame(
            model, sample[run["features"]], y, **options
        )
        tables[importance.METHOD] = _importance_rows(
            frame, run, importance.METHOD, importance.METRIC, repeats, len(sample)
        )
        status = "computed"
    with results.open_results(settings) as db:
        results.replace_importance(
            db,
            settings,
            tables,
            run_id=run["run_id"],
            status=status,
            seconds=time.perf_counter() - t0,
            dependence=dependence,
            key={"snapshot_date": date, "model_version": run["model_version"]},
        )
    logger.info("importance for %s / %s: %s", date, run["model_version"], status)
    return {"run_id": run["run_id"], "importance_status": status, "methods": sorted(tables)}


def report(settings: Settings, run: dict) -> dict:
    """Write the run's HTML report (see :mod:`credit_batch.report`); return its path."""
    from credit_batch.report import write_report

    path = write_report(
        settings, snapshot_date=run["snapshot_date"], model_version=run["model_version"]
    )
    return {"run_id": run["run_id"], "report_path": str(path)}


def _dependence_rows(model, sample, run: dict, features: list[str]):
    """Partial dependence of the score on ``features``, on at most 5,000 sampled rows."""
    import pyarrow as pa

    from credit_batch import importance

    rows = sample[run["features"]].iloc[:5_000]
    frame = importance.partial_dependence_frame(model, rows, features).assign(
        snapshot_date=dt.date.fromisoformat(run["snapshot_date"]),
        model_version=run["model_version"],
        run_id=run["run_id"],
        sample_rows=len(rows),
    )
    return pa.Table.from_pandas(frame, preserve_index=False)


def _importance_rows(frame, run: dict, method: str, metric: str, repeats: int, rows: int):
    import pyarrow as pa

    frame = frame.assign(
        run_id=run["run_id"],
        snapshot_date=dt.date.fromisoformat(run["snapshot_date"]),
        model_version=run["model_version"],
        method=method,
        metric=metric,
        n_repeats=repeats,
        sample_rows=rows,
    )
    return pa.Table.from_pandas(frame, preserve_index=False)


def _lake_features(settings: Settings, date: dt.date):
    """The snapshot's extracted features, valid rows only, from the lake."""
    import pyarrow.dataset as ds

    parts = sorted(lake.features_dir(settings.lake, date).glob("part-*.parquet"))
    table = ds.dataset(parts, format="parquet", schema=DEFAULT_FEATURE_SPEC.arrow_schema())
    return _valid_rows(table.to_table().to_pandas())


def demo_data(
    settings: Settings,
    *,
    rows: int,
    snapshots: int,
    seed: int = 0,
    unlabeled_snapshots: int = 1,
    drift: bool = False,
) -> list[dict]:
    """Write the generated stand-in warehouse; return rows per snapshot.

    ``drift`` plants a shift in the newest snapshot (see :func:`demo.generate`).
    """
    from credit_batch import demo

    written = []
    with warehouse.open_warehouse(settings, read_only=False) as wh:
        warehouse.apply_schema(wh, settings)
        for date, features, outcomes in demo.generate(
            rows=rows,
            snapshots=snapshots,
            seed=seed,
            unlabeled_snapshots=unlabeled_snapshots,
            drift=drift,
        ):
            n = warehouse.replace_snapshot(wh, settings, date, features, outcomes)
            written.append(
                {"snapshot_date": date.isoformat(), "rows": n, "labeled": outcomes is not None}
            )
    return written


def train(
    settings: Settings,
    *,
    until,
    since=None,
    algorithm: str = "logreg",
    max_rows: int = 300_000,
    seed: int = DEFAULT_SEED,
) -> registry.ModelRecord:
    """Fit on labeled snapshots in ``[since, until]``, evaluate, save and register a candidate."""
    from credit_batch import training

    until_date = warehouse.parse_date(until, name="train until date")
    since_date = warehouse.parse_date(since, name="train since date") if since else dt.date.min
    check_rows("max training rows", max_rows, maximum=MAX_PARTITION_ROWS, minimum=50)
    training.check_algorithm(algorithm)
    with warehouse.open_warehouse(settings) as wh:
        frame = _valid_rows(warehouse.read_labeled(wh, settings, since_date, until_date))
    if frame.empty:
        raise DataError(
            f"no labeled rows between {since_date} and {until_date} in the warehouse",
            since=since_date,
            until=until_date,
        )
    if len(frame) > max_rows:
        frame = frame.sample(n=max_rows, random_state=seed)
    model, metrics = training.fit_and_evaluate(frame, algorithm=algorithm, seed=seed)
    background = None
    if algorithm == "logreg":
        from credit_batch.explain import linear_background

        background = linear_background(model, frame[DEFAULT_FEATURE_SPEC.names])
    reference = drift.reference(
        frame,
        DEFAULT_FEATURE_SPEC.names,
        model.predict_proba(frame[DEFAULT_FEATURE_SPEC.names])[:, 1],
    )
    with results.open_results(settings) as db:
        return registry.save_model(
            db,
            settings,
            model,
            algorithm=algorithm,
            features=DEFAULT_FEATURE_SPEC.names,
            metrics=metrics,
            training_rows=len(frame),
            train_from=frame["snapshot_date"].min(),
            train_until=until_date,
            background=background,
            drift_reference=reference,
        )


def _valid_rows(frame):
    """The rows of a labeled frame that pass the spec's rules (as scoring sees them)."""
    from credit_batch.validation import split_valid

    valid, rejected = split_valid(frame)
    if len(rejected):
        logger.info("left out %d labeled rows that break the feature rules", len(rejected))
    return frame[valid].reset_index(drop=True)
