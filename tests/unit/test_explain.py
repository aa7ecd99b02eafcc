"""Reason codes and SHAP values: exact, additive, equal to shap's own explainers."""

from __future__ import annotations

import numpy as np
import pytest
import shap

from credit_batch.features import DEFAULT_FEATURE_SPEC
from credit_batch.steps import explain, training
from tests.conftest import demo_frame

pytestmark = pytest.mark.unit

NAMES = DEFAULT_FEATURE_SPEC.names


@pytest.fixture(scope="module")
def data():
    frame = demo_frame(6_000)
    frame = frame[frame["num_90_days_late"] < 90].reset_index(drop=True)  # as scoring sees it
    return frame


@pytest.fixture(scope="module")
def logreg(data):
    model, _ = training.fit_and_evaluate(data, seed=0)
    return model, explain.linear_background(model, data[NAMES])


def _log_odds(p):
    return np.log(p / (1 - p))


def test_linear_contributions_add_up_to_the_log_odds_and_scores_are_the_models(data, logreg):
    model, background = logreg
    scores, phi, base = explain.explain(model, data[NAMES], background=background)
    # within a few ulps of predict_proba (its BLAS product sums in another order)
    np.testing.assert_allclose(scores, model.predict_proba(data[NAMES])[:, 1], rtol=4e-15, atol=0)
    assert np.abs(phi.sum(axis=1) + base - _log_odds(scores)).max() < 1e-6


def test_a_rows_linear_score_has_the_same_bits_alone_in_a_chunk_or_in_the_whole_frame(data, logreg):
    """One applicant online, a customer now, a chunk of the night: the same row, the same
    bits. (scikit-learn's ``predict_proba`` fails this: BLAS sums a row's products in an
    order that depends on the rows around it.)"""
    model, background = logreg
    frame = data[NAMES]
    whole, _, _ = explain.explain(model, frame, background=background)
    for rows in (1, 7, 1000):
        for start in range(0, 3 * rows, rows):
            part, _, _ = explain.explain(model, frame.iloc[start : start + rows],
                                         background=background)  # fmt: skip
            assert part.tobytes() == whole[start : start + rows].tobytes(), (rows, start)


def test_linear_contributions_equal_shap_linear_explainer_on_the_same_background(data, logreg):
    model, background = logreg
    columns, clf = model.named_steps["columns"], model.named_steps["classifier"]
    z = columns.transform(data[NAMES])
    reference = shap.LinearExplainer(clf, shap.maskers.Independent(z, max_samples=len(z)))
    sample = data[NAMES].iloc[:500]
    _, phi, base = explain.explain(model, sample, background=background)
    owners = explain._column_owners(columns, NAMES)
    np.testing.assert_allclose(
        phi[:, owners], reference(columns.transform(sample)).values, rtol=0, atol=1e-6
    )
    assert abs(base - float(reference.expected_value)) < 1e-6


def test_tree_contributions_add_up_to_the_log_odds(data):
    model, _ = training.fit_and_evaluate(data, algorithm="hgb", seed=0)
    sample = data[NAMES].iloc[:400]
    scores, phi, base = explain.explain(model, sample, background=None)
    assert np.abs(phi.sum(axis=1) + base - _log_odds(scores)).max() < 1e-6


def test_many_90_day_lates_is_the_first_reason(data, logreg):
    model, background = logreg
    row = data[NAMES].iloc[[0]].copy()
    row["num_90_days_late"] = 12.0
    _, phi, _ = explain.explain(model, row, background=background)
    reasons = explain.top_reasons(phi, NAMES)
    assert reasons[0].to_pylist() == ["num_90_days_late"]
    assert reasons[1].to_pylist()[0] > 0


def test_a_feature_the_model_does_not_use_is_never_a_reason(data):
    model, _ = training.fit_and_evaluate(data, seed=0)
    clf = model.named_steps["classifier"]
    unused = NAMES.index("num_real_estate_loans")
    owners = explain._column_owners(model.named_steps["columns"], NAMES)
    clf.coef_[0, np.flatnonzero(owners == unused)] = 0.0
    background = explain.linear_background(model, data[NAMES])
    _, phi, _ = explain.explain(model, data[NAMES], background=background)
    reasons = explain.top_reasons(phi, NAMES)
    named = {r for col in reasons[0::2] for r in col.to_pylist()}
    assert "num_real_estate_loans" not in named
    assert {"revolving_unsecured_line_utilization", "num_90_days_late"} <= named


def test_rows_with_fewer_positive_contributions_get_null_reasons():
    phi = np.array([[0.5, -0.2, 0.0], [-1.0, -2.0, -0.1]])
    reasons = explain.top_reasons(phi, ["a", "b", "c"])
    assert reasons[0].to_pylist() == ["a", None]
    assert reasons[2].to_pylist() == [None, None]
    assert reasons[1].to_pylist() == [0.5, None]


def test_linear_model_without_background_is_refused(data, logreg):
    from credit_batch.errors import ModelError

    model, _ = logreg
    with pytest.raises(ModelError, match="retrain"):
        explain.explain(model, data[NAMES].iloc[:5], background=None)


def test_partial_dependence_is_monotone_for_a_feature_with_a_monotone_effect(data, logreg):
    from credit_batch.steps import importance

    model, _ = logreg
    frame = importance.partial_dependence_frame(
        model, data[NAMES].iloc[:1_000], ["num_90_days_late", "monthly_income"]
    )
    lates = frame[frame["feature"] == "num_90_days_late"]
    assert lates["grid_value"].tolist() == sorted(lates["grid_value"].tolist())
    assert np.all(np.diff(lates["average"]) > 0)  # more 90-day lates: higher risk, always
    assert (lates["ice_p10"] <= lates["ice_p50"]).all() and (
        lates["ice_p50"] <= lates["ice_p90"]
    ).all()
    income = frame[frame["feature"] == "monthly_income"]
    assert len(income) == 20 and income["grid_value"].notna().all()  # grid ignores missing


def test_a_feature_used_by_two_transformers_gets_the_sum_of_its_columns():
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import PowerTransformer, StandardScaler

    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=2_000), "b": rng.exponential(size=2_000)})
    y = (x["a"] + x["b"] + rng.normal(size=2_000) > 1).astype(int)
    columns = ColumnTransformer(
        [("scaled", StandardScaler(), ["a", "b"]), ("power", PowerTransformer(), ["b"])]
    )
    model = Pipeline([("columns", columns), ("classifier", LogisticRegression())]).fit(x, y)
    background = explain.linear_background(model, x)
    scores, phi, base = explain.explain(model, x, background=background)
    z = columns.transform(x) - np.asarray(background)
    w = model.named_steps["classifier"].coef_[0]
    np.testing.assert_allclose(phi[:, 0], z[:, 0] * w[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(phi[:, 1], z[:, 1] * w[1] + z[:, 2] * w[2], rtol=0, atol=1e-12)
    # log-odds back from probabilities near 0 lose digits (up to ~1e-9 on some CPUs)
    assert np.abs(phi.sum(axis=1) + base - _log_odds(scores)).max() < 1e-7


@pytest.mark.parametrize("order", ["C", "F"])
def test_top_reasons_leave_the_contributions_untouched(order):
    contributions = np.asarray(np.random.default_rng(2).normal(size=(500, 6)), order=order)
    before = contributions.copy()
    explain.top_reasons(contributions, list("abcdef"))
    np.testing.assert_array_equal(contributions, before)


def test_partial_dependence_equals_scikit_learns_for_numbers_and_levels(data, logreg):
    """The batched curves are scikit-learn's ``partial_dependence`` (brute, kind="both"),
    average and every ICE percentile, to 1e-12, also when the grid spans several batches."""
    from sklearn.inspection import partial_dependence

    from credit_batch.steps import importance

    model, _ = logreg
    x = data[NAMES].iloc[:700]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(importance, "_CURVE_ROWS", 2_000)  # 2 grid values per call: 10 calls
        frame = importance.partial_dependence_frame(model, x, ["monthly_income", "age"])
    for name, part in frame.groupby("feature", sort=False):
        grid = part["grid_value"].to_numpy()
        want = partial_dependence(
            model, x, [name], kind="both", custom_values={name: grid},
            response_method="predict_proba",
        )  # fmt: skip
        np.testing.assert_allclose(part["average"], want["average"][0], rtol=0, atol=1e-12)
        p10, p50, p90 = np.percentile(want["individual"][0], [10, 50, 90], axis=0)
        for column, expected in (("ice_p10", p10), ("ice_p50", p50), ("ice_p90", p90)):
            np.testing.assert_allclose(part[column], expected, rtol=0, atol=1e-12)
