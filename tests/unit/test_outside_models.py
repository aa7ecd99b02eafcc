"""Models trained elsewhere: registered, checked, gated, shadow-scored and promoted like the
platform's own; pickles, untrusted types and models without an exact explainer refused."""

from __future__ import annotations

import datetime as dt
import json
import pickle

import numpy as np
import pytest

from credit_batch import lifecycle
from credit_batch.errors import ModelError
from credit_batch.features import default_spec
from credit_batch.steps.encoding import model_frame
from credit_batch.steps.training import read_training_rows
from tests.conftest import query, run_pipeline

pytestmark = pytest.mark.unit

UNTIL, CUTOFF, NEWEST = "2026-08-31", "2026-10-31", dt.date(2026, 10, 31)


def _rows(settings):
    spec = default_spec()
    frame = read_training_rows(settings, spec, until=UNTIL, max_rows=6000, seed=5)
    return model_frame(frame, spec), frame[spec.target].to_numpy()


def _lightgbm(settings, path, *, flip: str | None = None):
    """A team's LightGBM model, monotone in each feature's declared direction (``flip``:
    one feature trained on its values mirrored within their range, so that the model's
    risk moves against its declared direction)."""
    import lightgbm

    x, y = _rows(settings)
    signs = {"increases": 1, "decreases": -1}
    constraints = [signs.get(f.direction, 0) for f in default_spec().features]
    if flip is not None:
        x = x.assign(**{flip: x[flip].max() + x[flip].min() - x[flip]})  # mirrored in range
        constraints = [0 if n == flip else c for n, c in zip(x.columns, constraints, strict=True)]
    model = lightgbm.LGBMClassifier(n_estimators=60, num_leaves=7, verbose=-1, random_state=0,
                                    monotone_constraints=constraints).fit(x, y)  # fmt: skip
    model.booster_.save_model(str(path))
    return model


def _skops(model, path):
    import skops.io

    skops.io.dump(model, path)
    return path


def test_a_lightgbm_model_is_registered_shadow_scored_promoted_and_explained_as_shap_does(
    demo, tmp_path
):
    import shap

    settings, _, champion = demo
    booster = _lightgbm(settings, tmp_path / "team.txt").booster_
    record = lifecycle.register_outside(
        settings, tmp_path / "team.txt", cutoff=CUTOFF, trained_until=UNTIL, actor="team"
    )
    assert record.algorithm == "outside-lgbm" and record.model_version.startswith("outside-lgbm-")
    assert record.gate_status == "passed" and record.role == "challenger", record.gate_status
    assert str(record.validation_date) == "2026-09-30" and record.model_card
    [registered] = [e for e in lifecycle.events(settings, record.model_version)
                    if e["event"] == "registered"]  # fmt: skip
    source = json.loads(registered["details"])["source"]
    assert source["explainer"] == "TreeSHAP (LightGBM)" and len(source["sha256"]) == 64
    run_pipeline(settings, snapshot_date=NEWEST, repeats=1)  # the challenger in shadow
    shadow = query(settings, "SELECT COUNT(*) AS n FROM predictions WHERE model_version = :v",
                   {"v": record.model_version})  # fmt: skip
    assert shadow[0]["n"] > 0
    lifecycle.promote(settings, record.model_version, reason="the team's model", actor="risk")
    run_pipeline(settings, snapshot_date=NEWEST, repeats=1)
    stored = query(
        settings,
        "SELECT customer_id, score, reason_1, reason_1_value FROM predictions "
        "WHERE model_version = :v AND snapshot_date = :d ORDER BY customer_id LIMIT 200",
        {"v": record.model_version, "d": NEWEST},
    )
    from credit_batch.stores import warehouse

    with warehouse.open_warehouse(settings) as wh:
        rows = wh.fetch_arrow(default_spec().query("features"), {"snapshot_date": NEWEST})
    frame = rows.to_pandas().set_index("customer_id").loc[[s["customer_id"] for s in stored]]
    x = model_frame(frame, default_spec())
    phi = shap.TreeExplainer(booster).shap_values(x)
    phi = phi[-1] if isinstance(phi, list) else phi
    names = default_spec().names
    for i, s in enumerate(stored):
        best = int(np.argmax(phi[i]))
        assert s["reason_1"] == names[best]
        assert abs(s["reason_1_value"] - phi[i, best]) < 1e-6


def test_gradient_boosting_saved_with_skops_is_registered_with_shaps_treeshap(demo, tmp_path):
    from sklearn.ensemble import HistGradientBoostingClassifier

    settings, _, _ = demo
    x, y = _rows(settings)
    boosted = HistGradientBoostingClassifier(max_iter=40, random_state=0).fit(x, y)
    record = lifecycle.register_outside(
        settings, _skops(boosted, tmp_path / "boosted.skops"), cutoff=CUTOFF, trained_until=UNTIL
    )
    assert record.algorithm == "outside-sklearn" and record.validation_date is not None
    assert "min_auc" not in (record.gate_status or "")  # a real model: it ranks risk
    [registered] = [e for e in lifecycle.events(settings, record.model_version)
                    if e["event"] == "registered"]  # fmt: skip
    assert json.loads(registered["details"])["source"]["explainer"] == "TreeSHAP (shap)"


def test_a_model_that_breaks_a_declared_direction_is_registered_but_fails_its_gates(demo, tmp_path):
    settings, _, _ = demo
    _lightgbm(settings, tmp_path / "odd.txt", flip="age")  # age is declared "decreases"
    record = lifecycle.register_outside(
        settings, tmp_path / "odd.txt", cutoff=CUTOFF, trained_until=UNTIL
    )
    assert record.role == "candidate"
    assert "directions: age: declared decreases, but the mean score rises by" in record.gate_status


def test_pickles_untrusted_types_unknown_files_and_other_flavours_are_refused_by_name(tmp_path):
    from sklearn.neighbors import KNeighborsClassifier

    from credit_batch.stores.outside import read_outside

    knn = KNeighborsClassifier().fit(np.random.default_rng(0).random((30, 3)), [0, 1] * 15)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(knn))
    (tmp_path / "renamed.bin").write_bytes(pickle.dumps(knn))
    (tmp_path / "model.bin").write_bytes(b"\x00\x01 not a model")
    (tmp_path / "xgb.json").write_text('{"learner": {"attributes": {}}, "version": [2, 1, 0]}')
    (tmp_path / "mlflow").mkdir()
    (tmp_path / "mlflow" / "MLmodel").write_text("flavors: {}\n")
    cases = {
        "model.pkl": "is a pickle: loading one runs any code it holds",
        "renamed.bin": "is a pickle",
        "knn.skops": "holds types the registry does not trust: "
        "sklearn.metrics._dist_metrics.EuclideanDistance64, sklearn.neighbors._kd_tree.KDTree",
        "model.bin": "is of an unknown kind",
        "xgb.json": "is an XGBoost JSON model: not supported by this release",
        "mlflow": "is an MLflow model directory: not supported by this release",
        "missing.skops": "does not exist",
    }
    _skops(knn, tmp_path / "knn.skops")
    for name, rule in cases.items():
        with pytest.raises(ModelError) as caught:
            read_outside(tmp_path / name)
        assert str(caught.value).startswith(f"model file {tmp_path / name}: {rule}"), name
        assert pickle.loads(pickle.dumps(caught.value)).rule == caught.value.rule


def test_a_model_without_an_exact_explainer_is_refused_with_its_measured_cost(demo, tmp_path):
    from sklearn.ensemble import RandomForestClassifier

    from tests.conftest import stored_state

    settings, _, _ = demo
    x, y = _rows(settings)
    model = RandomForestClassifier(10, max_depth=4, random_state=0, n_jobs=1).fit(x, y)
    before = stored_state(settings)
    with pytest.raises(ModelError) as caught:
        lifecycle.register_outside(settings, _skops(model, tmp_path / "rf.skops"), cutoff=CUTOFF,
                                   trained_until=UNTIL)  # fmt: skip
    message = str(caught.value)
    assert "has no exact explainer (a RandomForestClassifier); shap's model-agnostic" in message
    assert "ms per row here" in message and "for 2,000,000 customers a night" in message
    assert caught.value.ms_per_row > 0 and stored_state(settings) == before


def test_a_model_reading_other_features_or_validated_in_sample_is_refused(demo, tmp_path):
    settings, _, _ = demo
    x, y = _rows(settings)
    import lightgbm

    reordered = x[list(reversed(x.columns))]
    lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(reordered, y).booster_.save_model(
        str(tmp_path / "reordered.txt")
    )
    with pytest.raises(ModelError, match=r"reads the features \['missing_num_dependents'"):
        lifecycle.register_outside(settings, tmp_path / "reordered.txt", cutoff=CUTOFF,
                                   trained_until=UNTIL)  # fmt: skip
    _lightgbm(settings, tmp_path / "team.txt")
    with pytest.raises(Exception, match="must be before the validation snapshot 2026-09-30"):
        lifecycle.register_outside(settings, tmp_path / "team.txt", cutoff=CUTOFF,
                                   trained_until="2026-09-30")  # fmt: skip
