"""PSI drift against the training data: the arithmetic, and a planted shift in the demo."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from credit_batch import errors, pipeline
from credit_batch.steps import drift
from tests.conftest import make_settings, query, run_pipeline

pytestmark = pytest.mark.unit

NEWEST = dt.date(2026, 10, 31)


def test_psi_is_zero_for_identical_samples_and_large_for_a_shifted_one():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=20_000)})
    frame.loc[::9, "x"] = np.nan
    ref = drift.reference(frame, ["x"], rng.random(20_000))["x"]
    same = drift.psi(ref["expected"], drift.histogram(frame["x"].to_numpy(), ref["edges"]))
    shifted = drift.psi(ref["expected"], drift.histogram(frame["x"].to_numpy() + 1, ref["edges"]))
    assert same == pytest.approx(0.0, abs=1e-12)
    assert shifted > 0.25 and drift.band(shifted) == "act"
    assert (drift.band(0.05), drift.band(0.1), drift.band(0.2)) == ("stable", "watch", "watch")


def test_bins_of_a_count_feature_keep_its_discrete_values_apart():
    frame = pd.DataFrame({"n": np.repeat([0.0, 1.0, 2.0, 7.0], [700, 200, 90, 10])})
    ref = drift.reference(frame, ["n"], np.zeros(1_000))["n"]
    assert ref["expected"][-1] == 0.0  # no missing values
    assert drift.psi(ref["expected"], drift.histogram(np.zeros(1_000), ref["edges"])) > 0.25


@pytest.fixture
def drifted(tmp_path):
    settings = make_settings(tmp_path)
    written = pipeline.demo_data(settings, rows=3_000, snapshots=4, seed=7, plant_drift=True)
    record = pipeline.train(settings, until=written[-3]["snapshot_date"], seed=1)
    return settings, record


def test_drift_table_flags_the_planted_shift_and_only_it(drifted):
    settings, record = drifted
    run_pipeline(settings, snapshot_date="2026-09-30", model_version=record.model_version)
    run_pipeline(settings, snapshot_date=NEWEST.isoformat(), model_version=record.model_version)
    rows = query(settings, "SELECT snapshot_date, feature, psi, band FROM drift")
    by = {(r["snapshot_date"], r["feature"]): r for r in rows}
    assert len(rows) == 2 * 14  # 13 features and the score, two runs
    assert by[(NEWEST, "revolving_unsecured_line_utilization")]["band"] == "act"
    assert by[(NEWEST, "score")]["psi"] > 0.1
    before = [r for (d, f), r in by.items() if d == dt.date(2026, 9, 30)]
    assert all(r["band"] == "stable" for r in before), before
    runs = {r["snapshot_date"]: r for r in query(settings, "SELECT * FROM scoring_runs")}
    assert runs[dt.date(2026, 9, 30)]["drift_status"] == "stable"
    assert runs[NEWEST]["score_psi"] == by[(NEWEST, "score")]["psi"]


def test_fail_on_drift_refuses_the_load_when_the_score_drifted_and_writes_nothing(drifted):
    settings, record = drifted
    with pytest.raises(errors.DriftError, match="act band") as info:
        run_pipeline(
            settings,
            snapshot_date=NEWEST.isoformat(),
            model_version=record.model_version,
            fail_on_drift=True,
        )
    assert info.value.psi > 0.25
    assert query(settings, "SELECT * FROM predictions") == []
    assert query(settings, "SELECT * FROM drift") == []


def test_histogram_counts_equal_searchsorted_bins_with_ties_and_missing_values():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 12, size=5_000).astype(float)
    x[::9] = np.nan
    edges = np.array([1.0, 2.0, 4.0, 7.0, 10.0])  # many values sit exactly on an edge
    present = x[~np.isnan(x)]
    want = np.bincount(np.searchsorted(edges, present, side="left"), minlength=edges.size + 1)
    got = drift.histogram(x, edges)
    assert got.tolist() == [*want.tolist(), float(np.isnan(x).sum())]
