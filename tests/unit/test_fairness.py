"""Fair-lending tests: group metrics equal fairlearn's and a hand count, a planted disparity
fails the min_air gate, a testing-only attribute never reaches the model."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from credit_batch import lifecycle
from credit_batch.errors import SpecError
from credit_batch.features import default_spec, load_spec
from credit_batch.steps import fairness
from credit_batch.stores import warehouse
from tests.conftest import query, run_pipeline

NEWEST = dt.date(2026, 10, 31)


def _sample(n=4000, seed=3):
    rng = np.random.default_rng(seed)
    groups = rng.choice(np.array(["a", "b", "c", None], dtype=object), n, p=[0.5, 0.3, 0.15, 0.05])
    scores = rng.beta(2, 18, n) + np.where(groups == "b", 0.04, 0.0)
    labels = (rng.random(n) < scores).astype(int)
    return scores, groups, labels


@pytest.mark.unit
def test_group_metrics_equal_fairlearn_computed_apart_and_the_air_a_hand_count():
    from fairlearn.metrics import MetricFrame, selection_rate

    scores, groups, labels = _sample()
    rows = fairness.group_metrics(scores, groups, attribute="g", reference="a", cutoff=0.1,
                                  labels=labels, n_boot=0)  # fmt: skip
    assert [r["group_value"] for r in rows] == ["a", "(missing)", "b", "c"]
    named = np.array(["(missing)" if g is None else g for g in groups])
    approve = (scores <= 0.1).astype(int)
    approved = MetricFrame(
        metrics=selection_rate, y_true=labels, y_pred=approve, sensitive_features=named
    )
    for row in rows:
        mine = named == row["group_value"]
        assert row["customers"] == mine.sum()
        assert row["approval_rate"] == approved.by_group[row["group_value"]]
        hand = (scores[mine] <= 0.1).sum() / mine.sum()
        reference = (scores[named == "a"] <= 0.1).sum() / (named == "a").sum()
        assert row["air"] == pytest.approx(hand / reference, rel=1e-15)
        assert row["roc_auc"] == roc_auc_score(labels[mine], scores[mine])
        fpr, tpr, _ = roc_curve(labels[mine], scores[mine])
        assert row["ks"] == np.max(tpr - fpr)
        assert row["bad_rate"] == labels[mine].mean() and row["mean_score"] == scores[mine].mean()
    assert rows[0]["is_reference"] and rows[0]["air"] == 1.0
    assert fairness.failed_air(rows, 0.8) == ["g=b " + f"{rows[2]['air']:.4f}"]


@pytest.mark.unit
def test_bootstrap_intervals_hold_their_estimate_and_narrow_with_more_rows():
    widths = []
    for n in (2000, 20000):
        scores, groups, labels = _sample(n)
        rows = fairness.group_metrics(scores, groups, attribute="g", reference="a", cutoff=0.1,
                                      labels=labels, n_boot=200, seed=1)  # fmt: skip
        for r in rows:
            for name in ("approval_rate", "air", "roc_auc", "ks"):
                assert r[f"{name}_low"] <= r[name] <= r[f"{name}_high"], (n, r["group_value"], name)
        widths.append(rows[2]["roc_auc_high"] - rows[2]["roc_auc_low"])
        again = fairness.group_metrics(scores, groups, attribute="g", reference="a", cutoff=0.1,
                                       labels=labels, n_boot=200, seed=1)  # fmt: skip
        assert again == rows  # seeded: the same intervals on every run
    assert widths[1] < widths[0] / 2  # ten times the rows: about a third of the width


@pytest.mark.unit
def test_a_reference_group_without_rows_leaves_the_ratios_unknown_and_fails_the_gate():
    scores, groups, _ = _sample()
    rows = fairness.group_metrics(scores, groups, attribute="g", reference="z", cutoff=0.1)
    assert all(r["air"] is None and not r["is_reference"] for r in rows)
    assert fairness.failed_air(rows, 0.8) == ["g: unknown (no rows of its reference group)"]


@pytest.mark.unit
def test_an_attribute_for_testing_only_used_as_a_feature_is_refused_naming_it(tmp_path):
    import shutil

    from credit_batch.config import EXAMPLE_SPECS

    folder = tmp_path / "gmsc"
    shutil.copytree(EXAMPLE_SPECS["gmsc"].parent, folder)
    text = (folder / "spec.toml").read_text()
    text = text.replace('attribute = "demo_group"', 'attribute = "age"')
    (folder / "spec.toml").write_text(text)
    with pytest.raises(SpecError) as caught:
        load_spec(folder / "spec.toml")
    assert caught.value.field == "fairness[0].attribute" and caught.value.value == "age"
    assert "must never be a model input" in str(caught.value)


@pytest.mark.unit
def test_the_night_stores_approval_and_air_by_group_equal_to_a_hand_count(demo):
    settings, _, record = demo
    out = run_pipeline(settings, snapshot_date=NEWEST, repeats=1)
    run = out["plan"].run
    assert run.spec.fairness and "demo_group" not in run.features  # never a model input
    stored = query(
        settings,
        "SELECT group_value, is_reference, customers, approval_rate, air, cutoff FROM fairness "
        "WHERE kind = 'night' AND snapshot_date = :d ORDER BY is_reference DESC, group_value",
        {"d": NEWEST},
    )
    scores = {r["customer_id"]: r["score"] for r in query(
        settings, "SELECT customer_id, score FROM predictions WHERE snapshot_date = :d",
        {"d": NEWEST})}  # fmt: skip
    with warehouse.open_warehouse(settings) as wh:
        groups = wh.fetch_arrow(
            "SELECT customer_id, demo_group FROM features WHERE snapshot_date = :d", {"d": NEWEST}
        ).to_pylist()
    by = {}
    for g in groups:
        if g["customer_id"] in scores:
            by.setdefault(g["demo_group"], []).append(scores[g["customer_id"]])
    assert [r["group_value"] for r in stored] == ["group_a", "group_b"]
    assert sum(r["customers"] for r in stored) == len(scores)
    rate = {k: sum(s <= 0.1 for s in v) / len(v) for k, v in by.items()}
    for r in stored:
        assert r["customers"] == len(by[r["group_value"]]) and r["cutoff"] == 0.1
        assert r["approval_rate"] == rate[r["group_value"]]
        assert r["air"] == pytest.approx(rate[r["group_value"]] / rate["group_a"], rel=1e-15)
    reasons = query(settings, "SELECT DISTINCT feature FROM adverse_action")
    assert reasons and all(r["feature"] in run.features for r in reasons)


def _plant_disparity(settings, date):
    """Put every risky customer of ``date`` (a late payment, a high utilization) into
    group_b and the others into group_a: group_b's approvals fall far below four fifths."""
    with warehouse.open_warehouse(settings, read_only=False) as wh:
        wh.execute(
            "UPDATE features SET demo_group = CASE WHEN num_30_59_days_late > 0 "
            "OR revolving_unsecured_line_utilization > 0.7 THEN 'group_b' ELSE 'group_a' END "
            "WHERE snapshot_date = :d",
            {"d": date},
        )


@pytest.mark.unit
def test_a_planted_disparity_fails_min_air_naming_the_group_and_the_card_shows_it(demo):
    settings, written, _ = demo
    passed = lifecycle.train_candidate(settings, cutoff=NEWEST, algorithm="lgbm")
    assert "min_air" not in passed.gate_status  # the demo's groups: AIR near 1
    _plant_disparity(settings, dt.date(2026, 9, 30))  # the validation snapshot
    failed = lifecycle.train_candidate(settings, cutoff=NEWEST, algorithm="hgb")
    assert "min_air: adverse impact ratio demo_group=group_b 0." in failed.gate_status
    assert failed.gate_status.endswith("< 0.8")
    rows = query(settings, "SELECT * FROM fairness WHERE kind = 'validation' AND model_version = "
                 ":v ORDER BY is_reference DESC", {"v": failed.model_version})  # fmt: skip
    validation = json.loads(failed.validation)
    assert [r["air"] for r in rows] == [r["air"] for r in validation["fairness"]]
    assert rows[1]["air"] < 0.8 and rows[1]["roc_auc"] is not None
    card = (settings.home / "models" / failed.model_version / "model_card.html").read_text()
    assert "<table id='fairness'>" in card and "group_b" in card


@pytest.mark.unit
def test_the_attributes_query_reads_only_the_key_and_the_attributes():
    sql = default_spec().attributes_query()
    assert sql.startswith("SELECT f.customer_id AS customer_id,\n    f.demo_group\nFROM features")
    assert "revolving" not in sql and ":snapshot_date" in sql


def _proxy_book(n: int, seed: int):
    """A book where ``proxy`` tracks the protected group and, less, risk: the model leans
    on it, and the group's approvals fall with it."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    group = np.where(rng.random(n) < 0.3, "b", "a")
    risk = rng.standard_normal(n)
    proxy = (group == "b") * 1.5 + 0.8 * risk + rng.normal(0, 0.5, n)
    signal = risk + rng.normal(0, 1.0, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(-2.6 + 1.2 * risk)))).astype(int)
    frame = pd.DataFrame({"snapshot_date": dt.date(2026, 1, 31), "customer_id": np.arange(n),
                          "signal": signal, "proxy": proxy, "noise": rng.standard_normal(n),
                          "bad": y})  # fmt: skip
    return frame, group


@pytest.mark.unit
def test_the_search_names_the_proxy_first_and_dropping_it_lifts_the_air_on_the_frontier():
    from credit_batch.features import FairnessAttribute, Feature, FeatureSpec
    from credit_batch.steps import alternatives

    spec = FeatureSpec(
        features=tuple(Feature(n, direction="increases") for n in ("signal", "proxy", "noise")),
        name="proxied", target="bad", fairness=(FairnessAttribute("group", "a"),),
    )  # fmt: skip
    train, _ = _proxy_book(6000, seed=1)
    valid, group = _proxy_book(4000, seed=2)
    found = alternatives.search_alternatives(
        train, valid, {"group": group}, spec=spec, algorithm="logreg", seed=0, cutoff=0.1, top=2
    )
    by = {v["variant"]: v for v in found}
    assert list(by)[:3] == ["baseline", "drop proxy", "cap proxy"]  # the first driver: proxy
    base, dropped = by["baseline"], by["drop proxy"]
    assert base["min_air"] < 0.6 and dropped["min_air"] > 0.95  # the proxy made the disparity
    assert base["roc_auc"] - 0.05 < dropped["roc_auc"] < base["roc_auc"]  # at some cost
    assert dropped["features"] == 2
    assert dropped["frontier"] and base["frontier"]  # neither beats the other on both
    air = {v["variant"]: -1.0 if v["min_air"] is None else v["min_air"] for v in found}
    beaten = {v["variant"] for v in found for o in found
              if o["roc_auc"] > v["roc_auc"] and air[o["variant"]] > air[v["variant"]]}  # fmt: skip
    assert beaten and all(v["frontier"] == (v["variant"] not in beaten) for v in found)


@pytest.mark.unit
def test_fairness_search_on_the_demo_lists_the_baseline_and_writes_nothing(demo, monkeypatch):
    import contextlib
    import io

    from credit_batch import cli
    from tests.conftest import stored_state

    settings, _, _ = demo
    before = stored_state(settings)
    monkeypatch.setenv("CREDIT_BATCH_HOME", str(settings.home))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["fairness-search", "--cutoff", str(NEWEST), "--top", "1", "--json"])
    assert code == 0
    found = json.loads(out.getvalue())
    assert found["validation_date"] == "2026-09-30" and found["cutoff"] == 0.1
    assert [v["variant"] for v in found["variants"]][0] == "baseline"
    assert len(found["variants"]) in (2, 3)  # the driver dropped, and capped where it can be
    assert stored_state(settings) == before
