"""Chunked scoring equals whole-frame scoring; importance finds a planted feature."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from credit_batch import sampling
from credit_batch.features import DEFAULT_FEATURE_SPEC, Feature, FeatureSpec
from credit_batch.steps import importance, scoring, training
from credit_batch.steps.explain import linear_background
from tests.conftest import demo_frame

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A model fitted on a small demo snapshot, and one extracted-like partition file."""
    frame = demo_frame(5_000)
    model, _ = training.fit_and_evaluate(frame, seed=0)
    path = tmp_path_factory.mktemp("part") / "features.parquet"
    pq.write_table(
        pa.Table.from_pandas(frame.drop(columns="delinquency"), preserve_index=False), path
    )
    return model, frame, path


@pytest.mark.parametrize("algorithm", ["logreg", "hgb"])
def test_scores_in_chunks_of_1000_equal_scores_of_the_whole_frame(tmp_path, fitted, algorithm):
    _, frame, path = fitted
    model, _ = training.fit_and_evaluate(frame, algorithm=algorithm, seed=0)
    names = DEFAULT_FEATURE_SPEC.names
    background = linear_background(model, frame[names]) if algorithm == "logreg" else None
    out = tmp_path / "scores.parquet"
    n = scoring.score_file(
        path,
        out,
        model,
        feature_names=DEFAULT_FEATURE_SPEC.names,
        model_version="v1",
        run_id="r1",
        chunk_rows=1_000,
        background=background,
    )
    scored = pq.read_table(out).to_pandas()
    rejected = pq.read_table(out.with_suffix(".quarantine.parquet")).to_pandas()
    keep = ~frame["customer_id"].isin(rejected["customer_id"])
    whole = model.predict_proba(frame.loc[keep, DEFAULT_FEATURE_SPEC.names])[:, 1]
    assert (n["rows_scored"], n["rows_quarantined"]) == (len(scored), len(rejected))
    assert len(n["shap_abs_sum"]) == len(names) and min(n["shap_abs_sum"]) >= 0
    assert len(scored) + len(rejected) == len(frame) and 0 < len(rejected) < 30
    np.testing.assert_array_equal(scored["customer_id"], frame.loc[keep, "customer_id"])
    np.testing.assert_allclose(scored["score"], whole, rtol=0, atol=1e-12)
    assert set(scored["model_version"]) == {"v1"} and set(scored["run_id"]) == {"r1"}


def test_risk_bands_follow_the_upper_bounds():
    scores = np.array([0.0, 0.02, 0.0201, 0.05, 0.1, 0.15, 0.2, 0.99, 1.0])
    assert scoring.risk_bands(scores).to_pylist() == ["A", "A", "B", "B", "C", "D", "D", "E", "E"]


def test_partition_missing_a_model_column_is_refused_naming_it(tmp_path, fitted):
    model, frame, _ = fitted
    path = tmp_path / "bad.parquet"
    pq.write_table(
        pa.Table.from_pandas(frame.drop(columns=["age", "delinquency"]), preserve_index=False), path
    )
    from credit_batch.errors import SchemaMismatchError

    with pytest.raises(SchemaMismatchError, match="'age'"):
        scoring.score_file(
            path,
            tmp_path / "out.parquet",
            model,
            feature_names=DEFAULT_FEATURE_SPEC.names,
            model_version="v1",
            run_id="r",
            chunk_rows=100,
        )
    assert not (tmp_path / "out.parquet").exists()


def _planted(n: int, seed: int):
    """A model fitted on a strong, a weak and a pure-noise feature: ``(model, x, y)``."""
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {"noise": rng.normal(size=n), "strong": rng.normal(size=n), "weak": rng.normal(size=n)}
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-(3 * x["strong"] + 0.5 * x["weak"] - 1)))).astype(int)
    spec = FeatureSpec(features=tuple(Feature(c, "float64", c) for c in x.columns), target="y")
    return training.build_model(spec, seed=0).fit(x, y), x, y


def test_permutation_importance_ranks_planted_feature_first_and_noise_near_zero():
    model, x, y = _planted(4_000, seed=0)
    frame = importance.permutation_importance_frame(model, x, y, n_repeats=5, seed=0)
    ranked = frame.set_index("feature")
    assert frame["feature"].tolist()[0] == "strong"
    assert ranked.loc["strong", "importance_mean"] > 0.2
    assert abs(ranked.loc["noise", "importance_mean"]) < 0.01
    assert ranked.loc["weak", "importance_rank"] == 2
    assert frame["importance_rank"].tolist() == [1, 2, 3]


def test_importance_refuses_labels_of_one_class():
    from credit_batch.errors import ParameterError

    x = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    with pytest.raises(ParameterError, match="both classes"):
        importance.permutation_importance_frame(None, x, np.zeros(3), n_repeats=2)


def test_unlabeled_importance_ranks_the_feature_that_moves_the_score_first():
    model, x, _ = _planted(3_000, seed=1)
    frame = importance.unlabeled_importance_frame(model, x, n_repeats=3, seed=0).set_index(
        "feature"
    )
    assert frame["importance_rank"].to_dict() == {"strong": 1, "weak": 2, "noise": 3}
    assert frame.loc["strong", "importance_mean"] > 0.1
    assert frame.loc["noise", "importance_mean"] < 0.01
    assert (frame["baseline_score"] == 0).all()


def test_unlabeled_importance_scores_sklearn_shuffles_in_one_batch_to_the_same_numbers():
    """The shuffled copies are scikit-learn's own (its seeds, its order), scored in one
    model call instead of one per shuffle: equal to permutation_importance scoring each."""
    from sklearn.inspection import permutation_importance

    model, x, _ = _planted(3_000, seed=2)
    reference = model.predict_proba(x)[:, 1]

    def change(m, xp, ref) -> float:
        return -float(np.mean(np.abs(m.predict_proba(xp)[:, 1] - ref)))

    want = permutation_importance(
        model, x, reference, scoring=change, n_repeats=4, random_state=5, n_jobs=1
    )
    calls = []

    class Counted:
        def fit(self, *_):  # what permutation_importance checks the estimator has
            return self

        def predict_proba(self, frame):
            calls.append(len(frame))
            return model.predict_proba(frame)

    got = importance.unlabeled_importance_frame(Counted(), x, n_repeats=4, seed=5)
    got = got.set_index("feature").loc[list(x.columns)]
    assert np.allclose(got["importance_mean"], want.importances_mean, rtol=0, atol=1e-12)
    assert np.allclose(got["importance_std"], want.importances_std, rtol=0, atol=1e-12)
    assert calls == [3_000, 3 * 4 * 3_000]  # the reference, then every shuffle at once
    calls.clear()
    one = x.assign(noise=x["noise"].iloc[0])  # one value (a segment's own column)
    got = importance.unlabeled_importance_frame(Counted(), one, n_repeats=4, seed=5)
    assert got.set_index("feature").loc["noise", "importance_mean"] == 0.0
    assert calls == [3_000, 2 * 4 * 3_000]  # its shuffles change nothing: not scored


def _id_batches(ids: np.ndarray, size: int):
    for start in range(0, len(ids), size):
        chunk = ids[start : start + size]
        x = pa.array(np.arange(start, start + len(chunk)) * 2.0)
        yield pa.record_batch({"customer_id": pa.array(chunk), "x": x})


@pytest.mark.parametrize("key", ["integer", "string"])
def test_the_sample_is_the_same_customers_whatever_the_batches_and_uniform(key):
    ids = np.random.default_rng(4).permutation(60_000).astype(np.int64)
    ids = ids if key == "integer" else ids.astype(str).astype(object)
    position = {c: i for i, c in enumerate(ids.tolist())}

    def customers(table) -> list:
        return table.column("customer_id").to_pylist()

    small = sampling.sample_batches(_id_batches(ids, 700), n=1_000, seed=3)
    whole = sampling.sample_batches(_id_batches(ids, 60_000), n=1_000, seed=3)
    assert small.num_rows == 1_000 and len(set(customers(small))) == 1_000
    assert customers(small) == customers(whole)  # the batches' sizes change nothing
    other = sampling.sample_batches(_id_batches(ids, 700), n=1_000, seed=4)
    assert len(set(customers(other)) & set(customers(small))) < 100  # another seed, others
    assert small.column("x").to_pylist() == [2.0 * position[c] for c in customers(small)]
    rows = np.array([position[c] for c in customers(small)])  # uniform over the positions
    assert abs(rows.mean() - 30_000) < 4 * 60_000 / np.sqrt(12 * 1_000)


def test_the_sample_never_holds_much_more_than_n_rows(monkeypatch):
    held, trim = [], sampling._smallest

    def watched(batches, keys, n):
        held.append(sum(map(len, keys)))
        return trim(batches, keys, n)

    monkeypatch.setattr(sampling, "_smallest", watched)
    ids = np.arange(200_000, dtype=np.int64)
    table = sampling.sample_batches(_id_batches(ids, 5_000), n=500, seed=0)
    assert table.num_rows == 500
    assert held and max(held) <= 4 * 500 + 5_000  # never the 200,000 rows
    assert sampling.sample_batches(iter(()), n=10, seed=0) is None


def test_a_labeled_range_over_the_whole_read_bound_is_read_as_a_seeded_sample(demo, monkeypatch):
    """Training and validation on a big book read a sample as the rows stream, not the book."""
    from credit_batch.stores import warehouse

    settings, written, _ = demo
    date = written[0]["snapshot_date"]
    with warehouse.open_warehouse(settings) as wh:
        whole = warehouse.read_labeled(wh, DEFAULT_FEATURE_SPEC, date, date)
        monkeypatch.setattr(warehouse, "READ_WHOLE_ROWS", 500)
        first = warehouse.read_labeled(wh, DEFAULT_FEATURE_SPEC, date, date, sample_rows=700)
        again = warehouse.read_labeled(wh, DEFAULT_FEATURE_SPEC, date, date, sample_rows=700)
        asked_whole = warehouse.read_labeled(wh, DEFAULT_FEATURE_SPEC, date, date)
    assert len(whole) == 3_000 and len(asked_whole) == len(whole)  # no sample asked: all rows
    assert len(first) == 700 and first["customer_id"].is_unique
    assert first["customer_id"].tolist() == again["customer_id"].tolist()  # seeded
    by_id = whole.set_index("customer_id")
    pd.testing.assert_frame_equal(  # the rows as they are, targets included
        first.set_index("customer_id"), by_id.loc[first["customer_id"]], check_like=True
    )
