"""The optimised pipeline stores what the straightforward path computes.

``expected_run.csv`` and ``expected_counts.json`` were written by
``make_expected.py`` (whole-frame pandera, ``predict_proba``,
``shap.LinearExplainer``, reasons sorted in plain Python) from the same demo
the ``demo`` fixture builds. The pipeline runs here in small partitions and
chunks, so chunk and partition boundaries fall inside the data, and describes
its quarantined rows a few at a time; once in this process and once with the
partitions scored by two worker processes (``credit-batch run --workers 2``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from credit_batch.config import Settings
from tests.conftest import query, run_pipeline

pytestmark = pytest.mark.e2e

HERE = Path(__file__).resolve().parent
REASONS = [f"reason_{i}" for i in (1, 2, 3)]
VALUES = [f"{r}_value" for r in REASONS]


@pytest.fixture(scope="module")
def expected():
    frame = pd.read_csv(HERE / "expected_run.csv")
    return frame, json.loads((HERE / "expected_counts.json").read_text())


@pytest.fixture(scope="module", params=[1, 2], ids=["one-process", "two-workers"])
def stored(demo_template, expected, tmp_path_factory, request):
    """One run per module and way of scoring (the tests only read it): settings, the
    run, the stored predictions and quarantine, the champion record.

    ``describe_rows=2`` is a setting, so it reaches the spawned workers too (the
    quarantine is described in several calls there as well).
    """
    import shutil

    home = tmp_path_factory.mktemp(f"golden-{request.param}") / "home"
    shutil.copytree(demo_template[0], home)
    settings = Settings(home=home, partition_rows=1_100, chunk_rows=257, describe_rows=2)
    date = expected[1]["snapshot_date"]
    done = run_pipeline(
        settings, snapshot_date=date, repeats=1, sample_rows=500, workers=request.param
    )
    predictions = pd.DataFrame(
        query(settings, "SELECT * FROM predictions WHERE snapshot_date = :d", {"d": date})
    )
    quarantine = pd.DataFrame(
        query(settings, "SELECT * FROM quarantine WHERE snapshot_date = :d", {"d": date})
    )
    return done, predictions, quarantine, settings, demo_template[2]


def test_run_counts_equal_the_stored_expected_counts(stored, expected):
    done, predictions, quarantine, _, _ = stored
    counts = expected[1]
    assert done["plan"].run.rows_in == counts["rows_in"]
    assert done["loaded"]["rows_loaded"] == len(predictions) == counts["rows_scored"]
    assert done["loaded"]["rows_quarantined"] == len(quarantine) == counts["rows_quarantined"]


def test_scores_and_reason_values_equal_the_straightforward_path(stored, expected):
    _, predictions, _, _, _ = stored
    want = expected[0].dropna(subset=["score"]).set_index("customer_id")
    got = predictions.set_index("customer_id").loc[want.index]
    # The stored expectation was computed on another machine: the same model trained on
    # another CPU (numpy's SIMD kernels differ by instruction set) moves scores by ~1e-9.
    np.testing.assert_allclose(got["score"], want["score"], rtol=1e-7, atol=0)
    for column in VALUES:
        np.testing.assert_allclose(
            got[column].astype(float), want[column], rtol=0, atol=1e-7, equal_nan=True
        )


def test_reason_codes_equal_the_straightforward_path(stored, expected):
    _, predictions, _, _, _ = stored
    want = expected[0].dropna(subset=["score"]).set_index("customer_id")
    got = predictions.set_index("customer_id").loc[want.index]
    for column in REASONS:
        mismatched = (got[column].fillna("-") != want[column].fillna("-")).sum()
        assert mismatched == 0, f"{column}: {mismatched} rows differ"


def test_quarantined_ids_and_reasons_equal_the_straightforward_path(stored, expected):
    _, _, quarantine, _, _ = stored
    want = expected[0][expected[0]["score"].isna()].set_index("customer_id")
    got = quarantine.set_index("customer_id").sort_index()
    assert got.index.tolist() == want.index.tolist()
    assert got["reason"].tolist() == want["quarantine_reason"].tolist()


def test_shap_summary_equals_the_straightforward_mean_absolute_shap(stored, expected):
    done, _, _, settings, _ = stored
    rows = query(
        settings,
        "SELECT feature, mean_abs_shap, rows_explained FROM shap_summary WHERE run_id = :r",
        {"r": done["plan"].run.run_id},
    )
    want = expected[1]["mean_abs_shap"]
    assert {r["feature"] for r in rows} == set(want)
    for r in rows:
        assert r["mean_abs_shap"] == pytest.approx(want[r["feature"]], rel=1e-7), r["feature"]
        assert r["rows_explained"] == expected[1]["rows_scored"]


#: Risk bands written out here, apart from the package: upper score bound, band.
_BANDS = [(0.02, "A"), (0.05, "B"), (0.10, "C"), (0.20, "D"), (1.0, "E")]


def test_quarantined_rows_are_exactly_the_sql_oracles_broken_rows_with_their_values(
    stored, expected
):
    """Not the package's own schema: the broken rows come from plain SQL over the warehouse."""
    from tests.conftest import broken_rows

    _, _, quarantine, settings, _ = stored
    oracle = broken_rows(settings, expected[1]["snapshot_date"])
    assert sorted(quarantine["customer_id"]) == sorted(oracle)
    for row in quarantine.itertuples():
        values = json.loads(row.offending_values)
        named = [part.split(":")[0] for part in row.reason.split("; ")]
        assert sorted(values) == sorted(set(named)), row.reason
        for column, value in values.items():
            raw = oracle[row.customer_id][column]
            assert value == raw or (value is None and raw is None), (row.customer_id, column)


def test_every_score_has_its_band_and_the_runs_lineage(stored):
    done, predictions, _, settings, record = stored
    run = done["plan"].run
    want = [next(b for bound, b in _BANDS if s <= bound) for s in predictions["score"]]
    assert predictions["risk_band"].tolist() == want
    assert set(predictions["run_id"]) == {run.run_id}
    assert set(predictions["model_version"]) == {record.model_version}
    assert {str(d)[:10] for d in predictions["snapshot_date"]} == {str(run.snapshot_date)}
