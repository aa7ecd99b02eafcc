"""Fit and evaluate the course's credit-risk pipeline.

``logreg`` (the course's model): median imputation and standard scaling of
the regular columns; median imputation, scaling and a Yeo-Johnson power
transform of the skewed ones; logistic regression. ``hgb``: scikit-learn's
HistGradientBoostingClassifier, which takes missing values as they are.
"""

from __future__ import annotations

import logging

import numpy as np

from credit_batch.errors import DataError, ParameterError
from credit_batch.features import DEFAULT_FEATURE_SPEC, FeatureSpec

logger = logging.getLogger(__name__)

ALGORITHMS = ("logreg", "hgb")
DEFAULT_ALGORITHM = "logreg"
DEFAULT_TEST_SIZE = 0.2


def build_model(
    spec: FeatureSpec = DEFAULT_FEATURE_SPEC, *, algorithm: str = DEFAULT_ALGORITHM, seed: int = 0
):
    """Return an unfitted scikit-learn ``Pipeline`` for ``spec``'s columns."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import PowerTransformer, StandardScaler

    check_algorithm(algorithm)
    if algorithm == "hgb":
        clf = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, random_state=seed)
        return Pipeline([("classifier", clf)])
    regular = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    skewed = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median")),
            ("scale", StandardScaler()),
            ("power", PowerTransformer(method="yeo-johnson")),
        ]
    )
    columns = ColumnTransformer(
        [("regular", regular, spec.regular), ("skewed", skewed, spec.skewed)],
        verbose_feature_names_out=False,
    )
    clf = LogisticRegression(max_iter=1000, random_state=seed)
    return Pipeline([("columns", columns), ("classifier", clf)])


def check_algorithm(algorithm: object) -> str:
    """Return ``algorithm`` if it is one of :data:`ALGORITHMS`, else raise ParameterError."""
    if algorithm not in ALGORITHMS:
        raise ParameterError("algorithm", algorithm, f"must be one of {ALGORITHMS}")
    return algorithm


def evaluate(y_true, proba) -> dict[str, float]:
    """ROC AUC, log loss and the Kolmogorov-Smirnov statistic of scores."""
    from sklearn.metrics import log_loss, roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(y_true, proba)
    return {
        "roc_auc": float(roc_auc_score(y_true, proba)),
        "log_loss": float(log_loss(y_true, proba, labels=[0, 1])),
        "ks": float(np.max(tpr - fpr)),
    }


def fit_and_evaluate(
    frame,
    *,
    spec: FeatureSpec = DEFAULT_FEATURE_SPEC,
    algorithm: str = DEFAULT_ALGORITHM,
    test_size: float = DEFAULT_TEST_SIZE,
    seed: int = 0,
):
    """Fit on a stratified part of ``frame`` and evaluate on the held-out rest.

    Parameters
    ----------
    frame : pandas.DataFrame
        Labeled rows: the spec's features and its target column.

    Returns
    -------
    model : sklearn.pipeline.Pipeline
        Fitted on the training part.
    metrics : dict
        ``roc_auc``, ``log_loss``, ``ks`` on the held-out part.
    """
    from sklearn.model_selection import train_test_split

    if not 0 < test_size < 1:
        raise ParameterError("test_size", test_size, "must be between 0 and 1")
    y = frame[spec.target].to_numpy()
    if frame.shape[0] < 50 or np.unique(y).size < 2:
        raise DataError(
            f"training needs at least 50 labeled rows with both classes; "
            f"got {frame.shape[0]} rows, classes {sorted(np.unique(y).tolist())}",
            rows=frame.shape[0],
        )
    x_train, x_test, y_train, y_test = train_test_split(
        frame[spec.names], y, test_size=test_size, random_state=seed, stratify=y
    )
    model = build_model(spec, algorithm=algorithm, seed=seed).fit(x_train, y_train)
    metrics = evaluate(y_test, model.predict_proba(x_test)[:, 1])
    logger.info("trained %s on %d rows: %s", algorithm, len(x_train), metrics)
    return model, metrics
