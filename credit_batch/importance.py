"""Permutation importance of the model's features on a labeled sample.

How much does the model's ROC AUC drop when one feature's values are
shuffled? scikit-learn's :func:`sklearn.inspection.permutation_importance`
does the work; this module picks the sample and shapes the result as rows
of ``feature_importance``.
"""

from __future__ import annotations

import logging

import numpy as np

from credit_batch.errors import ParameterError

logger = logging.getLogger(__name__)

METHOD = "permutation"
METRIC = "roc_auc"


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
    import pandas as pd
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
    frame = pd.DataFrame(
        {
            "feature": list(x.columns),
            "importance_mean": result.importances_mean,
            "importance_std": result.importances_std,
        }
    ).sort_values("importance_mean", ascending=False, kind="stable")
    frame.insert(1, "importance_rank", np.arange(1, len(frame) + 1, dtype=np.int32))
    frame["baseline_score"] = float(get_scorer(scoring)(model, x, y))
    return frame.reset_index(drop=True)
