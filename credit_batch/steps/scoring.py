"""Score one Parquet partition in chunks, with lineage on every row.

Memory is bounded by ``chunk_rows``, not by the partition: record batches
stream from the feature file through the model into the score file.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from credit_batch.config import (
    DEFAULT_DESCRIBE_ROWS,
    DEFAULT_RISK_BANDS,
    DEFAULT_SCORECARD,
    Policy,
    Scorecard,
    Settings,
)
from credit_batch.errors import DataError, SchemaMismatchError
from credit_batch.faults import fault_point
from credit_batch.features import FeatureSpec, default_spec
from credit_batch.run import Run
from credit_batch.steps import adverse_action, segments
from credit_batch.steps.drift import SCORE, counts_of
from credit_batch.steps.encoding import model_frame
from credit_batch.steps.explain import N_REASONS, explain, top_reasons
from credit_batch.steps.validation import describe_invalid, invalid_rows, other_category_rows
from credit_batch.storage import Location, location
from credit_batch.stores import lake, registry
from credit_batch.stores.lake import atomic_path

__all__ = [
    "quarantine_schema",
    "points",
    "risk_bands",
    "score_batch",
    "score_file",
    "score_partition",
    "scores_schema",
    "thread_limit",
]

logger = logging.getLogger(__name__)


def scores_schema(key=None):
    """Arrow schema of a scored partition (the ``predictions`` columns).

    ``key``: the Arrow type of ``customer_id`` (default int64; a spec's ``key_arrow``).
    """
    import pyarrow as pa

    labels = pa.dictionary(pa.int32(), pa.string())
    return pa.schema(
        [
            ("snapshot_date", pa.date32()),
            ("customer_id", key or pa.int64()),
            ("model_version", labels),
            ("run_id", labels),
            ("score", pa.float64()),
            ("risk_band", labels),
            ("points", pa.float64()),
            *[
                field
                for i in range(1, N_REASONS + 1)
                for field in ((f"reason_{i}", labels), (f"reason_{i}_value", pa.float64()))
            ],
        ]
    )


def _dictionary_columns() -> list[str]:
    """Columns of a scored partition that Parquet should dictionary-encode.

    The labels (already dictionaries in Arrow) and the date; not the floats,
    whose dictionaries are built and thrown away (a third of the write time).
    """
    import pyarrow as pa

    schema = scores_schema()
    return ["snapshot_date", *(f.name for f in schema if pa.types.is_dictionary(f.type))]


def risk_bands(scores: np.ndarray, bands=DEFAULT_RISK_BANDS):
    """Band label of each score: the first band whose upper bound is >= the score.

    Returns a dictionary-encoded ``pyarrow`` array (no Python string per row).
    """
    import pyarrow as pa

    bounds = np.array([b for b, _ in bands])
    index = np.minimum(np.searchsorted(bounds, scores, side="left"), len(bands) - 1)
    return pa.DictionaryArray.from_arrays(
        pa.array(index.astype(np.int32)), pa.array([label for _, label in bands])
    )


def points(scores: np.ndarray, scorecard: Scorecard = DEFAULT_SCORECARD) -> np.ndarray:
    """Scorecard points of each probability of default (:class:`~credit_batch.config.Scorecard`).

    Probabilities are clipped to [1e-15, 1 - 1e-15], so 0 and 1 give finite points.
    """
    p = np.clip(np.asarray(scores, dtype=np.float64), 1e-15, 1.0 - 1e-15)
    return scorecard.offset + scorecard.factor * (np.log1p(-p) - np.log(p))


def _constant(value: str, n: int):
    import pyarrow as pa

    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array([value]))


def quarantine_schema(key=None):
    """Arrow schema of a partition's quarantined rows (the ``quarantine`` columns)."""
    import pyarrow as pa

    return pa.schema(
        [
            ("snapshot_date", pa.date32()),
            ("customer_id", key or pa.int64()),
            ("model_version", pa.string()),
            ("run_id", pa.string()),
            ("reason", pa.string()),
            ("offending_values", pa.string()),
        ]
    )


def score_file(
    features_path: Location | Path,
    out_path: Location | Path,
    model,
    *,
    feature_names: list[str],
    model_version: str,
    run_id: str,
    chunk_rows: int,
    quarantine_path: Location | Path | None = None,
    spec: FeatureSpec | None = None,
    duplicate_ids=(),
    background: list[float] | None = None,
    drift_reference: dict | None = None,
    bands=DEFAULT_RISK_BANDS,
    scorecard: Scorecard = DEFAULT_SCORECARD,
    describe_rows: int = DEFAULT_DESCRIBE_ROWS,
    segmented=None,
    cutoff: float | None = None,
    adverse_path: Location | Path | None = None,
) -> dict:
    """Validate and score a feature partition; return ``rows_scored``, ``rows_quarantined``.

    Parameters
    ----------
    features_path : Location or Path
        An extracted partition (a lake location, or a local path) with
        ``snapshot_date``, ``customer_id``, the spec's features and every
        column of ``feature_names``.
    out_path : Path
        The scored partition, written atomically.
    model : estimator with ``predict_proba``
        The fitted pipeline, taking a frame of ``feature_names``.
    chunk_rows : int
        Rows per record batch validated and pushed through the model.
    quarantine_path : Path, optional
        Where rows that break the spec's rules go (written atomically, maybe
        empty); default: beside ``out_path`` as ``*.quarantine.parquet``.
    duplicate_ids : collection of int
        Customer ids repeated in the snapshot (quarantined, never scored).
    background : list of float, optional
        The linear model's explainer background (see :mod:`credit_batch.steps.explain`).
    drift_reference : dict, optional
        Training-time bins (see :mod:`credit_batch.steps.drift`); the scored rows are
        counted into them, for PSI.
    describe_rows : int
        Invalid rows collected before they are described into the quarantine
        (one description per partition as a rule: the quarantine's memory bound).
    segmented : Run, optional
        A segmented model's run: only the rows of its segment are read (and the
        rows no champion covers, where it carries them: scored by the pooled
        version, else quarantined with that reason; :mod:`credit_batch.steps.segments`).
    cutoff : float, optional
        The policy's cutoff: the principal reasons of each row scored above it
        are written to ``adverse_path`` (:mod:`credit_batch.steps.adverse_action`;
        default: beside ``out_path`` as ``*.adverse.parquet``). None: not written.

    Returns
    -------
    dict
        ``rows_scored``, ``rows_quarantined``, ``shap_abs_sum`` (the sum of
        absolute SHAP values per feature over the scored rows) and
        ``drift_counts`` (per reference bin) and, with a cutoff, ``rows_declined``.
    """
    spec = default_spec() if spec is None else spec
    import pyarrow.parquet as pq

    features_path, out_path = _located(features_path), _located(out_path)
    source = _open_parquet(features_path)
    columns = list(dict.fromkeys(["snapshot_date", "customer_id", *spec.names, *feature_names]))
    _check_columns(source, columns, features_path)
    qpath = _located(
        quarantine_path
        or out_path.with_name(out_path.name.removesuffix(".parquet") + ".quarantine.parquet")
    )
    counts = {"rows_scored": 0, "rows_quarantined": 0, "rows_other_category": 0}
    counts["rows_uncovered"] = 0  # quarantined: their segment has no champion
    adverse = None if cutoff is None else _Adverse(spec, out_path, adverse_path, cutoff)
    shap_abs = np.zeros(len(feature_names))
    reference = drift_reference or {}
    bins = {name: np.zeros(len(ref["expected"])) for name, ref in reference.items()}
    job = _Job(
        model,
        feature_names,
        spec,
        frozenset(duplicate_ids),
        model_version,
        run_id,
        bands,
        background,
        scorecard,
        segmented,
    )
    with (
        atomic_path(out_path) as tmp,
        atomic_path(qpath) as qtmp,
        tmp.open_output() as sink,
        qtmp.open_output() as qsink,
        pq.ParquetWriter(
            sink, scores_schema(spec.key_arrow), use_dictionary=_dictionary_columns()
        ) as writer,
        pq.ParquetWriter(qsink, quarantine_schema(spec.key_arrow)) as qwriter,
        _maybe(adverse) as awriter,
    ):
        rejected, snapshot = [], None
        for batch in _batches(source, features_path, chunk_rows, columns):
            batch, outside = _segment_rows(job, batch)
            if outside is not None and outside.num_rows:
                qwriter.write_batch(_uncovered(job, outside))
                counts["rows_quarantined"] += outside.num_rows
                counts["rows_uncovered"] += outside.num_rows
            scored, invalid, contributions, valid, other = _score_batch(job, batch)
            counts["rows_other_category"] += other
            shap_abs += np.abs(contributions).sum(axis=0)
            _count_bins(bins, reference, scored, valid)
            writer.write_batch(scored)
            if awriter is not None:
                awriter.write(job, scored, contributions, valid)
            if len(invalid):
                rejected.append(invalid)
                snapshot = snapshot or batch.column("snapshot_date")[0]
            counts["rows_scored"] += scored.num_rows
            counts["rows_quarantined"] += len(invalid)
            if sum(map(len, rejected)) >= describe_rows:  # memory stays bounded
                qwriter.write_batch(_quarantined(job, rejected, snapshot))
                rejected = []
            fault_point("score.after_first_chunk")
        if rejected:
            qwriter.write_batch(_quarantined(job, rejected, snapshot))
    logger.info("scored %(rows_scored)d rows, quarantined %(rows_quarantined)d", counts)
    if adverse is not None:
        counts["rows_declined"] = adverse.declined
    return {
        **counts,
        "shap_abs_sum": shap_abs.tolist(),
        "drift_counts": {name: b.tolist() for name, b in bins.items()},
        "points_scale": [scorecard.base_points, scorecard.base_odds, scorecard.pdo],
    }


class _Adverse:
    """The adverse-action rows of a partition, written as its chunks are scored."""

    def __init__(self, spec: FeatureSpec, out: Location, path, cutoff: float):
        self.spec, self.cutoff, self.declined = spec, cutoff, 0
        default = out.with_name(out.name.removesuffix(".parquet") + ".adverse.parquet")
        self.path = _located(path or default)
        self.texts = spec.reasons

    @contextmanager
    def writing(self):
        import pyarrow.parquet as pq

        schema = adverse_action.adverse_action_schema(self.spec.key_arrow)
        labels = ["snapshot_date", "model_version", "run_id", "feature", "reason_text"]
        with (
            atomic_path(self.path) as tmp,
            tmp.open_output() as sink,
            # dictionaries for the labels only (a float's is built and thrown away), and no
            # statistics (the load reads the whole file): a third of the write time
            pq.ParquetWriter(
                sink, schema, use_dictionary=[*labels, "reason_rank", "cutoff"],
                write_statistics=False,
            ) as self._writer,
        ):  # fmt: skip
            yield self

    def write(self, job: _Job, scored, contributions: np.ndarray, valid) -> None:
        scores = scored.column("score").to_numpy()
        self.declined += int((scores > self.cutoff).sum())
        rows = adverse_action.principal_reasons(
            valid,
            scores,
            contributions,
            feature_names=job.feature_names,
            texts=self.texts,
            cutoff=self.cutoff,
            model_version=job.model_version,
            run_id=job.run_id,
        )
        self._writer.write_table(rows)


@contextmanager
def _maybe(adverse: _Adverse | None):
    if adverse is None:
        yield None
    else:
        with adverse.writing() as writer:
            yield writer


def _count_bins(bins: dict, reference: dict, scored, valid) -> None:
    """Add the scored rows of a chunk (``valid``: their features) to the drift bins."""
    if not bins or scored.num_rows == 0:
        return
    for name, ref in reference.items():
        column = scored.column("score") if name == SCORE else valid.column(name)
        if "edges" in ref:  # numbers: numpy; categories stay Arrow (no Python strings)
            column = column.to_numpy(zero_copy_only=False)
        bins[name] += counts_of(column, ref)


def _check_columns(source, columns: list[str], path: Path) -> None:
    missing = [c for c in columns if c not in source.schema_arrow.names]
    if missing:
        raise SchemaMismatchError(f"partition {path} lacks the columns {missing}", missing=missing)


def _batches(source, path: Path, chunk_rows: int, columns: list[str]):
    import pyarrow as pa

    try:
        yield from source.iter_batches(batch_size=chunk_rows, columns=columns)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"cannot read partition {path}: {exc}", path=str(path)) from exc


@dataclass(frozen=True)
class _Job:
    """What every chunk of a partition is scored with."""

    model: object
    feature_names: list[str]
    spec: FeatureSpec
    duplicate_ids: frozenset
    model_version: str
    run_id: str
    bands: tuple
    background: list[float] | None
    scorecard: Scorecard = DEFAULT_SCORECARD
    segmented: object = None  # a segmented model's Run: which rows it reads


def _segment_rows(job: _Job, batch):
    """The rows of ``batch`` the job scores, and those it quarantines as uncovered (or None)."""
    import pyarrow.compute as pc

    if job.segmented is None:
        return batch, None
    keep, uncovered = segments.row_masks(batch, job.segmented)
    batch = batch.filter(keep)
    if uncovered is None or job.segmented.segment is None:  # the pooled run scores them
        return batch, None
    return batch.filter(pc.invert(uncovered)), batch.filter(uncovered)


def _uncovered(job: _Job, outside):
    """Quarantine rows whose segment has no champion tonight, with that reason."""
    import pyarrow as pa
    import pyarrow.compute as pc

    run, k = job.segmented, outside.num_rows
    values = pc.fill_null(pc.cast(outside.column(run.segment_by), pa.string()), "").to_pylist()
    described = [segments.uncovered_reason(run.model_name, run.segment_by, v) for v in values]
    return pa.record_batch(
        [
            outside.column("snapshot_date"),
            outside.column("customer_id"),
            pa.array([job.model_version] * k, pa.string()),
            pa.array([job.run_id] * k, pa.string()),
            pa.array([r for r, _ in described], pa.string()),
            pa.array([o for _, o in described], pa.string()),
        ],
        schema=quarantine_schema(job.spec.key_arrow),
    )


def _score_batch(job: _Job, batch):
    """Split one batch into scored rows (with reasons) and rows to quarantine.

    Returns the scored batch, the invalid rows (a frame, described once per
    partition by :func:`_quarantined`), the SHAP contributions and the valid
    rows' input batch (the features the scored rows came from) and how many
    of them hold an undeclared category scored as "other".
    """
    import pyarrow as pa

    frame = batch.to_pandas()
    invalid = invalid_rows(frame, spec=job.spec, duplicate_ids=job.duplicate_ids)
    rejected = frame[invalid]
    if invalid.any():  # convert again: the same memory layout as a clean chunk
        batch = batch.filter(pa.array(~invalid))
        frame = batch.to_pandas()
    n = batch.num_rows
    scores, contributions = np.empty(0), np.zeros((0, len(job.feature_names)))
    if n:
        scores, contributions, _ = explain(
            job.model, model_frame(frame, job.spec)[job.feature_names], background=job.background
        )
    scored = pa.record_batch(
        [
            batch.column("snapshot_date"),
            batch.column("customer_id"),
            _constant(job.model_version, n),
            _constant(job.run_id, n),
            pa.array(scores, pa.float64()),
            risk_bands(scores, job.bands),
            pa.array(points(scores, job.scorecard), pa.float64()),
            *top_reasons(contributions, job.feature_names),
        ],
        schema=scores_schema(job.spec.key_arrow),
    )
    other = other_category_rows(frame, job.spec) if job.spec.categorical else 0
    return scored, rejected, contributions, batch, other


def score_batch(
    model,
    batch,
    *,
    spec: FeatureSpec,
    feature_names: list[str],
    model_version: str,
    policy: Policy,
    background=None,
    run_id: str = "online",
):
    """Score one record batch as a scoring task scores each chunk (online scoring).

    Returns the scored rows (the ``predictions`` columns) and the rows that
    break the spec's rules (a frame, for ``describe_invalid``).
    """
    job = _Job(
        model,
        feature_names,
        spec,
        frozenset(),
        model_version,
        run_id,
        policy.risk_bands,
        None if background is None else list(background),
        policy.scorecard,
    )
    scored, rejected, _, _, _ = _score_batch(job, batch)
    return scored, rejected


def _quarantined(job: _Job, frames: list, snapshot):
    """Invalid rows (non-empty frames) with their reasons: one pandera call for them all."""
    import pandas as pd
    import pyarrow as pa

    rejected = describe_invalid(
        pd.concat(frames, ignore_index=True), spec=job.spec, duplicate_ids=job.duplicate_ids
    )
    k = len(rejected)
    return pa.record_batch(
        [
            pa.repeat(snapshot, k),
            pa.array(rejected["customer_id"].to_numpy(), job.spec.key_arrow),
            pa.array([job.model_version] * k, pa.string()),
            pa.array([job.run_id] * k, pa.string()),
            pa.array(rejected["reason"].tolist(), pa.string()),
            pa.array(rejected["offending_values"].tolist(), pa.string()),
        ],
        schema=quarantine_schema(job.spec.key_arrow),
    )


def _located(path: Location | Path | str) -> Location:
    return path if isinstance(path, Location) else location(path)


def _open_parquet(path: Location):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # pre_buffer caches every row group read until the file is closed: memory
        # would grow with the partition (20M rows: +500 MiB), not with the chunk.
        return pq.ParquetFile(path.open_input(), pre_buffer=False)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"cannot read partition {path}: {exc}", path=str(path)) from exc


def score_partition(settings: Settings, run: Run, partition: dict) -> dict:
    """Validate and score one extracted partition of a run; return its paths and counts.

    A partition already scored by this run from the same input file (a task
    retry after a crash later on) is reused, not recomputed: its manifest
    records the input's and outputs' sha256, and all three must still match.
    """
    t0 = time.perf_counter()
    outputs = lake.partition_outputs(
        settings.lake, run.snapshot_date, run.model_version, run.run_id, partition["index"]
    )
    key = {
        "input_sha256": settings.lake.at(partition["path"]).sha256(),
        "model_sha256": run.sha256,
        "run_id": run.run_id,
        "chunk_rows": run.chunk_rows,
        "duplicate_ids": list(run.duplicate_ids),
        "points_scale": [
            run.policy.scorecard.base_points,
            run.policy.scorecard.base_odds,
            run.policy.scorecard.pdo,
        ],
        "rows": [run.segment_by, run.segment, run.covered and list(run.covered)],
        "cutoff": run.policy.swap_cutoff,
    }
    counts = lake.reusable_counts(outputs, key)
    if counts is None:
        with thread_limit(settings.score_threads):
            counts = _score_into(settings, run, partition, outputs)
        fault_point("score.before_manifest")
        lake.write_manifest(outputs[0], {**key, **counts, **lake.output_digests(outputs)})
        fault_point("score.after_manifest")
    out, quarantine, adverse = outputs
    return {
        "index": partition["index"],
        "path": out.uri,
        "quarantine_path": quarantine.uri,
        "adverse_path": adverse.uri,
        "rows_in": segments.rows_of(
            partition, segment_by=run.segment_by, segment=run.segment, covered=run.covered
        ),
        **counts,
        "seconds": time.perf_counter() - t0,
    }


def _score_into(settings: Settings, run: Run, partition: dict, outputs: tuple) -> dict:
    model = registry.load_model(settings, run.artifact_path, run.sha256, version=run.model_version)
    with settings.lake.at(partition["path"]).local_copy() as features:
        return _score_local(settings, run, features, model, outputs)


def _score_local(settings: Settings, run: Run, features: Path, model, outputs: tuple) -> dict:
    out, quarantine, adverse = outputs
    return score_file(
        features,
        out,
        model,
        feature_names=list(run.features),
        model_version=run.model_version,
        run_id=run.run_id,
        chunk_rows=run.chunk_rows,
        quarantine_path=quarantine,
        spec=run.spec,
        duplicate_ids=frozenset(run.duplicate_ids),
        background=None if run.explainer_background is None else list(run.explainer_background),
        drift_reference=run.drift_reference,
        bands=run.policy.risk_bands,  # the version's policy, not this worker's environment
        scorecard=run.policy.scorecard,
        describe_rows=settings.describe_rows,
        segmented=run if run.segment_by else None,
        cutoff=run.policy.swap_cutoff,  # the version's: who is declined
        adverse_path=adverse,
    )


@contextmanager
def thread_limit(threads: int):
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
