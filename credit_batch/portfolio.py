"""One night for the portfolio: every model with a champion, in one run.

The night's steps, as the nightly DAG's tasks call them::

    models = plan_night(settings, options)            # one entry per model (pinned versions)
    items = extract_night(settings, options, models)  # each feature set extracted once
    scored = [score_night(settings, i) for i in items]  # one per partition: every model
                                                      # reading that feature set
    for model in models:                              # one mapped task group per model
        loaded = load_model(settings, model, items, scored)
        importance_of(settings, loaded); report_of(settings, loaded)
    page(settings, options)                           # the portfolio page, every model

Models whose specs are equal share one extract (the lake keys it by feature
set) and are scored in the same score tasks, each into its own slice (its
challengers beside it, in shadow, as before). A model's failure is recorded
(:func:`credit_batch.errors.to_record`) where it happens, in planning,
extracting or scoring, and raised again, of its own class, by that model's
load: the other models load. Errors a retry may mend (a database away) fail
the task, which Airflow retries. :func:`run_night` runs it all in one process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import repeat
from multiprocessing import get_context

from credit_batch import errors, pipeline
from credit_batch.checks import check_rows, utcnow
from credit_batch.config import MAX_WORKERS, Settings
from credit_batch.errors import CreditBatchError, ParameterError
from credit_batch.run import Run, RunOptions, RunResult, night_run_id
from credit_batch.steps.report import write_portfolio_page
from credit_batch.stores import registry, results, warehouse

__all__ = [
    "Night",
    "extract_night",
    "importance_of",
    "load_model",
    "page",
    "plan_night",
    "report_of",
    "run_night",
    "score_night",
]

logger = logging.getLogger(__name__)


def plan_night(settings: Settings, options: RunOptions) -> list[dict]:
    """The night's models, each ``{"model_name", "version", "challengers", "failed"}``.

    Every model's champion (``options.model_name``: that model's; ``model_version``:
    that version alone, without challengers). A model whose artifact changed or
    whose spec lacks its features is ``failed`` (its load fails), the others go on;
    where none can be planned (an unknown version, no champion), the one entry is
    that failure, which extract raises.
    """
    try:
        found = registry.night_models(
            settings, options.model_version, model_name=options.model_name
        )
    except CreditBatchError as exc:  # no model to plan: extract raises it, with one try
        if exc.retryable:
            raise
        entry = {"model_name": options.model_name, "version": options.model_version}
        return [{**entry, "challengers": [], "failed": errors.to_record(exc)}]
    if options.run_id and len(found) > 1:
        names = ", ".join(r.model_name for r in found)
        raise ParameterError(
            "run id", options.run_id, f"resumes one model's run; name one of {names}"
        )
    return [_planned(settings, options, record) for record in found]


def _planned(settings: Settings, options: RunOptions, record: registry.ModelRecord) -> dict:
    entry = {"model_name": record.model_name, "version": record.model_version}
    entry.update(challengers=[], failed=None)
    try:
        pipeline.check_model(settings, record)
        if options.challengers and not options.model_version:
            found = registry.shadow_models(settings, record)
            entry["challengers"] = [c.model_version for c in found]
    except CreditBatchError as exc:
        if exc.retryable:
            raise
        logger.error("model %s fails tonight: %s", record.model_name, exc)
        entry["failed"] = errors.to_record(exc)
    return entry


def extract_night(settings: Settings, options: RunOptions, models: list[dict]) -> list[dict]:
    """Extract each feature set of the night once; one item per partition.

    Each item is ``{"feature_set", "partition", "plans"}``: ``plans`` holds, for
    every model reading that feature set, ``{"model_name", "run", "shadows"}``
    (or ``"failed"``). A feature set whose extract fails with an error a retry
    cannot mend gives one item with no partition, its models failed.
    """
    groups = _by_feature_set(settings, [m for m in models if not m["failed"]])
    items = []
    if groups:
        with warehouse.open_warehouse(settings) as wh:
            for feature_set, group in groups.items():
                items += _extract_group(settings, wh, options, feature_set, group)
    _nothing_left_to_score(models, items)
    return items


def _nothing_left_to_score(models: list[dict], items: list[dict]) -> None:
    """Raise a failed model's error where no model is left to score.

    A model's failure is raised by its load, which runs once the score tasks
    have; with none to run (every model failed, or failed and skipped) the
    loads would be skipped, and the failure with them: it fails extract instead.
    """
    failures = [m["failed"] for m in models if m["failed"]]
    failures += [e["failed"] for i in items for e in i["plans"] if "failed" in e]
    scoring = any("run" in e for i in items for e in i["plans"])
    if failures and not scoring:
        raise errors.from_record(failures[0])


def _by_feature_set(settings: Settings, models: list[dict]) -> dict[str, list]:
    groups: dict[str, list] = {}
    if not models:
        return groups
    with results.open_results(settings, read_only=True) as db:
        for m in models:
            record = registry.get_model(db, settings, m["version"])
            shadows = [registry.get_model(db, settings, v) for v in m["challengers"]]
            groups.setdefault(record.feature_spec.feature_set, []).append((record, shadows))
    return groups


def _extract_group(settings, wh, options, feature_set: str, group: list) -> list:
    try:
        extracted = pipeline.extract_features(settings, wh, group[0][0].feature_spec, options)
    except CreditBatchError as exc:
        if exc.retryable:
            raise
        failed = [_failed(record.model_name, exc) for record, _ in group]
        return [{"feature_set": feature_set, "partition": None, "plans": failed}]
    plans = []
    for record, shadows in group:
        run_id = _run_id(options, record.model_name)
        try:
            plan = pipeline.plan_of(settings, options, extracted, record, shadows, run_id=run_id)
        except CreditBatchError as exc:
            if exc.retryable:
                raise
            plans.append((None, _failed(record.model_name, exc)))
            continue
        if plan.partitions:  # none: skipped, the slice holds this input's scores
            plans.append((plan.partitions, _compact(record.model_name, plan)))
    parts = [{"index": i, **p} for i, p in enumerate(extracted.parts)]
    entries = [entry for _, entry in plans]
    return [{"feature_set": feature_set, "partition": p, "plans": entries} for p in parts]


def _run_id(options: RunOptions, model_name: str) -> str:
    """One run id per model and night: stable for one Airflow DAG run (its retries share it)."""
    if options.run_id:  # resuming one model's run (plan_night refuses it for several)
        return options.run_id
    return night_run_id(options.airflow_dag_id, options.airflow_run_id, model_name)


def _failed(model_name: str, exc: CreditBatchError) -> dict:
    logger.error("model %s fails tonight: %s", model_name, exc)
    return {"model_name": model_name, "failed": errors.to_record(exc)}


def _compact(model_name: str, plan) -> dict:
    shadows = [s.to_xcom() for s in plan.shadows]
    return {"model_name": model_name, "run": plan.run.to_xcom(), "shadows": shadows}


def score_night(settings: Settings, item: dict) -> dict:
    """Score one partition with every model of its feature set, each into its own slice.

    Returns ``{"feature_set", "index", "models": {name: result}}``; a model that
    fails with an error a retry cannot mend gets ``{"failed": ...}``, the others
    are scored.
    """
    partition = item["partition"]
    done = {}
    for entry in item["plans"]:
        name = entry["model_name"]
        if "failed" in entry:
            done[name] = {"failed": entry["failed"]}
            continue
        run, shadows = Run.from_xcom(entry["run"]), [Run.from_xcom(s) for s in entry["shadows"]]
        try:
            done[name] = pipeline.score_partition(settings, run, partition, shadows)
        except CreditBatchError as exc:
            if exc.retryable:
                raise
            done[name] = {"failed": _failed(name, exc)["failed"]}
    index = None if partition is None else partition["index"]
    return {"feature_set": item["feature_set"], "index": index, "models": done}


def load_model(settings: Settings, model: dict, items: list[dict], scored: list[dict]) -> dict:
    """Load one model's slices (champion and challengers) from the night's scored partitions.

    Raises the model's recorded failure, of its own class, if it failed earlier;
    returns ``{"model_name", "skipped": True}`` where its input was unchanged.
    """
    name = model["model_name"]
    if model["failed"]:
        raise errors.from_record(model["failed"], model_name=name)
    mine = [s["models"][name] for s in scored if name in s["models"]]
    failed = [d["failed"] for d in mine if "failed" in d]
    if failed:
        raise errors.from_record(failed[0], model_name=name, partitions_failed=len(failed))
    if not mine:
        return {"model_name": name, "skipped": True}
    entry = next(e for i in items for e in i["plans"] if e["model_name"] == name)
    run, shadows = Run.from_xcom(entry["run"]), [Run.from_xcom(s) for s in entry["shadows"]]
    loaded = pipeline.load(settings, run, mine, shadows)
    return {"model_name": name, "run": entry["run"], **loaded}


def importance_of(settings: Settings, loaded: dict) -> dict:
    """Permutation importance of a loaded model's run (nothing where it was skipped)."""
    if loaded.get("skipped"):
        return loaded
    explained = pipeline.importance(settings, Run.from_xcom(loaded["run"]))
    return {"model_name": loaded["model_name"], "run": loaded["run"], **explained}


def report_of(settings: Settings, loaded: dict) -> dict:
    """The HTML report of a loaded model's run (nothing where it was skipped)."""
    if loaded.get("skipped"):
        return loaded
    return pipeline.report(settings, Run.from_xcom(loaded["run"]))


def page(settings: Settings, options: RunOptions) -> dict:
    """Write the night's portfolio page (every model, whether it loaded or not); its path.

    The night is the options' snapshot date, else their as-of date, else today.
    """
    as_of = options.snapshot_date or options.as_of or utcnow().date()
    return {"portfolio_page": str(write_portfolio_page(settings, as_of=as_of))}


@dataclass
class Night:
    """A night run in one process: each model's :class:`RunResult`, or its error."""

    results: dict[str, RunResult] = field(default_factory=dict)
    failed: dict[str, CreditBatchError] = field(default_factory=dict)
    skipped: tuple[str, ...] = ()
    page: str | None = None  # the portfolio page's path


def run_night(
    settings: Settings,
    options: RunOptions | None = None,
    *,
    workers: int = 1,
    progress: Callable | None = None,
) -> Night:
    """Plan, extract, score (``workers`` processes), then per model load, importance
    and report, in one call. A model's failure is in :attr:`Night.failed`."""
    check_rows("workers", workers, maximum=MAX_WORKERS)
    options = options or RunOptions()
    t0 = time.perf_counter()
    models = plan_night(settings, options)
    items = extract_night(settings, options, models)
    scored = _score_all(settings, items, workers)
    if progress is not None:
        scored = progress(scored, len(items))
    scored = list(scored)
    night = Night()
    for model in models:
        _finish(settings, night, model, items, scored, t0)
    night.page = page(settings, options)["portfolio_page"]
    return night


def _score_all(settings: Settings, items: list[dict], workers: int):
    if workers == 1 or len(items) < 2:
        yield from (score_night(settings, i) for i in items)
        return
    with ProcessPoolExecutor(min(workers, len(items)), mp_context=get_context("spawn")) as pool:
        yield from pool.map(score_night, repeat(settings), items)


def _finish(settings, night: Night, model: dict, items, scored, t0: float) -> None:
    name = model["model_name"]
    try:
        loaded = load_model(settings, model, items, scored)
        if loaded.get("skipped"):
            night.skipped += (name,)
            return
        explained = importance_of(settings, loaded)
        written = report_of(settings, loaded)
    except CreditBatchError as exc:
        if exc.retryable:
            raise
        night.failed[name] = exc
        return
    run = Run.from_xcom(loaded["run"])
    mine = tuple(s["models"][name] for s in scored if name in s["models"])
    night.results[name] = RunResult(run, mine, loaded, explained, written, time.perf_counter() - t0)
