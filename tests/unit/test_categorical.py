"""Categorical features: one-hot encoded, explained, validated and binned per original feature."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import shap

from credit_batch.features import DEFAULT_FEATURE_SPEC, Feature
from credit_batch.steps import drift, explain, importance, training, validation
from credit_batch.steps.encoding import level_codes, model_frame
from tests.conftest import demo_frame

pytestmark = pytest.mark.unit

REGIONS = ("north", "south", "east", "west")
RISKY = "south"
SPEC = dataclasses.replace(
    DEFAULT_FEATURE_SPEC,
    features=(
        *DEFAULT_FEATURE_SPEC.features,
        Feature("region", "categorical", categories=REGIONS, unseen="other", discrete=True),
        Feature("housing", "categorical", categories=("own", "rent"), nullable=True, discrete=True),
    ),
)
NAMES = SPEC.names


@pytest.fixture(scope="module")
def data():
    """Demo rows with a region that carries risk (south) and a housing status that does not."""
    frame = demo_frame(6_000, seed=3)
    frame = frame[frame["num_90_days_late"] < 90].reset_index(drop=True)
    rng = np.random.default_rng(0)
    frame["region"] = pd.Series(rng.choice(REGIONS, len(frame)), dtype="str")
    frame["housing"] = pd.Series(rng.choice(["own", "rent", None], len(frame)), dtype="str")
    south = (frame["region"] == RISKY).to_numpy()
    flip = south & (rng.random(len(frame)) < 0.25)  # a quarter of the south defaults
    frame.loc[flip, "delinquency"] = 1
    return frame


@pytest.fixture(scope="module")
def logreg(data):
    model, _ = training.fit_and_evaluate(data, spec=SPEC, seed=0)
    return model, explain.linear_background(model, model_frame(data, SPEC))


def _log_odds(p):
    return np.log(p / (1 - p))


def test_one_hot_reason_codes_equal_shap_linear_explainer_summed_over_each_features_levels(
    data, logreg
):
    model, background = logreg
    columns, clf = model.named_steps["columns"], model.named_steps["classifier"]
    z = columns.transform(model_frame(data, SPEC))
    assert z.shape[1] == len(NAMES) - 2 + len(REGIONS) + 2  # one column per declared level
    reference = shap.LinearExplainer(clf, shap.maskers.Independent(z, max_samples=len(z)))
    sample = model_frame(data, SPEC).iloc[:500]
    scores, phi, base = explain.explain(model, sample, background=background)
    per_column = reference(columns.transform(sample)).values
    owners = explain._column_owners(columns, NAMES)
    summed = np.stack([per_column[:, owners == j].sum(axis=1) for j in range(len(NAMES))], 1)
    np.testing.assert_allclose(phi, summed, rtol=0, atol=1e-6)
    assert np.abs(phi.sum(axis=1) + base - _log_odds(scores)).max() < 1e-6


def test_a_risky_level_makes_its_feature_a_reason_and_an_undeclared_level_scores_as_other(
    data, logreg
):
    model, background = logreg
    rows = data.iloc[:200].copy()
    rows["region"] = RISKY
    _, phi, _ = explain.explain(model, model_frame(rows, SPEC), background=background)
    reasons = explain.top_reasons(phi, NAMES)
    named = {r for col in reasons[0::2] for r in col.to_pylist()}
    assert "region" in named and not any(n.startswith("region_") for n in named - {None})
    risky, _, _ = explain.explain(model, model_frame(rows, SPEC), background=background)
    rows["region"] = "mars"  # no level: every one-hot column 0, the model's "other"
    assert np.isnan(model_frame(rows, SPEC)["region"]).all()
    other, _, _ = explain.explain(model, model_frame(rows, SPEC), background=background)
    rows["region"] = None  # what "no level" means to the model: as if not given
    missing, _, _ = explain.explain(model, model_frame(rows, SPEC), background=background)
    assert np.array_equal(other, missing) and not np.allclose(other, risky)


def test_tree_contributions_with_one_hot_columns_add_up_per_original_feature(data):
    model, _ = training.fit_and_evaluate(data, spec=SPEC, algorithm="hgb", seed=0)
    sample = model_frame(data, SPEC).iloc[:300]
    scores, phi, base = explain.explain(model, sample, background=None)
    assert phi.shape == (300, len(NAMES))
    assert np.abs(phi.sum(axis=1) + base - _log_odds(scores)).max() < 1e-6


def test_unseen_categories_follow_the_declared_policy():
    frame = demo_frame(50, seed=1)
    frame["region"] = pd.Series(["north"] * 48 + ["mars", None], dtype="str")
    frame["housing"] = pd.Series(["own"] * 47 + ["boat", None, "rent"], dtype="str")
    valid, rejected = validation.split_valid(frame, spec=SPEC)
    broken = set(rejected["customer_id"])
    ids = frame["customer_id"].tolist()
    assert ids[47] in broken  # housing "boat": quarantine is the default policy
    [reason] = rejected.loc[rejected["customer_id"] == ids[47], "reason"]
    assert reason.startswith("housing: isin(")
    assert ids[48] not in broken  # housing missing: nullable
    assert ids[49] in broken  # region missing: not nullable
    # region "mars" (row 48) is scored as "other", and counted
    assert validation.other_category_rows(frame[valid].reset_index(drop=True), SPEC) == 1


def test_psi_of_a_categorical_feature_is_over_its_levels_with_other_and_missing_bins(data):
    ref = drift.reference(data, ["region"], np.zeros(len(data)), categories={"region": REGIONS})
    bins = ref["region"]
    assert bins["levels"] == list(REGIONS) and len(bins["expected"]) == len(REGIONS) + 2
    assert bins["expected"][-2:] == [0.0, 0.0]  # no other, no missing at training
    same = drift.counts_of(data["region"].to_numpy(), bins)
    assert drift.psi(bins["expected"], same) < 1e-9
    shifted = np.where(data["region"].to_numpy() == "north", "mars", data["region"].to_numpy())
    moved = drift.counts_of(shifted, bins)
    assert moved[-2] == (data["region"] == "north").sum()  # counted as other
    assert drift.psi(bins["expected"], moved) > 0.25


def test_partial_dependence_of_a_categorical_feature_is_a_bar_per_level(data, logreg):
    model, _ = logreg
    frame = importance.partial_dependence_frame(
        model, model_frame(data, SPEC).iloc[:800], ["region"], levels={"region": REGIONS}
    )
    assert frame["grid_label"].tolist() == list(REGIONS)
    assert frame["grid_value"].tolist() == [0.0, 1.0, 2.0, 3.0]
    by_level = dict(zip(frame["grid_label"], frame["average"], strict=True))
    assert max(by_level, key=by_level.get) == RISKY


def test_levels_are_looked_up_by_index_with_nan_for_missing_and_undeclared():
    values = pd.Series(["south", None, "mars", "north", "west"], dtype="str")
    np.testing.assert_array_equal(level_codes(values, REGIONS), [1, np.nan, np.nan, 0, 3])
    frame = pd.DataFrame({"region": values, "x": [1.0, 2, 3, 4, 5]})
    spec = dataclasses.replace(
        SPEC, features=(Feature("x"), Feature("region", "categorical", categories=REGIONS))
    )
    out = model_frame(frame, spec)
    assert list(out.columns) == ["x", "region"] and frame["region"].dtype == "str"  # untouched
    numeric_only = dataclasses.replace(spec, features=(Feature("x"),))
    assert model_frame(frame, numeric_only).equals(frame[["x"]])  # nothing to look up


def test_level_counts_keep_a_bin_for_every_declared_level_also_the_absent_last_ones():
    """Kills mutmut's survivor in level_counts (bincount without minlength): levels no
    value holds, the last ones included, keep their zero bins before other and missing."""
    values = pd.Series(["north", "north", "south", None, "mars"], dtype="str")
    counts = drift.level_counts(values, REGIONS)
    assert counts.tolist() == [2.0, 1.0, 0.0, 0.0, 1.0, 1.0]  # 4 levels, other, missing
    arrow = drift.level_counts(pa.array(["west", None]), REGIONS)
    assert arrow.tolist() == [0.0, 0.0, 0.0, 1.0, 0.0, 1.0]


def test_a_one_row_reference_gives_that_rows_level_the_whole_share():
    ref = drift._level_reference(pd.Series(["east"], dtype="str"), REGIONS)
    assert ref["expected"] == [0.0, 0.0, 1.0, 0.0, 0.0, 0.0]


def test_rows_scored_as_other_are_counted_over_every_feature_with_that_policy():
    """Two features score unseen values as "other": a row counts once whichever holds it
    (kills the survivor that kept only the last feature's rows); a feature whose unseen
    values are quarantined counts no row (kills ``and`` turned ``or``)."""
    spec = dataclasses.replace(
        SPEC,
        features=(
            *SPEC.features,
            Feature("channel", "categorical", categories=("web", "branch"), unseen="other"),
        ),
    )
    frame = demo_frame(10, seed=1).head(4).reset_index(drop=True)
    frame["region"] = pd.Series(["mars", "north", "north", "venus"], dtype="str")
    frame["housing"] = pd.Series(["own", "own", "boat", "own"], dtype="str")  # quarantined
    frame["channel"] = pd.Series(["web", "phone", "web", "fax"], dtype="str")
    assert validation.other_category_rows(frame, spec) == 3  # rows 0 and 3 (region), 1 (channel)
