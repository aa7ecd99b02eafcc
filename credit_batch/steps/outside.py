"""Checks of a model trained elsewhere before it is registered, and its registry entry.

Before a team's model (:mod:`credit_batch.stores.outside`) is registered, on a
sample of the spec's labeled rows of its training window:

- it reads exactly the spec's features, in the spec's order;
- it gives probabilities: one per row, finite, in [0, 1];
- it has an exact explainer, so its reason codes and adverse-action reasons are
  the same as for a model the platform trained: the closed form of a linear
  pipeline of the platform's shape (``columns`` then ``classifier``), LightGBM's
  TreeSHAP, or shap's TreeSHAP for scikit-learn's gradient boosting; the contributions must
  add up to the model's log-odds. Any other model would need shap's
  model-agnostic explainer: its cost per row is measured and the model refused,
  with the measured cost for a nightly book;
- each feature's declared ``direction`` is kept: the mean score over the sample
  with the feature set to its 90th percentile against its 10th, moving the wrong
  way by more than :data:`DIRECTION_TOLERANCE`; each violation is listed, and
  fails the candidate's gates (it stays registered, as evidence).
"""

from __future__ import annotations

import logging
import time

import numpy as np

from credit_batch.errors import ModelError
from credit_batch.steps import drift, performance
from credit_batch.steps.encoding import model_frame
from credit_batch.steps.explain import explain, linear_background

__all__ = ["DIRECTION_TOLERANCE", "NIGHTLY_ROWS", "direction_violations", "outside_fitted"]

logger = logging.getLogger(__name__)

#: The book a model-agnostic explainer's measured cost is stated for.
NIGHTLY_ROWS = 2_000_000
#: scikit-learn's tree models whose TreeSHAP is in log-odds (boosting's raw margin). A
#: forest's is in probabilities: not additive in log-odds, so it has no exact explainer here.
_TREES = ("GradientBoostingClassifier", "HistGradientBoostingClassifier")
#: A wrong-way move of the mean score smaller than this is noise, not a violation.
DIRECTION_TOLERANCE = 0.001


def outside_fitted(outside, frame, *, spec):
    """The registry's :class:`~credit_batch.stores.registry.FittedModel` of a checked
    outside model, and the declared directions it breaks (see the module docstring).

    ``frame``: valid labeled rows of the spec from the model's training window.
    """
    from credit_batch.stores.registry import FittedModel

    model = _shaped(outside.model)
    x = model_frame(frame, spec)
    _check_features(model, spec, outside.path)
    p = _probabilities(model, x, outside.path)
    background = _background(model, x)
    kind = _check_explainer(model, x, p, background, outside.path)
    y = frame[spec.target].to_numpy()
    metrics = performance.summary(y, p)
    categories = {n: spec.feature(n).categories for n in spec.categorical}
    fitted = FittedModel(
        model=model,
        algorithm=f"outside-{outside.flavour}",
        features=spec.names,
        metrics={k: metrics[k] for k in ("roc_auc", "log_loss", "ks")},
        training_rows=len(frame),
        train_from=frame["snapshot_date"].min(),
        fingerprint=outside.sha256,
        background=background,
        drift_reference=drift.reference(frame, spec.names, p, categories=categories),
        spec=spec,
    )
    logger.info("outside model %s: explainer %s", outside.path, kind)
    return fitted, kind, direction_violations(model, x, spec)


def direction_violations(model, x, spec) -> list[str]:
    """Each declared ``direction`` the model breaks on the rows ``x`` (model features)."""
    found = []
    for f in spec.features:
        if f.direction not in ("increases", "decreases") or f.categorical:
            continue
        low, high = np.nanquantile(x[f.name].to_numpy(dtype=float), [0.1, 0.9])
        if low == high:
            continue
        at = [model.predict_proba(x.assign(**{f.name: v}))[:, 1].mean() for v in (low, high)]
        change = float(at[1] - at[0])
        wrong = -change if f.direction == "increases" else change
        if wrong > DIRECTION_TOLERANCE:
            moves = "falls" if change < 0 else "rises"
            found.append(f"{f.name}: declared {f.direction}, but the mean score {moves} by "
                         f"{abs(change):.4f} from its 10th to its 90th percentile")  # fmt: skip
    return found


def _shaped(model):
    """A bare tree ensemble as a one-step pipeline (what the explainer takes)."""
    from sklearn.pipeline import Pipeline

    if type(model).__name__ in _TREES:
        return Pipeline([("classifier", model)])
    return model


def _check_features(model, spec, path) -> None:
    booster = getattr(model, "booster", None)
    names = booster.feature_name() if booster is not None else None
    names = list(getattr(model, "feature_names_in_", names) if names is None else names)
    if names and names != spec.names:
        raise ModelError(
            f"model file {path}: reads the features {names}, not the spec's {spec.names} "
            "(same names, same order)",
            path=str(path),
        )
    count = getattr(model, "n_features_in_", len(spec.names))
    if count != len(spec.names):
        raise ModelError(f"model file {path}: reads {count} features, the spec has "
                         f"{len(spec.names)}", path=str(path))  # fmt: skip


def _probabilities(model, x, path) -> np.ndarray:
    try:
        proba = np.asarray(model.predict_proba(x), dtype=float)
    except Exception as exc:  # the team's model on the spec's rows
        raise ModelError(f"model file {path}: predict_proba fails on the spec's rows: {exc}",
                         path=str(path)) from exc  # fmt: skip
    if proba.shape != (len(x), 2) or not np.isfinite(proba).all():
        raise ModelError(f"model file {path}: predict_proba must give two finite columns per "
                         f"row; got shape {proba.shape}", path=str(path))  # fmt: skip
    p = proba[:, 1]
    if p.min() < 0 or p.max() > 1:
        raise ModelError(f"model file {path}: probabilities must lie in [0, 1]; got "
                         f"{p.min():.4g} .. {p.max():.4g}", path=str(path))  # fmt: skip
    return p


def _background(model, x) -> list[float] | None:
    steps = getattr(model, "named_steps", {})
    if hasattr(steps.get("classifier"), "coef_") and "columns" in steps:
        return linear_background(model, x)
    return None


def _check_explainer(model, x, p, background, path) -> str:
    """The exact explainer the model has, checked additive on the rows; else refused
    with the measured cost of shap's model-agnostic explainer."""
    steps = getattr(model, "named_steps", {})
    if background is not None:
        kind = "closed form (linear)"
    elif hasattr(model, "explain"):
        kind = "TreeSHAP (LightGBM)"
    elif len(steps) == 1 and type(steps.get("classifier")).__name__ in _TREES:
        kind = "TreeSHAP (shap)"
    else:
        ms = _agnostic_cost(model, x)
        hours = ms * NIGHTLY_ROWS / 3.6e6
        raise ModelError(
            f"model file {path}: has no exact explainer (a {type(model).__name__}); shap's "
            f"model-agnostic explainer measured {ms:.0f} ms per row here, {hours:,.1f} h for "
            f"{NIGHTLY_ROWS:,} customers a night. Exact explainers exist for LightGBM, "
            "scikit-learn's gradient boosting and linear pipelines of the platform's shape",
            path=str(path),
            ms_per_row=ms,
        )
    scores, phi, base = explain(model, x.iloc[:500], background=background)
    logit = np.log(scores / (1 - scores))
    worst = float(np.abs(phi.sum(axis=1) + base - logit).max())
    if not np.allclose(scores, p[:500], rtol=0, atol=1e-9) or worst > 1e-6:
        raise ModelError(f"model file {path}: its {kind} contributions do not add up to its "
                         f"log-odds (off by {worst:.3g})", path=str(path))  # fmt: skip
    return kind


def _agnostic_cost(model, x, rows: int = 2) -> float:
    """Milliseconds per row of shap's permutation explainer on the model's log-odds."""
    import shap

    def logit(values):
        frame = x.iloc[:0]._constructor(values, columns=x.columns)
        q = np.clip(model.predict_proba(frame)[:, 1], 1e-12, 1 - 1e-12)
        return np.log(q / (1 - q))

    masker = shap.maskers.Independent(x.to_numpy(dtype=float)[:50], max_samples=50)
    explainer = shap.explainers.Permutation(logit, masker)
    t0 = time.perf_counter()
    explainer(x.to_numpy(dtype=float)[:rows], silent=True)
    return 1000 * (time.perf_counter() - t0) / rows
