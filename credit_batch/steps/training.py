"""Fit and evaluate the course's credit-risk pipeline.

``logreg`` (the course's model): median imputation and standard scaling of
the regular columns; median imputation, scaling and a Yeo-Johnson power
transform of the skewed ones; logistic regression. ``hgb``: scikit-learn's
HistGradientBoostingClassifier, which takes missing values as they are.
``lgbm``: LightGBM's gradient-boosted trees, monotone in each feature the
spec gives a direction (more late payments never lowers the risk), stored
in LightGBM's text format, with exact reason codes from its native TreeSHAP.
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np

from credit_batch.checks import check_model_name, check_rows, parse_date
from credit_batch.config import (
    ALGORITHMS,
    DEFAULT_ALGORITHM,
    DEFAULT_SEED,
    DEFAULT_TRAIN_MAX_ROWS,
    MAX_PARTITION_ROWS,
    Policy,
    Settings,
    safe_url,
)
from credit_batch.errors import DataError, ParameterError
from credit_batch.features import FeatureSpec, default_spec, load_spec
from credit_batch.steps import drift, segments, upstream
from credit_batch.steps.encoding import model_frame
from credit_batch.steps.explain import linear_background
from credit_batch.steps.validation import valid_rows
from credit_batch.stores import registry, results, warehouse
from credit_batch.stores.registry import FittedModel

logger = logging.getLogger(__name__)

DEFAULT_TEST_SIZE = 0.2
#: Labeled rows sampled for training at most.
DEFAULT_MAX_ROWS = DEFAULT_TRAIN_MAX_ROWS

__all__ = [
    "ALGORITHMS",
    "build_model",
    "evaluate",
    "fit_and_evaluate",
    "fit_model",
    "train",
]


def build_model(
    spec: FeatureSpec | None = None, *, algorithm: str = DEFAULT_ALGORITHM, seed: int = 0
):
    """Return an unfitted scikit-learn ``Pipeline`` for ``spec``'s columns."""
    spec = default_spec() if spec is None else spec
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import PowerTransformer, StandardScaler

    check_algorithm(algorithm)
    if algorithm == "lgbm":
        return _lightgbm(spec, seed=seed)
    categorical = _one_hot(spec)
    if algorithm == "hgb":
        clf = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, random_state=seed)
        if not categorical:
            return Pipeline([("classifier", clf)])
        numeric = [n for n in spec.names if n not in spec.categorical]
        columns = ColumnTransformer(
            [("numeric", "passthrough", numeric), categorical], verbose_feature_names_out=False
        )
        return Pipeline([("columns", columns), ("classifier", clf)])
    regular = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    skewed = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median")),
            ("scale", StandardScaler()),
            ("power", PowerTransformer(method="yeo-johnson")),
        ]
    )
    columns = ColumnTransformer(
        [
            ("regular", regular, spec.regular),
            ("skewed", skewed, spec.skewed),
            *([categorical] if categorical else []),
        ],
        verbose_feature_names_out=False,
    )
    clf = LogisticRegression(max_iter=1000, random_state=seed)
    return Pipeline([("columns", columns), ("classifier", clf)])


#: LightGBM's settings: stumps (one split per tree), so the model is additive, a
#: "boosted scorecard": each feature's effect is a step function, monotone where
#: the spec says, and its exact reason codes cost what a prediction costs
#: (:mod:`credit_batch.stores.trees`). On the demo's out-of-time snapshot: ROC
#: AUC 0.855, against 0.856 for trees of depth 3 whose TreeSHAP runs 24x slower
#: than predicting.
LGBM_PARAMS = {
    "n_estimators": 400,
    "learning_rate": 0.1,
    "max_depth": 1,
    "num_leaves": 2,
    "min_child_samples": 50,
    "reg_lambda": 1.0,
}
_DIRECTION = {"increases": 1, "decreases": -1, "none": 0}


def _lightgbm(spec: FeatureSpec, *, seed: int):
    """A LightGBM classifier on the spec's columns in model order, monotone where declared.

    Categorical features (as level indexes) are LightGBM categories; each
    numeric feature's ``direction`` becomes its monotone constraint.
    """
    import lightgbm

    monotone = [
        0 if name in spec.categorical else _DIRECTION[spec.feature(name).direction]
        for name in spec.names
    ]
    return lightgbm.LGBMClassifier(
        **LGBM_PARAMS,
        monotone_constraints=monotone,
        monotone_constraints_method="advanced",
        random_state=seed,
        deterministic=True,
        force_row_wise=True,
        n_jobs=1,
        verbose=-1,
    )


def _fit_params(spec: FeatureSpec, algorithm: str) -> dict:
    """What ``fit`` takes beside the rows: LightGBM's categorical columns, by position."""
    if algorithm != "lgbm" or not spec.categorical:
        return {}
    return {"categorical_feature": [spec.names.index(n) for n in spec.categorical]}


def _one_hot(spec: FeatureSpec):
    """The one-hot encoder of the spec's categorical features, or None.

    It takes each level's index (:func:`credit_batch.steps.encoding.model_frame`)
    and gives one column per declared level, in the spec's order; a missing or
    undeclared value (NaN) encodes as all zeros (the reference level "other"). One-hot, not WoE
    or target encoding: nothing is fitted on the target (no leakage into the
    out-of-sample metrics), each level gets its own weight that a reviewer can
    read, and a level's SHAP value is exact and sums back to its feature.
    """
    from sklearn.preprocessing import OneHotEncoder

    features = [spec.feature(n) for n in spec.categorical]
    if not features:
        return None
    encoder = OneHotEncoder(
        categories=[[float(i) for i in range(len(f.categories))] for f in features],
        handle_unknown="ignore",
        sparse_output=False,
        dtype=np.float64,
    )
    return ("categorical", encoder, [f.name for f in features])


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
    spec: FeatureSpec | None = None,
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
    spec = default_spec() if spec is None else spec
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
        model_frame(frame, spec), y, test_size=test_size, random_state=seed, stratify=y
    )
    model = build_model(spec, algorithm=algorithm, seed=seed)
    model.fit(x_train, y_train, **_fit_params(spec, algorithm))
    metrics = evaluate(y_test, model.predict_proba(x_test)[:, 1])
    logger.info("trained %s on %d rows: %s", algorithm, len(x_train), metrics)
    return model, metrics


def fit_model(
    frame,
    *,
    algorithm: str = DEFAULT_ALGORITHM,
    seed: int = 0,
    spec: FeatureSpec | None = None,
) -> FittedModel:
    """Fit and evaluate on ``frame``; add the explainer background and drift reference bins."""
    spec = default_spec() if spec is None else spec
    model, metrics = fit_and_evaluate(frame, spec=spec, algorithm=algorithm, seed=seed)
    x = model_frame(frame, spec)
    return FittedModel(
        model=model,
        algorithm=algorithm,
        features=spec.names,
        metrics=metrics,
        training_rows=len(frame),
        train_from=frame["snapshot_date"].min(),
        fingerprint=_fingerprint(frame, spec, algorithm=algorithm, seed=seed),
        background=linear_background(model, x) if algorithm == "logreg" else None,
        drift_reference=drift.reference(
            frame,
            spec.names,
            model.predict_proba(x)[:, 1],
            categories={n: spec.feature(n).categories for n in spec.categorical},
        ),
        spec=spec,
    )


def _fingerprint(frame, spec: FeatureSpec, *, algorithm: str, seed: int) -> str:
    import hashlib

    import pandas as pd
    import sklearn

    digest = hashlib.sha256(f"{algorithm}|{seed}|{spec.digest}|{sklearn.__version__}".encode())
    if algorithm == "lgbm":  # its settings and version shape the model too
        import json

        import lightgbm

        digest.update(f"|{lightgbm.__version__}|{json.dumps(LGBM_PARAMS, sort_keys=True)}".encode())
    columns = ["snapshot_date", "customer_id", *spec.names, spec.target]
    digest.update(pd.util.hash_pandas_object(frame[columns], index=False).to_numpy().tobytes())
    return digest.hexdigest()


def train(
    settings: Settings,
    *,
    until,
    since=None,
    algorithm: str = DEFAULT_ALGORITHM,
    max_rows: int = DEFAULT_MAX_ROWS,
    seed: int = DEFAULT_SEED,
    spec: FeatureSpec | None = None,
    model_name: str | None = None,
    policy: Policy | None = None,
    segment_by: str | None = None,
    segment: str | None = None,
    inventory: dict | None = None,
):
    """Fit on labeled snapshots in ``[since, until]``, evaluate, save and register a candidate.

    ``spec`` (default: the file ``settings.spec_path``) says what to read and
    is registered with the model; ``model_name`` (default: the spec's name) is
    the model the version belongs to; ``policy`` (default: the settings') is
    registered with the version (a model file's: :mod:`credit_batch.model_file`), as
    is ``inventory`` (the model file's owner, purpose, tier and limitations).
    ``segment_by`` and ``segment``: a segmented model's column and the segment whose
    rows it is fitted on (None: every row, the pooled version).
    The same rows, spec, algorithm and seed give the same model version:
    training again registers nothing new and returns the registered record.
    """
    spec = spec or load_spec(settings.spec_path)
    if model_name is not None:
        check_model_name(model_name)
    check_algorithm(algorithm)
    frame, scores = _read_rows(
        settings, spec, until=until, since=since, max_rows=max_rows, seed=seed,
        segment_by=segment_by, segment=segment,
    )  # fmt: skip
    fitted = fit_model(frame, algorithm=algorithm, seed=seed, spec=spec)
    with results.open_results(settings, key_type=spec.key_type) as db:
        return registry.save_model(
            db,
            settings,
            fitted,
            train_until=parse_date(until, name="train until date"),
            model_name=model_name,
            policy=policy,
            segment_by=segment_by,
            segment=segment,
            upstream=upstream.versions_read(scores),
            inventory=inventory,
        )


def read_training_rows(
    settings: Settings,
    spec: FeatureSpec,
    *,
    until,
    since=None,
    max_rows: int = DEFAULT_MAX_ROWS,
    seed: int = DEFAULT_SEED,
    segment_by: str | None = None,
    segment: str | None = None,
):
    """The valid labeled rows of snapshots in ``[since, until]`` (of ``segment``, where
    given) that training fits on: at most ``max_rows``, sampled with ``seed``."""
    return _read_rows(settings, spec, until=until, since=since, max_rows=max_rows, seed=seed,
                      segment_by=segment_by, segment=segment)[0]  # fmt: skip


def _read_rows(settings: Settings, spec: FeatureSpec, *, until, since, max_rows, seed,
               segment_by, segment):  # fmt: skip
    """The training rows, and the stored scores of other models they were joined with."""
    until_date = parse_date(until, name="train until date")
    since_date = parse_date(since, name="train since date") if since else dt.date.min
    check_rows("max training rows", max_rows, maximum=MAX_PARTITION_ROWS, minimum=50)
    with warehouse.open_warehouse(settings) as wh:
        labeled = warehouse.read_labeled(
            wh,
            spec.in_warehouse,
            since_date,
            until_date,
            sample_rows=max_rows + max_rows // 10,
            seed=seed,
        )
    scores = upstream.read_scores(settings, spec, labeled["snapshot_date"].unique())
    if scores:  # features that are other models' stored scores
        labeled = upstream.join_frame(labeled, spec, scores)
    if segment_by is not None:
        segments.check_segment_by(spec, segment_by)
    if segment is not None:
        if segment_by is None:
            raise ParameterError("segment", segment, "needs a model segmented by a column")
        labeled = labeled[segments.in_segment(labeled, segment_by, segments.check_segment(segment))]
    frame = valid_rows(labeled, spec=spec)
    if frame.empty:
        window = f"between {since_date} and" if since else "up to"
        window = window if segment is None else f"of segment {segment_by}={segment!r} {window}"
        raise DataError(
            f"no labeled rows {window} {until_date} in the warehouse "
            f"{safe_url(settings.warehouse_url)} ({_holds(settings, spec)}); outcomes come with "
            "`credit-batch demo-data` or `credit-batch load-csv`",
            since=since_date,
            until=until_date,
        )
    if len(frame) > max_rows:
        frame = frame.sample(n=max_rows, random_state=seed)
    return frame, scores


def _holds(settings: Settings, spec: FeatureSpec) -> str:
    """What the warehouse holds: its snapshots' range, for an error message."""
    with warehouse.open_warehouse(settings) as wh:
        dates = [r["snapshot_date"] for r in warehouse.list_snapshots(wh, spec)]
    if not dates:
        return "it holds no snapshots"
    return f"its snapshots: {min(dates)} .. {max(dates)}"
