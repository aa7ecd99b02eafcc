"""One night for the portfolio: every model with a champion, in one run.

The night's steps, as the nightly DAG's tasks call them::

    models = plan_night(settings, options)            # one entry per model (pinned versions)
    for wave in range(graph.MAX_WAVES):               # models reading models' scores: later
        w = extract_wave(settings, options, models, wave)  # each feature set extracted once
        scored = [score_night(settings, i) for i in w["items"]]  # one per partition: every
                                                      # model reading that feature set
        for model in w["models"]:                     # one mapped task group per model
            loaded = load_model(settings, model, w["items"], scored)
            importance_of(settings, loaded); report_of(settings, loaded)
    page(settings, options)                           # the portfolio page, every model

Models whose specs are equal share one extract (the lake keys it by feature
set) and are scored in the same score tasks, each into its own slice (its
challengers beside it, in shadow, as before). A model's failure is recorded
(:func:`credit_batch.errors.to_record`) where it happens, in planning,
extracting or scoring, and raised again, of its own class, by that model's
load: the other models load. Errors a retry may mend (a database away) fail
the task, which Airflow retries. :func:`run_night` runs it all in one process.

A model whose spec reads another model's scores (``upstream_model``) is in a
later *wave* than that model (:func:`credit_batch.graph.waves`): its extract
starts once the earlier waves have loaded, and joins the scores stored tonight.
Rerunning a model (``options.model_name``) reruns every model reading it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import repeat
from multiprocessing import get_context

from credit_batch import errors, graph, pipeline
from credit_batch.checks import check_rows, utcnow
from credit_batch.config import MAX_WORKERS, Settings
from credit_batch.errors import CreditBatchError, ParameterError
from credit_batch.run import Run, RunOptions, RunResult, night_run_id
from credit_batch.steps.report import write_portfolio_page
from credit_batch.stores import registry, results, warehouse

__all__ = [
    "Night",
    "extract_night",
    "extract_wave",
    "importance_of",
    "load_model",
    "models_of_wave",
    "page",
    "plan_night",
    "report_of",
    "run_night",
    "score_night",
]

logger = logging.getLogger(__name__)


def plan_night(settings: Settings, options: RunOptions) -> list[dict]:
    """The night's models, each ``{"model_name", "failed", "units"}``, versions pinned.

    A unit is ``{"label", "version", "segment", "challengers", "failed"}``: the
    model's champion, or one per segment of a segmented model (label
    ``pd_cards/DE``; the pooled one ``pd_cards/*``). Every model's champions
    (``options.model_name``: that model's; ``model_version``: that version alone,
    without challengers). A unit whose artifact changed or whose spec lacks its
    features is ``failed`` (its model's load fails), the others go on; where
    none can be planned (an unknown version, no champion), the one entry is
    that failure, which extract raises.
    """
    try:
        found = registry.night_models(
            settings, options.model_version, model_name=options.model_name
        )
    except CreditBatchError as exc:  # no model to plan: extract raises it, with one try
        if exc.retryable:
            raise
        return [{"model_name": options.model_name, "failed": errors.to_record(exc), "units": []}]
    if options.model_name and not options.model_version:
        found = _with_readers(settings, found)
    by_name: dict[str, list] = {}
    for record in found:
        by_name.setdefault(record.model_name, []).append(record)
    if options.run_id and (len(by_name) > 1 or len(found) > 1):
        labels = ", ".join(r.label for r in found)
        raise ParameterError(
            "run id", options.run_id, f"resumes one model's run; name one version of {labels}"
        )
    reads = {name: _reads(records) for name, records in by_name.items()}
    wave = {name: i for i, names in enumerate(graph.waves(reads)) for name in names}
    return [
        _planned(settings, options, name, records, wave=wave[name], reads=reads[name])
        for name, records in by_name.items()
    ]


def _reads(records: list) -> list[str]:
    """The models a model's champions read the scores of (their specs' upstream models)."""
    return sorted({up for r in records for up in r.feature_spec.upstream_models})


def _with_readers(settings: Settings, found: list) -> list:
    """``found`` (one model's champions) and the champions of every model reading it,
    directly or through others: rerunning a model reruns the models reading its scores."""
    every = registry.night_models(settings)
    edges: dict[str, set] = {}
    for record in every:
        edges.setdefault(record.model_name, set()).update(record.feature_spec.upstream_models)
    reached = graph.downstream_of(edges, {r.model_name for r in found})
    readers = [r for r in every if r.model_name in reached and r not in found]
    return found + readers


def _planned(
    settings: Settings, options: RunOptions, name: str, records: list, *, wave: int, reads: list
) -> dict:
    units = [_unit(settings, options, record) for record in records]
    return {"model_name": name, "failed": None, "units": units, "wave": wave, "reads": reads}


def _unit(settings: Settings, options: RunOptions, record: registry.ModelRecord) -> dict:
    unit = {"label": record.label, "version": record.model_version, "segment": record.segment}
    unit.update(challengers=[], failed=None)
    try:
        pipeline.check_model(settings, record)
        if options.challengers and not options.model_version:
            found = registry.shadow_models(settings, record)
            unit["challengers"] = [c.model_version for c in found]
    except CreditBatchError as exc:
        if exc.retryable:
            raise
        logger.error("%s fails tonight: %s", record.label, exc)
        unit["failed"] = errors.to_record(exc)
    return unit


def models_of_wave(models: list[dict], wave: int) -> list[dict]:
    """The planned models (:func:`plan_night`) of one wave (see :mod:`credit_batch.graph`)."""
    return [m for m in models if m.get("wave", 0) == wave]


def extract_wave(settings: Settings, options: RunOptions, models: list[dict], wave: int) -> dict:
    """:func:`extract_night` of the models of one wave (see :mod:`credit_batch.graph`):
    ``{"models": those models, "items": their partitions}``. Wave ``n`` runs once the
    loads of the waves before it are done, so the scores its models read are stored."""
    mine = models_of_wave(models, wave)
    return {"models": mine, "items": extract_night(settings, options, mine) if mine else []}


def extract_night(settings: Settings, options: RunOptions, models: list[dict]) -> list[dict]:
    """Extract each feature set of the night once; one item per partition.

    Each item is ``{"feature_set", "partition", "plans"}``: ``plans`` holds, for
    every unit (a model, or a model's segment) reading that feature set,
    ``{"model_name", "label", "run", "shadows"}`` (or ``"failed"``). A feature set
    whose extract fails with an error a retry cannot mend gives one item with no
    partition, its models failed.
    """
    groups = _by_feature_set(settings, models)
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
    failures += [u["failed"] for m in models for u in m["units"] if u["failed"]]
    failures += [e["failed"] for i in items for e in i["plans"] if "failed" in e]
    scoring = any("run" in e for i in items for e in i["plans"])
    if failures and not scoring:
        raise errors.from_record(failures[0])


@dataclass(frozen=True)
class _Unit:
    """What extract plans one unit with: its record, challengers and rows."""

    record: registry.ModelRecord
    shadows: list
    covered: tuple | None  # the carrier's (see Run.covered), else None


def _by_feature_set(settings: Settings, models: list[dict]) -> dict[str, list[_Unit]]:
    groups: dict[str, list] = {}
    units = [u for m in models for u in m["units"] if not u["failed"]]
    if not units:
        return groups
    with results.open_results(settings, read_only=True) as db:
        for m in models:
            records = [registry.get_model(db, settings, u["version"]) for u in m["units"]]
            for unit, record in _segmented(m["units"], records):
                shadows = [registry.get_model(db, settings, v) for v in unit["challengers"]]
                group = groups.setdefault(record.record.feature_spec.feature_set, [])
                group.append(dataclasses.replace(record, shadows=shadows))
    return groups


def _segmented(units: list[dict], records: list) -> list[tuple[dict, _Unit]]:
    """Each unit still to score, with its rows: a segmented model's champions split its
    rows; the pooled one (or, without one, the first segment's) carries the rest."""
    column = next((r.segment_by for r in records if r.segment_by), None)
    if column is None:
        pairs = zip(units, records, strict=True)
        return [(u, _Unit(r, [], None)) for u, r in pairs if not u["failed"]]
    covered = tuple(sorted(r.segment for r in records if r.segment is not None))
    carrier = next((r for r in records if r.segment is None), records[0])
    out = []
    for unit, record in zip(units, records, strict=True):
        record = dataclasses.replace(record, segment_by=column)  # an old champion: the pooled
        mine = covered if record.model_version == carrier.model_version else None
        if not unit["failed"]:
            out.append((unit, _Unit(record, [], mine)))
    return out


def _extract_group(settings, wh, options, feature_set: str, group: list[_Unit]) -> list:
    spec = group[0].record.feature_spec
    segment_by = {u.record.segment_by for u in group if u.record.segment_by}
    try:
        extracted = pipeline.extract_features(settings, wh, spec, options, segment_by=segment_by)
    except CreditBatchError as exc:
        if exc.retryable:
            raise
        failed = [_failed(u.record, exc) for u in group]
        return [{"feature_set": feature_set, "partition": None, "plans": failed}]
    entries = []
    for unit in group:
        record = unit.record
        run_id = _run_id(options, record.label)
        try:
            plan = pipeline.plan_of(
                settings, _shared_sample(options, record, group), extracted, record,
                unit.shadows, run_id=run_id, covered=unit.covered,
            )  # fmt: skip
        except CreditBatchError as exc:
            if exc.retryable:
                raise
            entries.append(_failed(record, exc))
            continue
        if plan.partitions:  # none: skipped, the slice holds this input's scores
            entries.append(_compact(record, plan))
    parts = [{"index": i, **p} for i, p in enumerate(extracted.parts)]
    return [{"feature_set": feature_set, "partition": p, "plans": entries} for p in parts]


#: The fewest rows a segment's importance sample shares out of its model's.
MIN_SEGMENT_SAMPLE_ROWS = 1_000


def _shared_sample(options: RunOptions, record, group: list[_Unit]) -> RunOptions:
    """A segmented model's units share its importance sample (``importance_sample_rows``)
    equally, at least :data:`MIN_SEGMENT_SAMPLE_ROWS` each: 200 segments of a 2M-row book
    each sampling 20,000 rows would explain 2M rows a night, one model 20,000."""
    if record.segment_by is None:
        return options
    units = sum(u.record.model_name == record.model_name for u in group)
    whole = options.importance_sample_rows
    share = min(whole, max(MIN_SEGMENT_SAMPLE_ROWS, whole // max(units, 1)))
    return dataclasses.replace(options, importance_sample_rows=share)


def _run_id(options: RunOptions, label: str) -> str:
    """One run id per unit and night: stable for one Airflow DAG run (its retries share it)."""
    if options.run_id:  # resuming one model's run (plan_night refuses it for several)
        return options.run_id
    return night_run_id(options.airflow_dag_id, options.airflow_run_id, label)


def _failed(record: registry.ModelRecord, exc: CreditBatchError) -> dict:
    logger.error("%s fails tonight: %s", record.label, exc)
    failed = errors.to_record(exc)
    return {"model_name": record.model_name, "label": record.label, "failed": failed}


def _compact(record: registry.ModelRecord, plan) -> dict:
    shadows = [s.to_xcom() for s in plan.shadows]
    run = plan.run.to_xcom()
    return {"model_name": record.model_name, "label": record.label, "run": run, "shadows": shadows}


def score_night(settings: Settings, item: dict) -> dict:
    """Score one partition with every unit of its feature set, each into its own slice.

    Returns ``{"feature_set", "index", "models": {label: result}}``; a unit that
    fails with an error a retry cannot mend gets ``{"failed": ...}``, the others
    are scored.
    """
    partition = item["partition"]
    done = {}
    for entry in item["plans"]:
        label = entry["label"]
        if "failed" in entry:
            done[label] = {"failed": entry["failed"]}
            continue
        run, shadows = Run.from_xcom(entry["run"]), [Run.from_xcom(s) for s in entry["shadows"]]
        try:
            done[label] = pipeline.score_partition(settings, run, partition, shadows)
        except CreditBatchError as exc:
            if exc.retryable:
                raise
            logger.error("%s fails tonight: %s", label, exc)
            done[label] = {"failed": errors.to_record(exc)}
    index = None if partition is None else partition["index"]
    return {"feature_set": item["feature_set"], "index": index, "models": done}


def load_model(settings: Settings, model: dict, items: list[dict], scored: list[dict]) -> dict:
    """Load one model's slices (each unit's champion and challengers) from the night's
    scored partitions.

    Returns ``{"model_name", "units": [...]}`` (one model without segments: its
    unit's fields beside), a unit ``{"label", "run", "rows_loaded", ...}``,
    ``{"label", "skipped": True}`` where its input was unchanged, or ``{"label",
    "failed": record}`` where it failed while others of the model loaded: their
    importance and reports go on, and :func:`report_of` then raises the failure.
    Where no unit loaded, the first failure is raised, of its own class.
    """
    name = model["model_name"]
    if model["failed"]:
        raise errors.from_record(model["failed"], model_name=name)
    units, failures = [], []
    for unit in model["units"]:
        try:
            units.append(_load_unit(settings, name, unit, items, scored))
        except CreditBatchError as exc:
            if exc.retryable:
                raise
            failures.append(exc)
            units.append({"label": unit["label"], "failed": errors.to_record(exc)})
    if failures and len(failures) == len(units):
        raise failures[0]
    return _model_result(name, units)


def _model_result(name: str, units: list[dict]) -> dict:
    """``{"model_name", "units"}``; an unsegmented model's one unit's fields beside (what a
    one-model night returned before segments)."""
    single = units[0] if len(units) == 1 and units[0]["label"] == name else {}
    return {**single, "model_name": name, "units": units}


def _done(unit: dict) -> bool:
    """Whether a unit of :func:`load_model` loaded (neither skipped nor failed)."""
    return not (unit.get("skipped") or unit.get("failed"))


def _unit_error(model_name: str, unit: dict) -> CreditBatchError:
    """A failed unit's error, of its own class, naming the unit."""
    record = unit["failed"]
    message = f"{unit['label']}: {record['message']}; the model's other segments loaded"
    return errors.from_record({**record, "message": message}, model_name=model_name)


def _load_unit(settings: Settings, name: str, unit: dict, items, scored) -> dict:
    label = unit["label"]
    if unit["failed"]:
        raise errors.from_record(unit["failed"], model_name=name)
    mine = [s["models"][label] for s in scored if label in s["models"]]
    failed = [d["failed"] for d in mine if "failed" in d]
    if failed:
        raise errors.from_record(failed[0], model_name=name, partitions_failed=len(failed))
    if not mine:
        return {"label": label, "skipped": True}
    entry = next(e for i in items for e in i["plans"] if e["label"] == label)
    run, shadows = Run.from_xcom(entry["run"]), [Run.from_xcom(s) for s in entry["shadows"]]
    loaded = pipeline.load(settings, run, mine, shadows)
    return {"label": label, "run": entry["run"], **loaded}


def materialize_night(settings: Settings, items: list[dict]) -> list[dict]:
    """Write each feature set the night extracted to the online store, once per feature
    set and snapshot (:func:`credit_batch.pipeline.materialize`), beside the scoring.

    The spec comes with the runs planned on it; a feature set none of whose units is
    scored tonight (each skipped: its slice holds this very input, so the night that
    scored it wrote the store) or that failed to extract is left as it is.
    """
    runs = {}
    for item in items:
        found = [Run.from_xcom(e["run"]) for e in item["plans"] if "run" in e]
        if item["partition"] is not None and found:
            runs.setdefault((found[0].spec.feature_set, found[0].snapshot_date), found[0])
    done = [pipeline.materialize(settings, run) for run in runs.values()]
    return [{**d, "snapshot_date": d["snapshot_date"].isoformat()} for d in done]


def importance_of(settings: Settings, loaded: dict) -> dict:
    """Permutation importance of each loaded unit's run (nothing where it was skipped)."""
    units = []
    for unit in loaded["units"]:
        if _done(unit):
            explained = pipeline.importance(settings, Run.from_xcom(unit["run"]))
            unit = {"label": unit["label"], "run": unit["run"], **explained}
        units.append(unit)
    return _model_result(loaded["model_name"], units)


def report_of(settings: Settings, loaded: dict) -> dict:
    """The HTML report of each loaded unit's run (nothing where it was skipped); then the
    first failed unit's error is raised (the model's task ends failed, naming it)."""
    written = _reports(settings, loaded)
    failed = [u for u in loaded["units"] if u.get("failed")]
    if failed:
        raise _unit_error(loaded["model_name"], failed[0])
    return written


def _reports(settings: Settings, loaded: dict) -> dict:
    units = []
    for u in loaded["units"]:
        if _done(u):
            u = {"label": u["label"], **pipeline.report(settings, Run.from_xcom(u["run"]))}
        units.append(u)
    return _model_result(loaded["model_name"], units)


def page(settings: Settings, options: RunOptions) -> dict:
    """Write the night's portfolio page (every model, whether it loaded or not) and the
    model inventory page (:mod:`credit_batch.steps.inventory`); their paths.

    The night is the options' snapshot date, else their as-of date, else today.
    """
    from credit_batch.steps.inventory import write_inventory_page

    as_of = options.snapshot_date or options.as_of or utcnow().date()
    written = str(write_portfolio_page(settings, as_of=as_of))
    return {"portfolio_page": written, "inventory_page": str(write_inventory_page(settings))}


@dataclass
class Night:
    """A night run in one process: each unit's :class:`RunResult` (by label: a model's
    name, or ``pd_cards/DE`` of a segment), or each failed model's error."""

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
    night, last = Night(), max(m.get("wave", 0) for m in models)
    for wave in range(last + 1):
        try:
            extracted = extract_wave(settings, options, models, wave)
        except CreditBatchError as exc:
            if exc.retryable or last == 0:  # a night of one wave: its error, as it was
                raise
            night.failed.update({m["model_name"]: exc for m in models_of_wave(models, wave)})
            continue
        items = extracted["items"]
        scored = _score_all(settings, items, workers)
        if progress is not None:
            scored = progress(scored, len(items))
        scored = list(scored)
        for model in extracted["models"]:
            _finish(settings, night, model, items, scored, t0)
        materialize_night(settings, items)
    night.page = page(settings, options)["portfolio_page"]
    return night


def _score_all(settings: Settings, items: list[dict], workers: int):
    if workers == 1 or len(items) < 2:
        yield from (score_night(settings, i) for i in items)
        return
    with ProcessPoolExecutor(min(workers, len(items)), mp_context=get_context("spawn")) as pool:
        yield from pool.map(score_night, repeat(settings), items)


def _finish(settings, night: Night, model: dict, items, scored, t0: float) -> None:
    try:
        loaded = load_model(settings, model, items, scored)
        explained = importance_of(settings, loaded)
        written = _reports(settings, loaded)
    except CreditBatchError as exc:
        if exc.retryable:
            raise
        night.failed[model["model_name"]] = exc
        return
    for unit, exp, wr in zip(loaded["units"], explained["units"], written["units"], strict=True):
        label = unit["label"]
        if unit.get("failed"):
            night.failed[label] = _unit_error(model["model_name"], unit)
            continue
        if unit.get("skipped"):
            night.skipped += (label,)
            continue
        mine = tuple(s["models"][label] for s in scored if label in s["models"])
        run, seconds = Run.from_xcom(unit["run"]), time.perf_counter() - t0
        night.results[label] = RunResult(run, mine, unit, exp, wr, seconds)
