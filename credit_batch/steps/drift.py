"""Population drift: the population stability index (PSI) of features and scores.

At training time each feature's and the score's distribution on the training
data is stored as reference bins (deciles, a bin for missing values). Each
run histograms its scored rows into the same bins, chunk by chunk in the
scoring tasks, and compares:

    PSI = sum over bins of (actual - expected) * ln(actual / expected)

with the usual bands: below 0.1 stable, 0.1 to 0.25 watch, above 0.25 act.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from credit_batch.errors import DriftError
from credit_batch.steps.encoding import level_codes

if TYPE_CHECKING:
    from credit_batch.run import Run

__all__ = [
    "BANDS",
    "N_BINS",
    "SCORE",
    "band",
    "counts_of",
    "histogram",
    "level_counts",
    "psi",
    "reference",
    "slice_rows",
]

SCORE = "score"
N_BINS = 10
_FLOOR = 1e-4  # share given to an empty bin, so that ln() stays finite
BANDS = ((0.1, "stable"), (0.25, "watch"), (float("inf"), "act"))


def reference(frame, columns: list[str], scores: np.ndarray, *, categories=None) -> dict:
    """Reference bins of each column of ``frame`` and of ``scores``.

    Returns ``{name: {"edges": [...], "expected": [...]}}``; the last share of
    ``expected`` is the missing-value bin. A categorical column (a key of
    ``categories``, mapping it to its levels) is binned by level instead:
    ``{"levels": [...], "expected": [...]}``, the last two shares being
    "other" (an undeclared level) and missing.
    """
    categories = categories or {}
    out = {
        name: _level_reference(frame[name], categories[name])
        for name in columns
        if name in categories
    }
    values = {n: frame[n].to_numpy(dtype=float) for n in columns if n not in categories}
    values[SCORE] = np.asarray(scores, dtype=float)
    for name, x in values.items():
        present = x[~np.isnan(x)]
        quantiles = (
            np.quantile(present, np.linspace(0, 1, N_BINS + 1)[1:-1]) if present.size else []
        )
        edges = np.unique(quantiles)
        counts = histogram(x, edges)
        out[name] = {"edges": edges.tolist(), "expected": (counts / max(x.size, 1)).tolist()}
    return {name: out[name] for name in [*columns, SCORE]}


def _level_reference(column, levels) -> dict:
    counts = level_counts(column, levels)
    return {"levels": list(levels), "expected": (counts / max(len(column), 1)).tolist()}


def level_counts(values, levels) -> np.ndarray:
    """Counts of ``values`` (strings: Arrow, pandas or numpy) per level, then
    undeclared ("other"), then missing."""
    import pandas as pd

    codes = level_codes(values, levels)
    known = ~np.isnan(codes)
    nulls = getattr(values, "null_count", None)  # an Arrow array counts its own
    missing = float(pd.isna(values).sum() if nulls is None else nulls)
    counts = np.bincount(codes[known].astype(np.int64), minlength=len(levels)).astype(float)
    other = float((~known).sum()) - missing
    return np.append(counts, [other, missing])


def counts_of(values, ref: dict) -> np.ndarray:
    """``values`` counted into the bins of the reference ``ref`` (levels or edges)."""
    if "levels" in ref:
        return level_counts(values, ref["levels"])
    return histogram(values, ref["edges"])


def histogram(x: np.ndarray, edges) -> np.ndarray:
    """Counts of ``x`` in the bins cut at ``edges`` (right-closed), plus a missing bin.

    A value's bin is the number of edges below it, counted by one comparison
    per edge into a byte per row: ten times faster than ``np.searchsorted``
    for the few edges of a decile reference (the scoring tasks count every row).
    """
    x = np.asarray(x, dtype=float)
    edges = np.asarray(edges, dtype=float)
    if edges.size > 250:
        raise ValueError(f"histogram takes at most 250 edges, got {edges.size}")
    bins = np.zeros(x.size, dtype=np.uint8)
    for edge in edges:  # NaN > edge is False: missing values land in bin 0, taken out below
        np.add(bins, x > edge, out=bins, casting="unsafe")
    counts = np.bincount(bins, minlength=edges.size + 1).astype(float)
    missing = np.isnan(x).sum()
    counts[0] -= missing
    return np.append(counts, missing)


def psi(expected, actual_counts) -> float:
    """Population stability index of actual counts against expected shares."""
    e = np.maximum(np.asarray(expected, dtype=float), _FLOOR)
    total = float(np.sum(actual_counts))
    a = np.maximum(np.asarray(actual_counts, dtype=float) / max(total, 1.0), _FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def band(value: float) -> str:
    """``stable``, ``watch`` or ``act``."""
    return next(label for bound, label in BANDS if value < bound)


def slice_rows(run: Run, scored: list[dict]):
    """The run's drift rows (PSI of each feature and the score) and the score's PSI.

    Returns ``(table, score PSI, its band)``; ``(None, None, None)`` for a model
    without reference bins. Raises
    :class:`~credit_batch.errors.DriftError` when the score's PSI is in the
    act band and the run was asked to fail on drift.
    """
    import pyarrow as pa

    reference = run.drift_reference
    if not reference or not scored:
        return None, None, None
    names = list(reference)
    values = [
        psi(reference[name]["expected"], sum(np.asarray(s["drift_counts"][name]) for s in scored))
        for name in names
    ]
    score_psi = values[names.index(SCORE)]
    if run.fail_on_drift and band(score_psi) == "act":
        raise DriftError(
            f"run {run.run_id}: score PSI {score_psi:.3f} against the training "
            "data is in the act band (> 0.25) and fail_on_drift is set; nothing was loaded",
            psi=score_psi,
        )
    n, rows = len(names), sum(s["rows_scored"] for s in scored)
    table = pa.table(
        {
            "snapshot_date": [run.snapshot_date] * n,
            "model_version": [run.model_version] * n,
            "run_id": [run.run_id] * n,
            "feature": names,
            "psi": values,
            "band": [band(v) for v in values],
            "rows_compared": [rows] * n,
        }
    )
    return table, score_psi, band(score_psi)
