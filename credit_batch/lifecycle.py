"""The model lifecycle as plain functions: what the training and monitoring DAGs and the CLI call.

::

    train_candidate(settings, cutoff=D)   # train, validate out of time, gate: challenger or not
    promote(settings, V, actor=..., reason=...)   # an explicit act, audited (model_events)
    retire(settings, V, actor=..., reason=...)
    monitor(settings)                     # realized performance of stored scores
    backfill(settings, D1, D2)            # every snapshot in a range, unchanged slices skipped
    demo(settings)                        # demo data, train, promote, score two snapshots, monitor
    portfolio_demo(settings)              # the same for the portfolio: 3 models x 4 segments
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from credit_batch import demo as demo_module
from credit_batch import pipeline
from credit_batch.checks import parse_date
from credit_batch.config import EXAMPLE_SPECS, STREAM_MODEL_FILE, Settings
from credit_batch.errors import ParameterError
from credit_batch.features import load_spec
from credit_batch.run import RunOptions
from credit_batch.steps import monitoring
from credit_batch.steps.lifecycle import register_outside, train_candidate
from credit_batch.steps.monitoring import sample_in_words
from credit_batch.stores import registry, results, warehouse

__all__ = [
    "approve",
    "backfill",
    "demo",
    "events",
    "monitor",
    "monitoring_page",
    "portfolio_demo",
    "sample_in_words",
    "promote",
    "fairness_search",
    "inventory_page",
    "register_outside",
    "retire",
    "train_candidate",
]

logger = logging.getLogger(__name__)


def train_from_model_file(
    settings: Settings,
    model_file: str | None = None,
    *,
    cutoff,
    since=None,
    algorithm: str | None = None,
    model_name: str | None = None,
    segment: str | None = None,
    actor: str | None = None,
    outside_model: str | None = None,
    trained_until=None,
) -> registry.ModelRecord:
    """:func:`train_candidate` with the model file's spec, policy and options (none: the
    settings' spec); ``algorithm`` and ``model_name``, where given, win over the file's.
    ``segment``: of a model file with ``segment_by``, the segment to train (refused for
    a file without, or without a file). ``outside_model``: register that model, trained
    elsewhere until ``trained_until``, instead of training (:func:`register_outside`)."""
    from credit_batch.model_file import training_options

    options = training_options(model_file, algorithm=algorithm, model_name=model_name)
    if outside_model is not None:
        if trained_until is None:
            raise ParameterError("trained_until", None, "is needed with outside_model")
        return register_outside(settings, outside_model, cutoff=cutoff,
                                trained_until=trained_until, actor=actor, **options)  # fmt: skip
    if segment is not None and not options.get("segment_by"):
        where = f" ({model_file} has none)" if model_file else ""
        raise ParameterError("segment", segment, f"needs a model file with segment_by{where}")
    return train_candidate(
        settings, cutoff=cutoff, since=since, actor=actor, segment=segment, **options
    )


def fairness_search(
    settings: Settings,
    model_file: str | None = None,
    *,
    cutoff,
    algorithm: str | None = None,
    top: int = 3,
) -> dict:
    """The search for less discriminatory alternatives of the candidate ``model_file``
    would train at ``cutoff`` (:mod:`credit_batch.steps.alternatives`); registers nothing.

    Returns ``validation_date``, ``cutoff`` (the policy's) and ``variants``: each one's
    name, features, ROC AUC, AIRs and whether it is on the frontier of AUC and lowest AIR.
    """
    from credit_batch.model_file import training_options
    from credit_batch.steps.lifecycle import alternatives_at

    options = training_options(model_file, algorithm=algorithm)
    spec = options.pop("spec", None) or load_spec(settings.spec_path)
    if not spec.fairness:
        raise ParameterError(
            "spec", spec.name, "must declare a fairness attribute ([[fairness]]) to search by"
        )
    return alternatives_at(settings, cutoff=cutoff, spec=spec, top=top, **options)


def inventory_page(settings: Settings) -> str:
    """Write the model inventory page (:mod:`credit_batch.steps.inventory`); its URI."""
    from credit_batch.steps.inventory import write_inventory_page

    return write_inventory_page(settings).uri


def promote(settings: Settings, version: str, **audit) -> registry.ModelRecord:
    """Make ``version`` the champion (see :func:`credit_batch.pipeline.promote`)."""
    return pipeline.promote(settings, version, **audit)


def approve(
    settings: Settings, version: str, *, approve: bool, actor: str, reason: str | None = None
) -> dict:
    """Promote ``version`` if ``approve`` and its gates passed; say what was done and why.

    The training DAG's last task: promotion stays an explicit act (the Param
    ``approve``), never a side effect of training well.
    """
    with results.open_results(settings, read_only=True) as db:
        record = registry.get_model(db, settings, version)
    if not approve:
        return {"model_version": version, "promoted": False, "why": "not approved (Param)"}
    if record.gate_status != "passed":
        return {"model_version": version, "promoted": False, "why": record.gate_status}
    promote(settings, version, actor=actor, reason=reason or "approved at training")
    return {"model_version": version, "promoted": True, "why": reason or "approved at training"}


def retire(settings: Settings, version: str, **audit) -> registry.ModelRecord:
    """Retire ``version`` with an audit row (``actor``, ``reason``)."""
    with results.open_results(settings) as db:
        return registry.retire(db, settings, version, **audit)


def events(settings: Settings, version: str | None = None) -> list[dict]:
    """The ``model_events`` audit trail, oldest first (of one version, or all)."""
    if not results.exists(settings):
        return []
    with results.open_results(settings, read_only=True) as db:
        return registry.events(db, settings, version)


def monitor(settings: Settings, *, snapshot_date=None, only_new: bool = False) -> list[dict]:
    """Realized performance of every loaded slice with known outcomes (of one snapshot, or
    all; ``only_new``: only slices not measured yet); then the monitoring page."""
    written = monitoring.realized_performance(
        settings, snapshot_date=snapshot_date, only_new=only_new
    )
    if results.exists(settings):
        logger.info("monitoring page: %s", monitoring.write_page(settings))
    return written


def monitoring_page(settings: Settings) -> str:
    """Where the monitoring page is (``<lake>/reports/monitoring.html``)."""
    from credit_batch.stores import lake

    return lake.monitoring_path(settings.lake).uri


def backfill(
    settings: Settings,
    date_from,
    date_to,
    *,
    model_version: str | None = None,
    force: bool = False,
    workers: int = 1,
) -> list[pipeline.RunResult]:
    """Run every warehouse snapshot in ``[date_from, date_to]``, oldest first.

    Each date is its own slice; a slice already loaded from the same
    extracted features and model is skipped unless ``force``. Without a
    ``model_version``, the champion scores, and the challengers in shadow.
    """
    first, last = parse_date(date_from, name="from date"), parse_date(date_to, name="to date")
    if first > last:
        raise ParameterError("date range", (str(first), str(last)), "must have from <= to")
    record = registry.resolve(settings, model_version)
    with warehouse.open_warehouse(settings) as wh:
        found = warehouse.list_snapshots(wh, record.feature_spec)
    dates = sorted(d["snapshot_date"] for d in found if first <= d["snapshot_date"] <= last)
    if not dates:
        raise ParameterError("date range", (str(first), str(last)), "holds no warehouse snapshot")
    done = []
    for date in dates:
        options = RunOptions(  # no version given: the champion, and challengers in shadow
            snapshot_date=date, model_version=model_version, skip_unchanged=not force
        )
        done.append(pipeline.run(settings, options, workers=workers))
    return done


def demo(
    settings: Settings,
    *,
    rows: int = demo_module.DEFAULT_ROWS,
    example: str = "gmsc",
    progress: Callable | None = None,
) -> tuple[registry.ModelRecord, list[pipeline.RunResult], list[dict]]:
    """The demo: write the warehouse, train and promote, score the two newest snapshots, monitor.

    ``example="lender"`` builds the loan book with categorical features and
    trains on its spec (``sql/specs/lender/spec.toml``). The older scored
    snapshot has outcomes, so the demo ends with its realized performance.
    """
    written = pipeline.demo_data(settings, example, rows=rows)
    dates = [w["snapshot_date"] for w in written]
    if example == "streaming":  # a named model with its policy: pd_stream
        trained = train_from_model_file(settings, str(STREAM_MODEL_FILE), cutoff=dates[-3])
    else:
        from credit_batch.model_file import load_model_file

        on_spec = dataclasses.replace(settings, spec_path=EXAMPLE_SPECS[example])
        about = load_model_file(EXAMPLE_SPECS[example].parent / "model.toml").inventory
        trained = pipeline.train(on_spec, until=dates[-3], inventory=about)  # the spec's options
    record = trained
    if trained.status != "champion":  # a second demo trains the same version: no second act
        record = promote(settings, trained.model_version, reason="the demo's model")
    options = [RunOptions(snapshot_date=d, model_version=record.model_version) for d in dates[-2:]]
    done = [pipeline.run(settings, o, progress=progress) for o in options]
    return record, done, monitor(settings)


def _demo_champion(settings: Settings, trained: registry.ModelRecord) -> registry.ModelRecord:
    if trained.status == "champion":  # a second demo trains the same versions
        return trained
    return promote(settings, trained.model_version, reason="the demo's model")


def portfolio_demo(
    settings: Settings,
    *,
    rows: int = demo_module.DEFAULT_ROWS,
    workers: int = 1,
    progress: Callable | None = None,
) -> tuple[list[registry.ModelRecord], list, list[dict]]:
    """The portfolio demo: write the book of three products in four countries, train and
    promote a champion per segment of each product's model file (and the pooled one
    where the file's fallback is "pooled"), score the training month with them, train
    and promote the collections model on their stored scores (it reads ``pd_cards``),
    run the nights of the two newest snapshots
    (:func:`credit_batch.portfolio.run_night`), monitor.

    Returns the champions, the two :class:`~credit_batch.portfolio.Night` results and the
    realized performance.
    """
    from credit_batch import demo_portfolio, portfolio
    from credit_batch.model_file import each_segment, training_options

    dates = [w["snapshot_date"] for w in pipeline.demo_data(settings, "portfolio", rows=rows)]
    champions = []
    for name in demo_portfolio.MODEL_FILES:
        path = settings.sql_dir / name
        for segment in each_segment(path):
            trained = pipeline.train(
                settings, until=dates[-3], segment=segment, **training_options(path)
            )
            champions.append(_demo_champion(settings, trained))
    # the readers of PD scores train on the PD champions' stored scores of their window
    portfolio.run_night(settings, RunOptions(snapshot_date=dates[-3]), workers=workers)
    for name in demo_portfolio.READER_FILES:
        path = settings.sql_dir / name
        trained = pipeline.train(
            settings, since=dates[-3], until=dates[-3], **training_options(path)
        )
        champions.append(_demo_champion(settings, trained))
    nights = [
        portfolio.run_night(
            settings, RunOptions(snapshot_date=d), workers=workers, progress=progress
        )
        for d in dates[-2:]
    ]
    return champions, nights, monitor(settings)
