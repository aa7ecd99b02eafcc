"""Adverse-action reasons: the principal reasons of each decline, for its notice.

Regulation B (12 CFR 1002.9) requires a lender that declines an applicant to
state the specific, principal reasons; the CFPB's circulars 2022-03 and
2023-03 say a complex model earns no exemption, and the regulation's
commentary that more than four reasons are unlikely to help.

A model version **declines** a customer whose score is above its policy's
cutoff (:attr:`credit_batch.config.Policy.swap_cutoff`: a score at or below it
is accepted). The reasons of a decline are the features with the largest
positive contributions to its log-odds of default (the SHAP values the
scoring step computes for every row, :mod:`credit_batch.steps.explain`):

- at most :data:`MAX_REASONS` (four), ranked by contribution, ties to the
  feature first in the model's order; a feature that pushed the score down
  is never a reason;
- each with the text of the version's own spec and the value that led to it
  (as text, NULL where the value was missing);
- only the model's features: a spec's testing-only attributes never reach
  the model, so never a notice.

The rows are computed in the scoring step from the same contributions as the
``predictions`` reason codes, written beside the scored partition and loaded
in the load's transaction (the ``adverse_action`` table): a decline and its
reasons are stored together or not at all. Equal inputs give equal reasons:
the contributions of a version's model are a pure function of the row, the
ranking is a stable sort, and values are cast to text by Arrow (shortest
round-trip form of a float), not by locale-dependent formatting.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MAX_REASONS", "adverse_action_schema", "principal_reasons"]

#: Reasons stated per decline at most (Reg B commentary: more are unlikely to help).
MAX_REASONS = 4


def adverse_action_schema(key=None):
    """Arrow schema of a partition's adverse-action rows (the ``adverse_action`` columns).

    ``key``: the Arrow type of ``customer_id`` (default int64; a spec's ``key_arrow``).
    """
    import pyarrow as pa

    labels = pa.dictionary(pa.int32(), pa.string())  # a few distinct texts: no string per row
    return pa.schema(
        [
            ("snapshot_date", pa.date32()),
            ("customer_id", key or pa.int64()),
            ("model_version", labels),
            ("run_id", labels),
            ("score", pa.float64()),
            ("cutoff", pa.float64()),
            ("reason_rank", pa.int32()),
            ("feature", labels),
            ("reason_text", labels),
            ("contribution", pa.float64()),
            ("value", pa.float64()),
            ("category", pa.string()),
        ]
    )


def principal_reasons(
    batch,
    scores: np.ndarray,
    contributions: np.ndarray,
    *,
    feature_names: list[str],
    texts: dict[str, str],
    cutoff: float,
    model_version: str,
    run_id: str,
    k: int = MAX_REASONS,
):
    """The adverse-action rows of the declined rows of one scored batch.

    Parameters
    ----------
    batch : pyarrow.RecordBatch
        The scored rows' input: ``snapshot_date``, ``customer_id`` and the raw
        value of each of ``feature_names``, row for row with ``scores``.
    scores : ndarray of shape (n,)
        Probabilities of default.
    contributions : ndarray of shape (n, len(feature_names))
        Each feature's contribution to the row's log-odds of default.
    feature_names : list of str
        The model's features, in the order of ``contributions``' columns.
    texts : dict
        The reason text of each feature (the version's spec, ``FeatureSpec.reasons``).
    cutoff : float
        A score above it is declined.
    k : int
        Reasons per decline at most.

    Returns
    -------
    pyarrow.Table
        Columns of :func:`adverse_action_schema`: one row per (declined row,
        reason), in input order, then by rank.
    """
    import pyarrow as pa

    if not 1 <= k <= MAX_REASONS:
        raise ValueError(f"k: must be in [1, {MAX_REASONS}]; got {k!r}")
    declined = np.flatnonzero(np.asarray(scores) > cutoff)
    rows, rank, feature, value = _ranked(contributions[declined], k)
    at = declined[rows]  # positions in the batch
    schema = adverse_action_schema(batch.schema.field("customer_id").type)
    n = len(at)
    columns = {
        "snapshot_date": batch.column("snapshot_date").take(at),
        "customer_id": batch.column("customer_id").take(at),
        "model_version": _labels(np.zeros(n, dtype=np.int32), [model_version]),
        "run_id": _labels(np.zeros(n, dtype=np.int32), [run_id]),
        "score": pa.array(np.asarray(scores, dtype=float)[at], pa.float64()),
        "cutoff": pa.array(np.full(n, float(cutoff)), pa.float64()),
        "reason_rank": pa.array(rank, pa.int32()),
        "feature": _labels(feature, feature_names),
        "reason_text": _labels(feature, [texts[name] for name in feature_names]),
        "contribution": pa.array(value, pa.float64()),
        **_values(batch, feature_names, feature, at),
    }
    return pa.Table.from_pydict(columns, schema=schema)


def _labels(index: np.ndarray, labels: list[str]):
    """``labels[index]`` as a dictionary array: no Python string per row."""
    import pyarrow as pa

    codes = pa.array(np.asarray(index, dtype=np.int32))
    return pa.DictionaryArray.from_arrays(codes, pa.array(labels, pa.string()))


def _ranked(contributions: np.ndarray, k: int):
    """Each row's (at most) ``k`` largest positive contributions, row by row then rank.

    Returns row positions, ranks (1-based), feature columns and contributions. The
    ranking is the reason codes' own (:func:`credit_batch.steps.explain.largest`): ties
    to the feature first in the model's order, so reasons 1-3 are the reason codes.
    """
    from credit_batch.steps.explain import largest

    k = min(k, contributions.shape[1])
    parts = [(best, values) for best, values in largest(contributions, k)]
    best = np.stack([b for b, _ in parts], axis=1)  # (rows, k)
    value = np.stack([v for _, v in parts], axis=1)
    keep = value > 0
    n = contributions.shape[0]
    rows = np.repeat(np.arange(n), k).reshape(n, k)[keep]
    rank = np.tile(np.arange(1, k + 1), (n, 1))[keep]
    return rows, rank, best[keep], value[keep]


def _values(batch, feature_names: list[str], feature: np.ndarray, at: np.ndarray) -> dict:
    """The value behind each reason: ``value`` for a number (NaN where it was missing),
    ``category`` (the level's text) for a categorical feature; the other one null."""
    import pyarrow as pa

    value = np.full(len(at), np.nan)
    category = None
    order = np.argsort(feature, kind="stable")  # the reasons grouped by feature
    bounds = np.flatnonzero(np.diff(feature[order])) + 1
    for where in np.split(order, bounds) if len(order) else []:
        column = batch.column(feature_names[feature[where[0]]])
        taken = column.take(pa.array(at[where]))
        if pa.types.is_dictionary(taken.type) or pa.types.is_string(taken.type):
            category = np.full(len(at), None, dtype=object) if category is None else category
            category[where] = taken.to_pylist()  # a categorical feature's levels
        else:
            value[where] = taken.to_numpy(zero_copy_only=False)
    return {
        "value": pa.array(value, pa.float64(), mask=np.isnan(value)),
        "category": pa.nulls(len(at), pa.string()) if category is None else
        pa.array(category, pa.string()),
    }  # fmt: skip
