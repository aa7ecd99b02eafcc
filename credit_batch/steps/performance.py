"""How good scores were once the outcomes are known: discrimination, calibration, bands.

One set of definitions, used twice: to validate a newly trained model out of
time (its gates, :mod:`credit_batch.steps.lifecycle`) and to measure the
realized performance of stored scores as outcomes mature (``credit-batch
monitor``).

- ``roc_auc``; ``gini`` = 2 AUC - 1; ``ks``: the largest gap between the
  cumulative score distributions of bads and goods (max TPR - FPR);
- ``log_loss`` and ``brier``: the mean squared error of the probability;
- calibration by decile: the rows sorted by score (ties in row order) and
  cut into ten groups of equal size (``numpy.array_split``): each group's
  mean score against its bad rate;
- bad rate by risk band.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DECILES", "band_rows", "calibration_rows", "summary"]

DECILES = 10


def _checked(y, p) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"outcomes {y.shape} and scores {p.shape} must be equal-length vectors")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("outcomes must be 0 or 1")
    return y, p


def summary(y, p) -> dict:
    """Rows, bads, bad rate, mean score and the discrimination and accuracy metrics.

    Metrics that need both classes (AUC, Gini, KS) are None where one is missing.
    """
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score, roc_curve

    y, p = _checked(y, p)
    out = {
        "rows": int(y.size),
        "bads": int(y.sum()),
        "bad_rate": float(y.mean()) if y.size else None,
        "mean_score": float(p.mean()) if y.size else None,
        "roc_auc": None,
        "gini": None,
        "ks": None,
        "log_loss": float(log_loss(y, p, labels=[0, 1])) if y.size else None,
        "brier": float(brier_score_loss(y, p)) if y.size else None,
    }
    if 0 < out["bads"] < y.size:
        auc = float(roc_auc_score(y, p))
        fpr, tpr, _ = roc_curve(y, p)
        out.update(roc_auc=auc, gini=2.0 * auc - 1.0, ks=float(np.max(tpr - fpr)))
    return out


def calibration_rows(y, p, *, groups: int = DECILES) -> list[dict]:
    """One row per score group (lowest scores first): rows, bads, mean score, bad rate, range."""
    y, p = _checked(y, p)
    order = np.argsort(p, kind="stable")
    rows = []
    for index, part in enumerate(np.array_split(order, groups)):
        if part.size == 0:
            continue
        rows.append(
            {
                "bucket_index": index,
                "bucket": f"decile {index + 1}",
                **_group(y[part], p[part]),
            }
        )
    return rows


def band_rows(y, p, bands) -> list[dict]:
    """One row per risk band present (in the order of the band labels given)."""
    y, p = _checked(y, p)
    bands = np.asarray(bands, dtype=object)
    labels = sorted(set(bands.tolist()))
    return [
        {"bucket_index": i, "bucket": label, **_group(y[bands == label], p[bands == label])}
        for i, label in enumerate(labels)
    ]


def _group(y: np.ndarray, p: np.ndarray) -> dict:
    return {
        "customers": int(y.size),
        "bads": int(y.sum()),
        "mean_score": float(p.mean()),
        "bad_rate": float(y.mean()),
        "min_score": float(p.min()),
        "max_score": float(p.max()),
    }
