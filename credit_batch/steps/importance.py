"""Permutation importance of the model's features on a labeled sample.

How much does the model's ROC AUC drop when one feature's values are
shuffled? scikit-learn's :func:`sklearn.inspection.permutation_importance`
does the work; this module picks the sample and shapes the result as rows
of ``feature_importance``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from credit_batch.errors import ParameterError
from credit_batch.sampling import sample_batches
from credit_batch.steps import segments, upstream
from credit_batch.steps.encoding import model_frame
from credit_batch.steps.validation import valid_rows
from credit_batch.stores import lake, warehouse

if TYPE_CHECKING:
    from credit_batch.config import Settings
    from credit_batch.run import Run

__all__ = [
    "METHOD",
    "METRIC",
    "UNLABELED_METHOD",
    "UNLABELED_METRIC",
    "dependence_rows",
    "labeled_rows",
    "partial_dependence_frame",
    "permutation_importance_frame",
    "labeled_sample",
    "lake_sample",
    "sample_batches",
    "sample_rows",
    "slice_rows",
    "unlabeled_importance_frame",
    "unlabeled_rows",
]

logger = logging.getLogger(__name__)

METHOD = "permutation"
METRIC = "roc_auc"
#: Label-free: how far the score moves (mean |change|) when a feature is shuffled.
UNLABELED_METHOD = "permutation_unlabeled"
UNLABELED_METRIC = "mean_abs_score_change"


def lake_sample(settings: Settings, run: Run, *, seed: int):
    """The valid rows of a sample of the run's extracted snapshot (see :func:`sample_batches`)."""
    import pyarrow as pa

    schema = run.spec.arrow_schema()
    batches = lake.iter_features(
        settings.lake, run.snapshot_date, schema, feature_set=run.spec.feature_set
    )
    batches = segments.scored_batches(batches, run)  # a segment's rows, of a segmented model
    sample = _valid_sample(batches, schema, run, seed)
    # The scan's decoded pages go back to the OS before the warehouse query runs:
    # Arrow's allocator keeps freed memory for reuse (300 MB at 20M rows).
    pa.default_memory_pool().release_unused()
    return sample


def labeled_sample(settings: Settings, run: Run, customers: list, *, seed: int):
    """The valid labeled rows of ``customers`` (the lake's sample) in the warehouse."""
    spec, date = run.spec, run.snapshot_date
    scores = upstream.read_scores(settings, spec, [date])  # other models' scores it reads
    with warehouse.open_warehouse(settings) as wh:
        batches = warehouse.stream_labeled(wh, spec.in_warehouse, date, date, customers=customers)
        if spec.upstream:
            batches = upstream.join_batches(batches, spec, scores, with_target=True)
        return _valid_sample(batches, spec.arrow_schema(with_target=True), run, seed)


def _valid_sample(batches, schema, run: Run, seed: int):
    """A tenth more rows than the importance sample (room for the rows validation drops)."""
    n = run.importance_sample_rows
    table = sample_batches(batches, n=n + n // 10 + 100, seed=seed)
    frame = (schema.empty_table() if table is None else table).to_pandas()
    return valid_rows(frame, spec=run.spec)


def sample_rows(frame, *, n: int, seed: int):
    """A reproducible random sample of at most ``n`` rows of ``frame``."""
    if n < 1:
        raise ParameterError("importance sample rows", n, "must be at least 1")
    if len(frame) <= n:
        return frame
    return frame.sample(n=n, random_state=seed)


def permutation_importance_frame(
    model, x, y, *, n_repeats: int = 5, seed: int = 0, scoring: str = METRIC
):
    """Importance of each column of ``x`` by permutation, most important first.

    Parameters
    ----------
    model : fitted estimator with ``predict_proba``
    x : pandas.DataFrame
        Features, the model's columns.
    y : array-like
        Binary labels; both classes must occur.
    n_repeats : int
        Shuffles per feature.
    seed : int
        Seed of the shuffles.

    Returns
    -------
    pandas.DataFrame
        Columns ``feature``, ``importance_rank`` (1 = most important),
        ``importance_mean``, ``importance_std``, ``baseline_score``.
    """
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import get_scorer

    if n_repeats < 1:
        raise ParameterError("importance repeats", n_repeats, "must be at least 1")
    if np.unique(np.asarray(y)).size < 2:
        raise ParameterError(
            "importance labels", np.unique(np.asarray(y)).tolist(), "must contain both classes"
        )
    result = permutation_importance(
        model, x, y, scoring=scoring, n_repeats=n_repeats, random_state=seed, n_jobs=1
    )
    return _ranked(x, result, baseline=float(get_scorer(scoring)(model, x, y)))


def _ranked(x, result, *, baseline: float):
    """One row per column of ``x``, most important first."""
    import pandas as pd

    frame = pd.DataFrame(
        {
            "feature": list(x.columns),
            "importance_mean": result.importances_mean,
            "importance_std": result.importances_std,
        }
    ).sort_values("importance_mean", ascending=False, kind="stable")
    frame.insert(1, "importance_rank", np.arange(1, len(frame) + 1, dtype=np.int32))
    frame["baseline_score"] = baseline
    return frame.reset_index(drop=True)


def unlabeled_importance_frame(model, x, *, n_repeats: int = 5, seed: int = 0):
    """Importance without labels: mean absolute change of the score when a column is shuffled.

    Labels arrive months after a score; this needs none. scikit-learn's
    ``permutation_importance`` makes the shuffles (its seeds, its order), with the
    model's own scores as the target, so the baseline is 0 and a feature's
    importance is the mean |score change|; the shuffled copies are then scored in
    batches of about :data:`_CURVE_ROWS` rows instead of one model call per shuffle
    (5 repeats x 5 features were 25 calls, each paying the pipeline's fixed cost:
    most of a small segment's importance step).

    Returns the same columns as :func:`permutation_importance_frame`.
    """
    from sklearn.inspection import permutation_importance
    from sklearn.utils import Bunch

    if n_repeats < 1:
        raise ParameterError("importance repeats", n_repeats, "must be at least 1")
    reference = model.predict_proba(x)[:, 1]
    shuffles = []  # each call after the baseline: one shuffle of one column, in order

    def keep(_model, permuted, _y) -> float:
        column = (len(shuffles) - 1) // n_repeats if shuffles else None
        shuffles.append(None if column is None else permuted.iloc[:, column].to_numpy(copy=True))
        return 0.0

    permutation_importance(
        model, x, reference, scoring=keep, n_repeats=n_repeats, random_state=seed, n_jobs=1
    )
    changes = _shuffled_changes(model, x, reference, shuffles[1:], n_repeats)
    result = Bunch(importances_mean=changes.mean(axis=1), importances_std=changes.std(axis=1))
    return _ranked(x, result, baseline=0.0)


def _shuffled_changes(model, x, reference, shuffles: list, n_repeats: int) -> np.ndarray:
    """Mean |score change| of each shuffle (features x repeats), copies scored in batches;
    a column with one value (a segment's own segment column) moves nothing: 0, unscored."""
    constant = x.nunique(dropna=False).to_numpy() <= 1  # a segment's own column: no change
    moving = [k for k in range(len(shuffles)) if not constant[k // n_repeats]]
    out = np.zeros(len(shuffles))
    if moving:
        changes = [(x.columns[k // n_repeats], shuffles[k]) for k in moving]
        out[moving] = np.abs(_scored_copies(model, x, changes) - reference).mean(axis=1)
    return out.reshape(x.shape[1], n_repeats)


def partial_dependence_frame(
    model, x, features: list[str], *, grid_points: int = 20, levels: dict | None = None
):
    """Partial dependence of the score on each of ``features``, with ICE percentiles.

    What scikit-learn's ``partial_dependence`` (``kind="both"``, brute) computes on
    the sample ``x``, with the grid's copies of the sample scored in batches of
    about :data:`_CURVE_ROWS` rows rather than one model call per grid value (each
    call pays the pipeline's fixed cost: 20 grid values x 3 features were 60 calls
    per run, most of a segment's importance step); the grid is the feature's
    distinct values when there are few, else its
    5th..95th percentiles, ignoring missing values. A categorical feature (a key
    of ``levels``, mapping it to its declared levels) gets one bar per level;
    ``x`` is the model's input (:func:`~credit_batch.steps.encoding.model_frame`).

    Returns
    -------
    pandas.DataFrame
        ``feature``, ``grid_index``, ``grid_value`` (a level's index for a
        categorical feature), ``grid_label`` (the level, else None), ``average`` (mean score),
        ``ice_p10``, ``ice_p50``, ``ice_p90`` (percentiles of the per-row curves).
    """
    import pandas as pd

    frames = []
    levels = levels or {}
    for name in features:
        categorical = name in levels
        values = x[name].to_numpy(dtype=float)  # a categorical: level indexes (model_frame)
        grid = (
            np.arange(len(levels[name]), dtype=float) if categorical else _grid(values, grid_points)
        )
        ice = _curves(model, x, name, grid)  # rows x grid values
        p10, p50, p90 = np.percentile(ice, [10, 50, 90], axis=0)
        index = np.arange(len(grid), dtype=np.int32)
        frames.append(
            pd.DataFrame(
                {
                    "feature": name,
                    "grid_index": index,
                    # a level is a bar: its index, and its name in grid_label
                    "grid_value": index.astype(float) if categorical else grid,
                    "grid_label": pd.Series(
                        list(levels[name]) if categorical else [None] * len(grid), dtype=object
                    ),
                    "average": ice.mean(axis=0),
                    "ice_p10": p10,
                    "ice_p50": p50,
                    "ice_p90": p90,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


#: Rows per model call when the grid's copies of a sample are scored together.
_CURVE_ROWS = 100_000


def _curves(model, x, name: str, grid: np.ndarray) -> np.ndarray:
    """The score of every row of ``x`` with ``name`` set to each grid value (ICE curves):
    an array of rows x grid values."""
    return _scored_copies(model, x, [(name, np.full(len(x), value)) for value in grid]).T


def _scored_copies(model, x, changes: list) -> np.ndarray:
    """The scores of copies of ``x``, one per ``(column, values)`` of ``changes`` with that
    column set to the values (cast to its type): copies x rows, scored about
    :data:`_CURVE_ROWS` rows a model call rather than one call per copy."""
    import pandas as pd

    per_call = max(1, _CURVE_ROWS // max(len(x), 1))
    out = np.empty((len(changes), len(x)))
    for start in range(0, len(changes), per_call):
        chunk, copies = changes[start : start + per_call], []
        for column, values in chunk:
            copy = x.copy()
            copy[column] = np.asarray(values).astype(x[column].dtype, copy=False)
            copies.append(copy)
        scores = model.predict_proba(pd.concat(copies, ignore_index=True))[:, 1]
        out[start : start + len(chunk)] = scores.reshape(len(chunk), len(x))
    return out


def _grid(values: np.ndarray, points: int) -> np.ndarray:
    present = values[~np.isnan(values)]
    distinct = np.unique(present)
    if distinct.size <= points:
        return distinct
    return np.unique(np.percentile(present, np.linspace(5, 95, points)))


def slice_rows(frame, run: Run, *, method: str, metric: str, rows: int):
    """Rows of ``feature_importance`` for one method of a run, from a ranked frame."""
    import pyarrow as pa

    frame = frame.assign(
        run_id=run.run_id,
        snapshot_date=run.snapshot_date,
        model_version=run.model_version,
        method=method,
        metric=metric,
        n_repeats=run.importance_repeats,
        sample_rows=rows,
    )
    return pa.Table.from_pandas(frame, preserve_index=False)


def dependence_rows(model, sample, run: Run, features: list[str], *, max_rows: int = 5_000):
    """Rows of ``partial_dependence``: the score on ``features``, over at most ``max_rows``."""
    import pyarrow as pa

    rows = model_frame(sample, run.spec)[list(run.features)].iloc[:max_rows]
    spec = run.spec
    levels = {n: spec.feature(n).categories for n in features if n in spec.categorical}
    frame = partial_dependence_frame(model, rows, features, levels=levels).assign(
        snapshot_date=run.snapshot_date,
        model_version=run.model_version,
        run_id=run.run_id,
        sample_rows=len(rows),
    )
    return pa.Table.from_pandas(frame, preserve_index=False)


def unlabeled_rows(model, valid, run: Run, *, seed: int) -> tuple[dict, object]:
    """Label-free importance and partial dependence of a run, on a sample of its valid rows.

    Returns ``({UNLABELED_METHOD: rows of feature_importance}, rows of
    partial_dependence)``; the dependence is on the three most important features.
    """
    sample = sample_rows(valid, n=run.importance_sample_rows, seed=seed)
    frame = unlabeled_importance_frame(
        model,
        model_frame(sample, run.spec)[list(run.features)],
        n_repeats=run.importance_repeats,
        seed=seed,
    )
    table = slice_rows(
        frame, run, method=UNLABELED_METHOD, metric=UNLABELED_METRIC, rows=len(sample)
    )
    top = frame["feature"].tolist()[:3]
    return {UNLABELED_METHOD: table}, dependence_rows(model, sample, run, top)


def labeled_rows(model, labeled, run: Run, *, target: str, seed: int):
    """Rows of ``feature_importance`` by ROC AUC drop, or None where outcomes are not known."""
    if not len(labeled) or labeled[target].nunique() != 2:
        return None
    sample = sample_rows(labeled, n=run.importance_sample_rows, seed=seed)
    frame = permutation_importance_frame(
        model,
        model_frame(sample, run.spec)[list(run.features)],
        sample[target].to_numpy(),
        n_repeats=run.importance_repeats,
        seed=seed,
    )
    return slice_rows(frame, run, method=METHOD, metric=METRIC, rows=len(sample))
