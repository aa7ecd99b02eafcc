"""The run's steps in order: what a DAG task, a CLI command or a benchmark calls.

A run scores one snapshot date with one model version::

    plan = extract(settings, RunOptions(...))            # warehouse -> lake/features
    scored = [score_partition(settings, plan.run, p)     # one per partition, in parallel
              for p in plan.partitions]
    load(settings, plan.run, scored, plan.shadows)       # lake/scores -> predictions
    importance(settings, plan.run)                       # -> feature_importance, ...
    report(settings, plan.run)                           # -> lake/reports/.../report.html

(``plan.shadows``: the challengers scored beside the champion, each its own
slice), or all of it in one process: :func:`run`. This module only sequences: each
step's rows are shaped next to the step (``drift``, ``explain``,
``importance``, ``results``), paths come from ``lake``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import repeat
from multiprocessing import get_context

from credit_batch.checks import check_rows, parse_date, utcnow
from credit_batch.config import DEFAULT_SEED, MAX_DUPLICATE_IDS, MAX_WORKERS, Settings, safe_url
from credit_batch.demo import write_example as demo_data
from credit_batch.faults import fault_point
from credit_batch.features import FeatureSpec
from credit_batch.run import Plan, Run, RunOptions, RunResult
from credit_batch.steps import (
    adverse_action,
    drift,
    explain,
    fairness,
    scoring,
    segments,
    spec_check,
    upstream,
    validation,
)
from credit_batch.steps import importance as importance_module
from credit_batch.steps.report import write_report
from credit_batch.steps.spec_check import check_spec_file as check_spec
from credit_batch.steps.training import train
from credit_batch.stores import lake, online_store, registry, results, warehouse

__all__ = [
    "RunResult",
    "demo_data",
    "extract",
    "check_spec",
    "importance",
    "load",
    "load_csv",
    "promote",
    "upgrade",
    "report",
    "report_of",
    "run",
    "score_partition",
    "score_partitions",
    "train",
]

logger = logging.getLogger(__name__)

#: Scored files of earlier runs of a slice are deleted after a load once they
#: are this old (younger ones may belong to a run of the same slice going on).
SUPERSEDED_RUN_SECONDS = 3600.0


def extract(settings: Settings, options: RunOptions | None = None) -> Plan:
    """Resolve the run (snapshot, model) and write the snapshot's feature partitions.

    ``options`` were checked when built, so nothing is written for a bad one.
    """
    options = options or RunOptions()
    model = registry.resolve(settings, options.model_version, model_name=options.model_name)
    check_model(settings, model)  # a changed artifact fails before the night's features are read
    shadows = options.challengers and not options.model_version
    challengers = registry.shadow_models(settings, model) if shadows else []
    with warehouse.open_warehouse(settings) as wh:
        columns = {model.segment_by} - {None}
        extracted = extract_features(settings, wh, model.feature_spec, options, segment_by=columns)
    return plan_of(settings, options, extracted, model, challengers)


def check_model(settings: Settings, model: registry.ModelRecord) -> None:
    """Refuse a model whose artifact changed, or whose spec does not provide its features."""
    registry.verified_artifact(
        settings, model.artifact_path, model.sha256, version=model.model_version
    )
    model.feature_spec.check_provides(model.features, model=model.model_version)


@dataclass(frozen=True)
class Extracted:
    """One feature set's partitions of one snapshot, as extract wrote them."""

    spec: FeatureSpec
    snapshot_date: object
    parts: tuple[dict, ...]
    repeated: frozenset
    started_at: object
    seconds: float

    @property
    def rows_in(self) -> int:
        return sum(p["rows"] for p in self.parts)


def extract_features(
    settings: Settings, wh, spec: FeatureSpec, options: RunOptions, *, segment_by=()
) -> Extracted:
    """Write the snapshot's rows of ``spec``'s feature set to the lake, in partitions.

    ``segment_by``: columns whose rows per value each partition records (``"segments"``:
    what the runs of segmented models read, :func:`credit_batch.steps.segments.rows_of`).
    """
    started, t0 = utcnow(), time.perf_counter()
    part_rows, chunk = options.partition_rows(settings), options.chunk(settings)
    spec_check.check_columns(wh, spec.in_warehouse, settings.sql_dir)  # before any write
    date = warehouse.resolve_snapshot(
        wh, spec, snapshot_date=options.snapshot_date, as_of=options.as_of
    )
    scores = upstream.read_scores(settings, spec, [date])  # other models' scores it reads
    batches = warehouse.stream_features(
        wh, spec.in_warehouse, date, batch_rows=min(chunk, part_rows)
    )
    if spec.upstream:
        batches = upstream.join_batches(batches, spec, scores)
    parts = lake.write_parts(
        batches,
        lake.features_dir(settings.lake, date, feature_set=spec.feature_set),
        rows_per_part=part_rows,
        schema=spec.arrow_schema(),
        dictionary_columns=spec.dictionary_columns,
    )
    if segment_by:
        for part in parts:
            table = lake.read_columns(settings.lake, part["path"], sorted(segment_by))
            part["segments"] = segments.count_segments(table, sorted(segment_by))
    repeated = warehouse.repeated_ids(wh, spec, date, at_most=MAX_DUPLICATE_IDS + 1)
    logger.info("extracted %d rows of %s (%s)", sum(p["rows"] for p in parts), date, spec.name)
    seconds = time.perf_counter() - t0
    return Extracted(spec, date, tuple(parts), frozenset(repeated), started, seconds)


def plan_of(
    settings: Settings,
    options: RunOptions,
    extracted: Extracted,
    model: registry.ModelRecord,
    challengers=(),
    *,
    run_id: str | None = None,
    covered=None,
) -> Plan:
    """The plan of ``model`` (and its ``challengers``, in shadow) over ``extracted``; of a
    segmented model's segment, its rows (``covered``: see :class:`~credit_batch.run.Run`)."""
    validation.check_duplicates(
        extracted.repeated,
        extracted.rows_in,
        options.max_quarantine_fraction,
        extracted.snapshot_date,
    )
    run = Run.start(
        options,
        model,
        snapshot_date=extracted.snapshot_date,
        chunk_rows=options.chunk(settings),
        rows_in=sum(
            segments.rows_of(p, segment_by=model.segment_by, segment=model.segment, covered=covered)
            for p in extracted.parts
        ),
        started_at=extracted.started_at,
        extract_seconds=extracted.seconds,
        duplicate_ids=extracted.repeated,
        input_fingerprint=lake.input_fingerprint(extracted.parts, extracted.spec.digest),
        policy=model.policy_or(settings.policy),
        run_id=run_id,
        covered=covered,
    )
    fault_point("extract.before_return")
    if options.skip_unchanged and _loaded_from(settings, run):
        return Plan(run, ())  # nothing to score: the slice holds this input's scores
    partitions = tuple({"index": i, **p} for i, p in enumerate(extracted.parts))
    twins = tuple(run.twin_for(m, policy=m.policy_or(settings.policy)) for m in challengers)
    return Plan(run, partitions, twins)


def _loaded_from(settings: Settings, run: Run) -> str | None:
    with results.open_results(settings, read_only=True) as db:
        done = results.loaded_from(db, settings, run)
    if done:
        logger.info("%s / %s: loaded by run %s from the same input", *run.key.values(), done)
    return done


def score_partition(settings: Settings, run: Run, partition: dict, shadows=()) -> dict:
    """Validate and score one partition (:func:`credit_batch.steps.scoring.score_partition`),
    with the model of ``run`` and then with each challenger's (``"shadows"``: their results)."""
    done = scoring.score_partition(settings, run, partition)
    if shadows:
        done["shadows"] = [scoring.score_partition(settings, s, partition) for s in shadows]
    return done


def score_partitions(
    settings: Settings, run: Run, partitions, *, workers: int = 1, shadows=()
) -> Iterator[dict]:
    """Score every partition, in order: one after another, or in ``workers`` processes.

    ``workers > 1`` runs :func:`score_partition` in that many spawned
    processes, as the DAG's mapped tasks run on a worker with that many slots.
    Yields the results in the order of ``partitions``.
    """
    check_rows("workers", workers, maximum=MAX_WORKERS)
    return _score_in_order(settings, run, list(partitions), workers, tuple(shadows))


def _score_in_order(settings: Settings, run: Run, partitions: list, workers: int, shadows):
    if workers == 1 or len(partitions) < 2:
        yield from (score_partition(settings, run, p, shadows) for p in partitions)
        return
    processes = min(workers, len(partitions))
    with ProcessPoolExecutor(processes, mp_context=get_context("spawn")) as pool:
        args = repeat(settings), repeat(run), partitions, repeat(shadows)
        yield from pool.map(score_partition, *args)


def load(settings: Settings, run: Run, scored: list[dict], shadows=()) -> dict:
    """Replace the run's (snapshot, model) slices of ``predictions`` and ``quarantine``.

    Nothing is written unless every partition reconciles and the error budget
    holds (:func:`credit_batch.stores.results.check_partitions`); the write is one
    transaction that also checks that every stored customer id is unique. Then
    each challenger's slice (``shadows``), and its comparison with this one.
    """
    done = _load_slice(settings, run, scored)
    for i, shadow in enumerate(shadows):
        loaded = _load_slice(settings, shadow, [s["shadows"][i] for s in scored])
        with results.open_results(settings) as db:
            results.replace_comparison(db, settings, run, shadow)
        done.setdefault("shadows", []).append({"model_version": shadow.model_version, **loaded})
    return done


def _load_slice(settings: Settings, run: Run, scored: list[dict]) -> dict:
    t0 = time.perf_counter()
    scored = sorted(scored, key=lambda s: s["index"])
    results.check_partitions(run, scored)
    drift_rows, score_psi, drift_status = drift.slice_rows(run, scored)
    record = results.run_record(run, scored, score_psi=score_psi, drift_status=drift_status)
    groups = fairness.slice_rows(settings, run, [s["path"] for s in scored])  # None: no attributes
    with results.open_results(settings, bounded=True, key_type=run.spec.key_type) as db:
        inserted = results.replace_predictions(
            db,
            settings,
            lake.dataset(
                settings.lake,
                [s["path"] for s in scored],
                scoring.scores_schema(run.spec.key_arrow),
            ),
            record,
            key_type=run.spec.key_type,
            quarantined=lake.dataset(
                settings.lake,
                [s["quarantine_path"] for s in scored],
                scoring.quarantine_schema(run.spec.key_arrow),
            ),
            adverse=lake.dataset(
                settings.lake,
                [s["adverse_path"] for s in scored],
                adverse_action.adverse_action_schema(run.spec.key_arrow),
            ),
            shap_summary=explain.shap_summary_rows(run, scored),
            drift=drift_rows,
            fairness=groups,
        )
        seconds = time.perf_counter() - t0
        results.finish_load(db, settings, run.run_id, seconds=seconds, key_type=run.spec.key_type)
        url = db.url
    lake.tidy_slice(
        settings.lake,
        run.snapshot_date,
        run.model_version,
        run.run_id,
        keep={lake.part_name(s["index"]) for s in scored},
        older_than_seconds=SUPERSEDED_RUN_SECONDS,
    )
    logger.info("loaded %d predictions for %s / %s", inserted, run.snapshot_date, run.model_version)
    return {
        "run_id": run.run_id,
        "rows_loaded": inserted,
        "rows_quarantined": record["rows_quarantined"],
        "results": url,
    }


def importance(settings: Settings, run: Run, *, seed: int = DEFAULT_SEED) -> dict:
    """Permutation importance of the run's model on a sample of its snapshot.

    Always without labels (how far the score moves when a feature is
    shuffled) with partial dependence on the top three; with labels (how much
    ROC AUC drops) where outcomes are known, else the run record says
    ``importance_status = 'skipped: ...'`` and nothing fails.
    """
    t0, date = time.perf_counter(), run.snapshot_date
    model = registry.load_model(settings, run.artifact_path, run.sha256, version=run.model_version)
    spec = run.spec
    valid = importance_module.lake_sample(settings, run, seed=seed)  # memory: the sample
    if valid.empty:  # a pooled fallback with every segment covered: nothing it scored
        tables, dependence, status = {}, None, "skipped: the slice scored no valid row"
    else:
        tables, dependence = importance_module.unlabeled_rows(model, valid, run, seed=seed)
        customers = list(valid["customer_id"])
        labeled = importance_module.labeled_sample(settings, run, customers, seed=seed)
        labeled_table = importance_module.labeled_rows(
            model, labeled, run, target=spec.target, seed=seed
        )
        status = f"skipped: no outcomes known for snapshot {date}"
        if labeled_table is not None:
            tables[importance_module.METHOD], status = labeled_table, "computed"
    with results.open_results(settings) as db:
        results.replace_importance(
            db,
            settings,
            tables,
            run_id=run.run_id,
            status=status,
            seconds=time.perf_counter() - t0,
            dependence=dependence,
            key=run.key,
        )
    logger.info("importance for %s / %s: %s", date, run.model_version, status)
    return {"run_id": run.run_id, "importance_status": status, "methods": sorted(tables)}


def report(settings: Settings, run: Run) -> dict:
    """Write the run's HTML report (see :mod:`credit_batch.steps.report`); return its path."""
    path = report_of(settings, snapshot_date=run.snapshot_date, model_version=run.model_version)
    logger.info(
        "done: %s / %s is in %s (table predictions); report: %s; "
        "look a customer up with: credit-batch lookup ID",
        run.snapshot_date,
        run.model_version,
        safe_url(settings.results_url),
        path,
    )
    return {"run_id": run.run_id, "report_path": str(path)}


def report_of(
    settings: Settings,
    *,
    snapshot_date,
    model_version: str | None = None,
    model_name: str | None = None,
):
    """Write the HTML report of the newest run of a slice (version: the champion of
    ``model_name``, or of the only model with one); its path."""
    return write_report(
        settings, snapshot_date=snapshot_date, model_version=model_version, model_name=model_name
    )


def run(
    settings: Settings,
    options: RunOptions | None = None,
    *,
    workers: int = 1,
    progress: Callable | None = None,
) -> RunResult:
    """Extract, score (``workers`` processes), load, importance and report, in one call.

    ``progress``: wraps the iterator of scored partitions (e.g. ``tqdm``), given
    the iterator and the number of partitions.
    """
    t0 = time.perf_counter()
    check_rows("workers", workers, maximum=MAX_WORKERS)
    plan = extract(settings, options)
    if not plan.partitions:  # skipped: unchanged (RunOptions.skip_unchanged)
        return RunResult(plan.run, (), {"skipped": True}, {}, {}, time.perf_counter() - t0)
    scored = score_partitions(
        settings, plan.run, plan.partitions, workers=workers, shadows=plan.shadows
    )
    if progress is not None:
        scored = progress(scored, len(plan.partitions))
    scored = tuple(scored)
    loaded = load(settings, plan.run, list(scored), plan.shadows)
    materialize(settings, plan.run)
    explained = importance(settings, plan.run)
    written = report(settings, plan.run)
    return RunResult(plan.run, scored, loaded, explained, written, time.perf_counter() - t0)


def materialize(settings: Settings, run: Run) -> dict:
    """Write the run's snapshot of its feature set to the online store (the extract's
    partitions in the lake; newest snapshots win): see
    :func:`credit_batch.stores.online_store.materialize`."""
    return online_store.materialize(settings, run.spec, run.snapshot_date)


def load_csv(settings: Settings, path: str, *, snapshot_date) -> int:
    """Load a real ``cs-training.csv`` as one snapshot of the warehouse; return its rows."""
    date = parse_date(snapshot_date)
    features, outcomes = warehouse.read_gmsc_csv(path, date)  # before the warehouse opens
    with warehouse.open_warehouse(settings, read_only=False) as wh:
        warehouse.apply_schema(wh, settings)
        return warehouse.replace_snapshot(wh, settings, date, features, outcomes)


def upgrade(settings: Settings) -> tuple[int | None, int]:
    """Migrate the results database to this release's schema version, in place;
    return the versions before and after (see :func:`credit_batch.stores.results.upgrade`)."""
    return results.upgrade(settings)


def promote(settings: Settings, version: str, **audit) -> registry.ModelRecord:
    """Make ``version`` the champion, retire the previous one; ``audit``: ``actor``,
    ``reason``, ``override_gates`` (see :func:`credit_batch.stores.registry.promote`)."""
    with results.open_results(settings) as db:
        return registry.promote(db, settings, version, **audit)
