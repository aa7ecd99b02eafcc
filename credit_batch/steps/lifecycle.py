"""Train a candidate, validate it out of time, gate it; measure realized performance.

A candidate is trained on the labeled snapshots before the newest matured
one (outcomes known) at a cutoff, and validated on that newest one, which
it never saw: the out-of-time figures model-risk reviewers ask for. The
gates of :class:`credit_batch.config.Gates` decide whether it becomes a
challenger; the registry records the figures, the gate result, the model
card and the events (``model_events``).
"""

from __future__ import annotations

import datetime as dt
import logging

from credit_batch.checks import parse_date
from credit_batch.config import DEFAULT_ALGORITHM, DEFAULT_SEED, Gates, Policy, Settings
from credit_batch.errors import DataError, NoChampionError, ParameterError
from credit_batch.features import FeatureSpec, load_spec
from credit_batch.steps import alternatives, drift, fairness, performance, segments, upstream
from credit_batch.steps.encoding import model_frame
from credit_batch.steps.model_card import write_model_card
from credit_batch.steps.training import DEFAULT_MAX_ROWS, train
from credit_batch.steps.validation import valid_rows
from credit_batch.stores import registry, results, warehouse

__all__ = ["check_gates", "train_candidate", "validate"]

logger = logging.getLogger(__name__)

#: Rows of a big book's snapshot that out-of-time validation reads at most
#: (a seeded sample beyond ``warehouse.READ_WHOLE_ROWS``): enough for AUC to
#: about 0.001, in flat memory.
VALIDATION_ROWS = 1_000_000


def train_candidate(
    settings: Settings,
    *,
    cutoff,
    since=None,
    algorithm: str = DEFAULT_ALGORITHM,
    max_rows: int = DEFAULT_MAX_ROWS,
    seed: int = DEFAULT_SEED,
    spec: FeatureSpec | None = None,
    actor: str | None = None,
    model_name: str | None = None,
    policy: Policy | None = None,
    segment_by: str | None = None,
    segment: str | None = None,
    inventory: dict | None = None,
) -> registry.ModelRecord:
    """Train on matured snapshots before the newest one at ``cutoff``, validate on it, gate.

    Returns the registered record, with ``validation_date``, ``validation``
    (JSON), ``gate_status`` (``passed`` makes it a challenger, ``failed: ...``
    names each failed gate) and ``model_card``. Training the same inputs
    again changes nothing and records no new event. ``model_name``: the model
    it is a candidate of (default: the spec's name), whose champion it meets;
    ``segment``: of a model segmented by ``segment_by``, the segment it is trained,
    validated and gated on (against that segment's champion).
    """
    spec = spec or load_spec(settings.spec_path)
    with warehouse.open_warehouse(settings) as wh:
        cutoff = parse_date(cutoff, name="cutoff")
        valid_date, valid, until = _newest_matured(settings, wh, spec, cutoff)
    record = train(
        settings,
        until=until,
        since=since,
        algorithm=algorithm,
        max_rows=max_rows,
        seed=seed,
        spec=spec,
        model_name=model_name,
        policy=policy,
        segment_by=segment_by,
        segment=segment,
        inventory=inventory,
    )
    return _validate_and_gate(
        settings, record, valid, valid_date, spec=spec, actor=actor, segment=(segment_by, segment)
    )


def register_outside(
    settings: Settings,
    path,
    *,
    cutoff,
    trained_until,
    spec: FeatureSpec | None = None,
    actor: str | None = None,
    model_name: str | None = None,
    policy: Policy | None = None,
    inventory: dict | None = None,
    **_ignored,
) -> registry.ModelRecord:
    """Register a model trained elsewhere (:mod:`credit_batch.steps.outside`), then validate
    and gate it as :func:`train_candidate` does a model it trains.

    ``trained_until``: the newest snapshot the team trained on; the validation snapshot
    (the newest matured one at ``cutoff``) must be later, so the validation is out of
    time. Declared directions the model breaks fail its gates.
    """
    from credit_batch.steps.outside import outside_fitted
    from credit_batch.steps.training import read_training_rows
    from credit_batch.stores.outside import read_outside

    spec = spec or load_spec(settings.spec_path)
    found = read_outside(path)
    until = parse_date(trained_until, name="trained-until date")
    with warehouse.open_warehouse(settings) as wh:
        valid_date, valid, _ = _newest_matured(settings, wh, spec, parse_date(cutoff))
    if until >= valid_date:
        raise ParameterError("trained-until date", until, f"must be before the validation "
                             f"snapshot {valid_date} (validation out of time)")  # fmt: skip
    sample = read_training_rows(settings, spec, until=until, max_rows=REFERENCE_ROWS, seed=0)
    fitted, kind, violations = outside_fitted(found, sample, spec=spec)
    with results.open_results(settings, key_type=spec.key_type) as db:
        record = registry.save_model(
            db, settings, fitted, train_until=until, model_name=model_name, policy=policy,
            inventory=inventory,
        )  # fmt: skip
    source = {"file": str(path), "sha256": found.sha256, "explainer": kind}
    return _validate_and_gate(
        settings, record, valid, valid_date, spec=spec, actor=actor,
        more_failures=[f"directions: {v}" for v in violations], source=source,
    )  # fmt: skip


#: Rows of the training window an outside model is checked on (and its drift reference).
REFERENCE_ROWS = 20_000


def _validate_and_gate(
    settings: Settings, record, valid, valid_date, *, spec, actor, segment=(None, None),
    more_failures=(), source=None,
) -> registry.ModelRecord:  # fmt: skip
    """Validate ``record`` on ``valid`` (of its segment), gate it, write its card, record it."""
    segment_by, segment = segment
    if segment is not None:
        valid = valid[segments.in_segment(valid, segment_by, segment)]
        if valid.empty:
            raise DataError(
                f"segment {segment_by}={segment!r} has no labeled rows on the validation "
                f"snapshot {valid_date}: it cannot be validated out of time",
                segment=segment,
            )
    if record.validation_date == valid_date and record.gate_status:
        return record
    found = validate(settings, record, valid, spec=spec)
    failures = check_gates(found, record.policy_or(settings.policy).gates)  # its own gates
    failures += list(more_failures)
    gate_status = "passed" if not failures else "failed: " + "; ".join(failures)
    card = write_model_card(settings, record, found, gate_status=gate_status, spec=spec)
    with results.open_results(settings) as db, db.transaction():
        registry.set_validation(
            db,
            settings,
            record.model_version,
            validation_date=valid_date,
            validation=found,
            gate_status=gate_status,
            model_card=card,
        )
        _record_training(db, settings, record, found, gate_status, actor=actor, source=source)
        if found.get("fairness"):
            _store_fairness(db, settings, record, found, valid_date)
    logger.info("candidate %s: %s", record.model_version, gate_status)
    with results.open_results(settings, read_only=True) as db:
        return registry.get_model(db, settings, record.model_version)


def _store_fairness(db, settings: Settings, record, found: dict, valid_date) -> None:
    import pyarrow as pa

    head = {"kind": "validation", "snapshot_date": valid_date, "run_id": None}
    head |= {"model_version": record.model_version, "cutoff": found["fairness_cutoff"]}
    rows = [{**head, **r} for r in found["fairness"]]
    results.replace_fairness(
        db, settings, pa.Table.from_pylist(rows, schema=fairness.fairness_schema()),
        kind="validation", snapshot_date=valid_date, model_version=record.model_version,
    )  # fmt: skip


def _record_training(db, settings, record, found: dict, gate_status: str, *, actor, source) -> None:
    actor = actor or registry.default_actor()
    window = {"train_from": str(record.train_from), "train_until": str(record.train_until)}
    window |= {"source": source} if source else {}  # a model trained elsewhere: its file
    registry.record_event(
        db, settings, record.model_version, "registered", actor=actor, details=window
    )
    event = "gates_passed" if gate_status == "passed" else "gates_failed"
    metrics = {k: found[k] for k in ("roc_auc", "ks", "psi", "champion_roc_auc")}
    registry.record_event(
        db, settings, record.model_version, event, actor=actor, reason=gate_status, details=metrics
    )


def _newest_matured(settings: Settings, wh, spec: FeatureSpec, cutoff: dt.date):
    """The newest snapshot at or before ``cutoff`` with outcomes, its valid labeled rows,
    and the snapshot before it (the last one to train on)."""
    dates = sorted((r["snapshot_date"] for r in warehouse.list_snapshots(wh, spec)), reverse=True)
    for date in [d for d in dates if d <= cutoff]:
        frame = valid_rows(_labeled(settings, wh, spec, date), spec=spec)
        if not frame.empty:
            before = [d for d in dates if d < date]
            if not before:
                break
            return date, frame, max(before)
    raise DataError(
        f"out-of-time validation needs two snapshots with known outcomes at or before the "
        f"cutoff {cutoff} (one to train on, the newest to validate on); the warehouse has "
        f"snapshots {', '.join(str(d) for d in sorted(dates)) or 'none'}",
        cutoff=cutoff,
    )


def _labeled(settings: Settings, wh, spec: FeatureSpec, date: dt.date):
    """A snapshot's labeled rows: whole, or a sample of a big book's (with the scores of
    the models the spec reads, where it reads any)."""
    found = warehouse.read_labeled(
        wh, spec.in_warehouse, date, date, sample_rows=VALIDATION_ROWS, seed=0
    )
    if not spec.upstream:
        return found
    return upstream.join_frame(found, spec, upstream.read_scores(settings, spec, [date]))


def validate(settings: Settings, record, frame, *, spec: FeatureSpec) -> dict:
    """Out-of-time figures of ``record``'s model on the labeled rows ``frame``.

    ROC AUC, Gini, KS, log loss, Brier score, calibration by decile, the PSI
    of its scores from training to validation, and the champion's AUC on the
    same snapshot (None without a champion, or when the champion is it).
    """
    model = registry.load_model(
        settings, record.artifact_path, record.sha256, version=record.model_version
    )
    y = frame[spec.target].to_numpy()
    p = model.predict_proba(model_frame(frame, spec))[:, 1]
    reference = (record.reference_bins or {}).get(drift.SCORE)
    psi = None
    if reference is not None:
        psi = drift.psi(reference["expected"], drift.histogram(p, reference["edges"]))
    return {
        **performance.summary(y, p),
        "psi": psi,
        "calibration": performance.calibration_rows(y, p),
        "validation_date": str(frame["snapshot_date"].iloc[0]),
        **_champion_on(settings, record, frame),
        **_fairness_on(settings, record, frame, p, spec=spec),
    }


def _fairness_on(settings: Settings, record, frame, p, *, spec: FeatureSpec) -> dict:
    """The fair-lending rows of the validation snapshot (none where the spec declares no
    fairness attribute): approval rate, AIR, AUC, KS and calibration by group."""
    if not spec.fairness:
        return {}
    attributes = fairness.read_attributes(settings, spec, frame["snapshot_date"].iloc[0])
    cutoff = record.policy_or(settings.policy).swap_cutoff
    rows = fairness.attribute_rows(
        p, frame["customer_id"].to_numpy(), attributes, spec, cutoff=cutoff,
        labels=frame[spec.target].to_numpy(),
    )  # fmt: skip
    return {"fairness": rows, "fairness_cutoff": cutoff}


def _champion_on(settings: Settings, record, frame) -> dict:
    """The champion's version and ROC AUC on the validation snapshot: on ``frame`` when it
    reads the same spec, else on its own spec's rows of that snapshot."""
    try:
        champion = registry.resolve(
            settings, None, model_name=record.model_name, segment=record.segment
        )
    except NoChampionError:
        return {"champion_version": None, "champion_roc_auc": None}
    if champion.model_version == record.model_version:
        return {"champion_version": None, "champion_roc_auc": None}
    spec = champion.feature_spec
    if champion.spec_hash != record.spec_hash:
        date = frame["snapshot_date"].iloc[0]
        with warehouse.open_warehouse(settings) as wh:
            frame = valid_rows(_labeled(settings, wh, spec, date), spec=spec)
        if record.segment is not None:
            frame = frame[segments.in_segment(frame, record.segment_by, record.segment)]
    model = registry.load_model(
        settings, champion.artifact_path, champion.sha256, version=champion.model_version
    )
    p = model.predict_proba(model_frame(frame, spec))[:, 1]
    found = performance.summary(frame[spec.target].to_numpy(), p)
    return {"champion_version": champion.model_version, "champion_roc_auc": found["roc_auc"]}


def check_gates(found: dict, gates: Gates) -> list[str]:
    """The gates ``found`` (from :func:`validate`) fails, each as ``name: value vs bound``."""
    failed = []
    auc, psi, champion = found["roc_auc"], found["psi"], found["champion_roc_auc"]
    if auc is None or auc < gates.min_auc:
        failed.append(f"min_auc: ROC AUC {_fmt(auc)} < {gates.min_auc}")
    if psi is not None and psi > gates.max_psi:
        failed.append(f"max_psi: score PSI {psi:.4f} > {gates.max_psi}")
    if champion is not None and (auc is None or auc < champion - gates.champion_margin):
        failed.append(
            f"champion_margin: ROC AUC {_fmt(auc)} < champion's {champion:.4f} "
            f"- {gates.champion_margin}"
        )
    low = fairness.failed_air(found.get("fairness") or [], gates.min_air)
    if low:
        failed.append(f"min_air: adverse impact ratio {', '.join(low)} < {gates.min_air}")
    return failed


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def alternatives_at(
    settings: Settings,
    *,
    cutoff,
    spec: FeatureSpec,
    policy: Policy | None = None,
    algorithm: str = DEFAULT_ALGORITHM,
    seed: int = DEFAULT_SEED,
    max_rows: int = DEFAULT_MAX_ROWS,
    top: int = alternatives.DEFAULT_TOP,
    **_ignored,
) -> dict:
    """:func:`credit_batch.steps.alternatives.search_alternatives` on the rows a candidate
    trained at ``cutoff`` would train and validate on (see :func:`train_candidate`).

    Returns the validation date, the cutoff of the policy and the variants.
    """
    from credit_batch.steps.training import read_training_rows

    with warehouse.open_warehouse(settings) as wh:
        valid_date, valid, until = _newest_matured(settings, wh, spec, parse_date(cutoff))
    train = read_training_rows(settings, spec, until=until, max_rows=max_rows, seed=seed)
    attributes = fairness.read_attributes(settings, spec, valid_date)
    groups = fairness.groups_of(valid["customer_id"].to_numpy(), attributes, spec)
    decide = (policy or settings.policy).swap_cutoff
    variants = alternatives.search_alternatives(
        train, valid, groups, spec=spec, algorithm=algorithm, seed=seed, cutoff=decide, top=top
    )
    return {"validation_date": valid_date, "cutoff": decide, "variants": variants}
