"""LightGBM models: text artifacts, exact reason codes (fast and general paths), monotone."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from credit_batch.features import DEFAULT_FEATURE_SPEC
from credit_batch.steps import training
from credit_batch.steps.encoding import model_frame
from credit_batch.stores import registry, results, trees
from tests.conftest import demo_frame, query, run_pipeline

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def gmsc_rows():
    return demo_frame(4_000, seed=3)


def _fitted(frame, spec=DEFAULT_FEATURE_SPEC, **params):
    old = dict(training.LGBM_PARAMS)
    training.LGBM_PARAMS.update(params)
    try:
        model, _ = training.fit_and_evaluate(frame, spec=spec, algorithm="lgbm", seed=1)
    finally:
        training.LGBM_PARAMS.clear()
        training.LGBM_PARAMS.update(old)
    return trees.loads(trees.dumps(model)), model_frame(frame, spec)[spec.names]


def _treeshap(model: trees.BoostedTrees, x) -> np.ndarray:
    import shap

    values = shap.TreeExplainer(model.booster).shap_values(x.to_numpy(dtype=float))
    return values[1] if isinstance(values, list) else values


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("depth", [1, 3])
def test_contributions_equal_shap_treeexplainer_and_add_up_to_the_raw_margin(gmsc_rows, depth):
    model, x = _fitted(gmsc_rows, max_depth=depth, num_leaves=2**depth, n_estimators=120)
    assert (model._additive() is None) == (depth > 1)  # stumps: the fast path
    scores, contributions, base = model.explain(x)
    assert np.max(np.abs(contributions - _treeshap(model, x))) < 1e-6
    raw = model.booster.predict(x.to_numpy(dtype=float), raw_score=True)
    assert np.max(np.abs(contributions.sum(axis=1) + base - raw)) < 1e-9
    assert np.max(np.abs(scores - model.predict_proba(x)[:, 1])) < 1e-12


def test_categorical_stumps_explain_exactly_with_unseen_and_missing_levels():
    import lightgbm

    rng = np.random.default_rng(5)
    n = 5_000
    level = rng.integers(0, 6, n).astype(float)
    amount = rng.normal(size=n)
    amount[rng.random(n) < 0.1] = np.nan
    logit = np.array([-3, -2, -1, 0, 1, 2.0])[level.astype(int)] + np.nan_to_num(amount)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    x = np.column_stack([level, amount])
    clf = lightgbm.LGBMClassifier(
        n_estimators=80, max_depth=1, num_leaves=2, min_child_samples=20, verbose=-1
    ).fit(x, y, categorical_feature=[0])
    model = trees.loads(trees.dumps(clf))
    x[:5, 0] = np.nan  # a missing level
    x[5:10, 0] = 99.0  # a level index never seen
    assert model._additive() is not None
    _, contributions, base = model.explain(x)
    full = model.booster.predict(x, pred_contrib=True)
    assert np.max(np.abs(contributions - full[:, :-1])) < 1e-9
    assert abs(base - full[0, -1]) < 1e-9


def test_monotone_directions_of_the_spec_hold_on_a_grid(gmsc_rows):
    model, x = _fitted(gmsc_rows)
    sample = x.iloc[:200]
    for feature in DEFAULT_FEATURE_SPEC.features:
        sign = {"increases": 1, "decreases": -1}.get(feature.direction)
        if sign is None:
            continue
        grid = np.quantile(x[feature.name].dropna(), np.linspace(0, 1, 25))
        curves = np.array(
            [model.predict_proba(sample.assign(**{feature.name: v}))[:, 1] for v in grid]
        )
        steps = sign * np.diff(curves, axis=0)
        assert steps.min() >= -1e-12, feature.name  # never against the declared direction


def test_a_lightgbm_model_is_stored_as_text_and_scores_through_the_pipeline(demo):
    settings, written, _ = demo
    record = training.train(settings, until=written[-3]["snapshot_date"], algorithm="lgbm")
    artifact = settings.models / record.model_version / trees.ARTIFACT_NAME
    assert record.artifact_path.endswith("model.lgbm.txt")
    assert artifact.read_bytes().startswith(b"tree\n")  # LightGBM's text format, no pickle
    done = run_pipeline(settings, snapshot_date="2026-09-30", model_version=record.model_version)
    stored = query(
        settings,
        "SELECT customer_id, score, reason_1, reason_1_value FROM predictions ORDER BY 1",
    )
    assert len(stored) == done["loaded"]["rows_loaded"] > 0
    assert all(r["reason_1"] for r in stored if r["score"] > 0.2)
    with results.open_results(settings, read_only=True) as db:
        loaded = registry.get_model(db, settings, record.model_version)
    assert loaded.algorithm == "lgbm" and loaded.sha256 == artifact.sha256()
    model = registry.load_model(
        settings, loaded.artifact_path, loaded.sha256, version=loaded.model_version
    )
    assert isinstance(model, trees.BoostedTrees)
    with pytest.raises(NotImplementedError):
        model.fit(None, None)
    assert dataclasses.is_dataclass(loaded)
