"""The demo warehouse generator reproduces the traits of "Give Me Some Credit"."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from credit_batch import demo
from credit_batch.features import DEFAULT_FEATURE_SPEC
from credit_batch.steps import training
from tests.conftest import demo_frame

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def snapshots():
    return list(demo.generate(rows=60_000, snapshots=3, seed=3))


def test_equal_seeds_give_equal_data():
    a = list(demo.generate(rows=500, snapshots=2, seed=11))
    b = list(demo.generate(rows=500, snapshots=2, seed=11))
    c = list(demo.generate(rows=500, snapshots=2, seed=12))
    assert all(x[1].equals(y[1]) for x, y in zip(a, b, strict=True))
    assert not a[0][1].equals(c[0][1])


def test_snapshots_are_month_ends_and_newest_has_no_outcomes(snapshots):
    dates = [s[0] for s in snapshots]
    assert dates == [dt.date(2026, 8, 31), dt.date(2026, 9, 30), dt.date(2026, 10, 31)]
    assert snapshots[-1][2] is None and snapshots[0][2] is not None


def test_population_has_the_real_files_traits(snapshots):
    frame = snapshots[0][1].to_pandas()
    y = snapshots[0][2].column("delinquency").to_numpy()
    assert 0.055 < y.mean() < 0.085
    assert 0.17 < frame["monthly_income"].isna().mean() < 0.23
    assert 0.015 < frame["num_dependents"].isna().mean() < 0.035
    assert frame["revolving_unsecured_line_utilization"].max() > 1_000
    assert frame["debt_ratio"].max() > 10_000
    assert frame["num_90_days_late"].isin([96, 98]).sum() > 50
    assert (frame["age"] == 0).sum() == 1


def test_most_customers_persist_with_drifting_values(snapshots):
    first, second = (s[1].to_pandas().set_index("customer_id") for s in snapshots[:2])
    common = first.index.intersection(second.index)
    assert 0.95 < len(common) / len(first) < 0.99
    moved = (
        first.loc[common, "revolving_unsecured_line_utilization"]
        != second.loc[common, "revolving_unsecured_line_utilization"]
    )
    assert moved.mean() > 0.5


def test_label_depends_on_features_like_the_real_data():
    frame = demo_frame(60_000, seed=3)
    _, metrics = training.fit_and_evaluate(frame, spec=DEFAULT_FEATURE_SPEC, seed=0)
    assert 0.82 < metrics["roc_auc"] < 0.89
    assert np.isfinite(metrics["log_loss"]) and 0.4 < metrics["ks"] < 0.7
