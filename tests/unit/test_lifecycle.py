"""The model lifecycle without Airflow: gates, audit, realized performance, backfill."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np
import pytest

from credit_batch import lifecycle, pipeline
from credit_batch.config import Gates, Scorecard, Settings
from credit_batch.errors import DataError, GateError, ParameterError
from credit_batch.run import RunOptions
from credit_batch.steps import performance
from credit_batch.stores import registry, results
from credit_batch.stores.db import connect
from tests.conftest import query, run_pipeline

pytestmark = pytest.mark.unit

VALIDATION = dt.date(2026, 9, 30)  # the demo's newest snapshot with outcomes


def _shuffle_training_labels(settings: Settings, before: dt.date, *, seed: int = 3) -> None:
    """Permute the outcomes of every snapshot before ``before`` within its snapshot."""
    db = connect(settings.warehouse_url)
    frame = db.fetch_arrow(
        "SELECT snapshot_date, customer_id, delinquency FROM outcomes ORDER BY 1, 2"
    ).to_pandas()
    rng = np.random.default_rng(seed)
    for date, rows in frame.groupby("snapshot_date"):
        if date < before:
            frame.loc[rows.index, "delinquency"] = rng.permutation(rows["delinquency"].to_numpy())
    with db.transaction():
        db.execute("DELETE FROM outcomes")
        import pyarrow as pa

        db.bulk_insert("outcomes", pa.Table.from_pandas(frame, preserve_index=False))
    db.close()


def test_candidate_trained_on_shuffled_labels_fails_its_auc_gate_and_is_no_challenger(demo):
    settings, _, champion = demo
    _shuffle_training_labels(settings, VALIDATION)
    record = lifecycle.train_candidate(settings, cutoff="2026-10-31")
    assert record.validation_date == VALIDATION
    assert record.train_until == dt.date(2026, 8, 31)  # the snapshot before validation
    assert record.gate_status.startswith("failed: min_auc: ROC AUC 0.")
    assert record.role == "candidate"
    found = json.loads(record.validation)
    # Noise coefficients over strongly predictive features rank anywhere, never well.
    assert found["roc_auc"] < settings.gates.min_auc
    with results.open_results(settings, read_only=True) as db:
        assert registry.challengers(db, settings, "gmsc") == []
    run_pipeline(settings, snapshot_date="2026-10-31", sample_rows=500, repeats=1)
    assert query(settings, "SELECT DISTINCT model_version FROM predictions") == [
        {"model_version": champion.model_version}
    ]  # never scored in shadow
    with pytest.raises(GateError, match="failed its gates"):
        lifecycle.promote(settings, record.model_version, reason="try")
    events = [e["event"] for e in lifecycle.events(settings, record.model_version)]
    assert events == ["registered", "gates_failed"]
    # Training the same inputs again records nothing new.
    again = lifecycle.train_candidate(settings, cutoff="2026-10-31")
    assert again.model_version == record.model_version
    assert len(lifecycle.events(settings, record.model_version)) == 2
    assert champion.model_version != record.model_version


#: Each gate forced to fail alone: the gates, whether training labels are shuffled, and the
#: value the gate names (a key of the validation JSON).
ONE_GATE = {
    # no real model reaches an AUC of 1; the other gates cannot fail
    "min_auc": (Gates(min_auc=1.0, max_psi=1e9, champion_margin=1.0), False, "roc_auc"),
    # scores of a new snapshot never fall in the training bins exactly
    "max_psi": (Gates(min_auc=0.0, max_psi=0.0, champion_margin=1.0), False, "psi"),
    # trained on shuffled labels (AUC about 0.5) against a champion of about 0.88
    "champion_margin": (Gates(min_auc=0.0, max_psi=1e9, champion_margin=0.0), True, "roc_auc"),
}


@pytest.mark.parametrize("gate", list(ONE_GATE))
def test_each_gate_failing_alone_is_named_keeps_a_candidate_and_takes_an_override(demo, gate):
    settings, _, champion = demo
    gates, shuffle, value_key = ONE_GATE[gate]
    settings = dataclasses.replace(settings, gates=gates)
    if shuffle:
        _shuffle_training_labels(settings, VALIDATION)
    record = lifecycle.train_candidate(settings, cutoff="2026-10-31")
    found = json.loads(record.validation)
    assert record.gate_status.startswith(f"failed: {gate}: ") and ";" not in record.gate_status
    assert f"{found[value_key]:.4f}" in record.gate_status  # the value that failed it
    assert record.role == "candidate"
    plan = pipeline.extract(settings, RunOptions(snapshot_date="2026-10-31"))
    assert plan.run.model_version == champion.model_version and plan.shadows == ()
    with pytest.raises(GateError, match=f"failed its gates \\(failed: {gate}: "):
        lifecycle.promote(settings, record.model_version, reason="try")
    assert lifecycle.events(settings, record.model_version)[-1]["event"] == "gates_failed"
    lifecycle.promote(settings, record.model_version, reason="risk accepted", override_gates=True)
    promoted = lifecycle.events(settings, record.model_version)[-1]
    assert (promoted["event"], promoted["reason"]) == ("promoted", "risk accepted")
    details = json.loads(promoted["details"])
    assert details == {"gate_status": record.gate_status, "override_gates": True}


def test_passing_candidate_becomes_challenger_and_promotion_writes_who_and_why(demo):
    settings, _, champion = demo
    record = lifecycle.train_candidate(settings, cutoff="2026-10-31", actor="alice")
    assert record.gate_status == "passed" and record.role == "challenger"
    found = json.loads(record.validation)
    assert found["champion_version"] == champion.model_version
    assert [r["bucket"] for r in found["calibration"]] == [f"decile {i}" for i in range(1, 11)]
    card = (settings.models / record.model_version / "model_card.html").read_text()
    assert record.model_card.endswith("model_card.html") and 'id="gates">passed<' in card
    lifecycle.promote(settings, record.model_version, actor="bob", reason="better out of time")
    trail = lifecycle.events(settings)
    assert [(e["event"], e["actor"], e["reason"]) for e in trail][-2:] == [
        ("retired", "bob", f"replaced by {record.model_version}"),
        ("promoted", "bob", "better out of time"),
    ]
    assert trail[-2]["model_version"] == champion.model_version
    rows = query(settings, "SELECT model_version, status FROM model_registry ORDER BY 1")
    assert {r["model_version"]: r["status"] for r in rows} == {
        champion.model_version: "retired",
        record.model_version: "champion",
    }


def test_out_of_time_validation_needs_an_older_labeled_snapshot(demo):
    settings, _, _ = demo
    with pytest.raises(DataError, match="needs two snapshots with known outcomes"):
        lifecycle.train_candidate(settings, cutoff="2026-07-31")


def test_gates_are_read_from_the_environment_and_checked():
    gates = Gates.from_env({"CREDIT_BATCH_GATE_MIN_AUC": "0.9", "CREDIT_BATCH_GATE_MAX_PSI": ""})
    assert gates == Gates(min_auc=0.9)
    assert Settings.from_env({"CREDIT_BATCH_GATE_CHAMPION_MARGIN": "0.02"}).gates == Gates(
        champion_margin=0.02
    )
    with pytest.raises(ParameterError, match="CREDIT_BATCH_GATE_MIN_AUC"):
        Gates.from_env({"CREDIT_BATCH_GATE_MIN_AUC": "high"})
    with pytest.raises(ParameterError, match="gate max_psi"):
        Gates(max_psi=-1)


def test_realized_performance_equals_sklearn_on_the_joined_rows(demo):
    from sklearn.metrics import brier_score_loss, roc_auc_score, roc_curve

    settings, _, champion = demo
    run_pipeline(settings, snapshot_date=VALIDATION, sample_rows=500, repeats=1)
    run_pipeline(settings, snapshot_date="2026-10-31", sample_rows=500, repeats=1)
    [row] = lifecycle.monitor(settings)  # 2026-10-31 has no outcomes yet: skipped
    joined = _joined(settings, VALIDATION, champion.model_version)
    y, p = joined["delinquency"].to_numpy(), joined["score"].to_numpy()
    fpr, tpr, _ = roc_curve(y, p)
    assert row["rows_known"] == len(joined) == row["rows_scored"]
    assert row["in_sample"] is False  # the validation snapshot lies after the training window
    assert abs(row["roc_auc"] - roc_auc_score(y, p)) < 1e-12
    assert abs(row["gini"] - (2 * roc_auc_score(y, p) - 1)) < 1e-12
    assert abs(row["ks"] - np.max(tpr - fpr)) < 1e-12
    assert abs(row["brier"] - brier_score_loss(y, p)) < 1e-12
    stored = query(
        settings,
        "SELECT * FROM calibration WHERE grouping = 'decile' ORDER BY bucket_index",
    )
    order = np.argsort(p, kind="stable")
    for got, part in zip(stored, np.array_split(order, 10), strict=True):
        assert got["customers"] == part.size
        assert abs(got["mean_score"] - p[part].mean()) < 1e-12
        assert abs(got["bad_rate"] - y[part].mean()) < 1e-12
    bands = query(settings, "SELECT * FROM calibration WHERE grouping = 'band'")
    assert sum(b["customers"] for b in bands) == len(joined)
    report = pipeline.report_of(settings, snapshot_date="2026-10-31").read_text()
    assert "<h2>Realized performance of this model</h2>" in report
    assert f"<td>{VALIDATION}</td><td>champion</td><td>out of time</td>" in report
    page = (settings.lake / "reports" / "monitoring.html").read_text()
    assert page.count("<tr><td>2026-09-30</td>") == 1 and "<polyline" in page
    assert lifecycle.monitor(settings, only_new=True) == []  # measured already
    assert len(query(settings, "SELECT * FROM realized_performance")) == 1


def test_a_snapshot_inside_the_training_window_is_flagged_in_sample():
    from credit_batch.steps import monitoring

    record = dataclasses.make_dataclass("R", ["train_from", "train_until"])
    window = record(dt.date(2026, 1, 31), dt.date(2026, 8, 31))
    flags = [
        monitoring.in_training_window(window, dt.date(2026, m, d))
        for m, d in ((1, 30), (1, 31), (5, 31), (8, 31), (9, 1))
    ]
    assert flags == [False, True, True, True, False]
    assert monitoring.in_training_window(record(None, dt.date(2026, 8, 31)), dt.date(2020, 1, 1))
    rows = [
        {
            "snapshot_date": dt.date(2026, 8, 31),
            "model_version": "m",
            "role": "champion",
            "in_sample": True,
            "rows_known": 10,
            "bad_rate": 0.1,
            "roc_auc": 0.9,
            "gini": 0.8,
            "ks": 0.5,
            "brier": 0.05,
        },
    ]
    page = monitoring.render_page(rows)
    assert "<td>champion</td><td>in sample</td>" in page
    assert "<td>in sample</td>" not in monitoring.render_page([{**rows[0], "in_sample": False}])


def _joined(settings: Settings, date: dt.date, version: str):
    """Scores joined to outcomes, read apart from the package (plain SQL on each file)."""
    scores = query(
        settings,
        "SELECT customer_id, score FROM predictions WHERE snapshot_date = :d "
        "AND model_version = :v",
        {"d": date, "v": version},
    )
    db = connect(settings.warehouse_url, read_only=True)
    outcomes = db.fetch_arrow(
        "SELECT customer_id, delinquency FROM outcomes WHERE snapshot_date = $d", {"d": date}
    ).to_pandas()
    db.close()
    import pandas as pd

    return pd.DataFrame(scores).merge(outcomes, on="customer_id").sort_values("customer_id")


def test_performance_metrics_need_both_classes_for_auc():
    found = performance.summary([0, 0, 0], [0.1, 0.2, 0.3])
    assert found["roc_auc"] is None and found["ks"] is None and found["bads"] == 0
    with pytest.raises(ValueError, match="0 or 1"):
        performance.summary([0, 2], [0.1, 0.2])


def test_backfill_twice_rescores_nothing_and_force_replaces_every_slice(demo):
    settings, _, _ = demo
    first = lifecycle.backfill(settings, "2026-08-01", "2026-10-31")
    assert [r.run.snapshot_date.isoformat() for r in first] == [
        "2026-08-31",
        "2026-09-30",
        "2026-10-31",
    ]
    assert not any(r.loaded.get("skipped") for r in first)
    runs = query(settings, "SELECT run_id FROM scoring_runs ORDER BY 1")
    counts = query(settings, "SELECT snapshot_date, count(*) AS n FROM predictions GROUP BY 1")
    again = lifecycle.backfill(settings, "2026-08-01", "2026-10-31")
    assert all(r.loaded == {"skipped": True} for r in again)
    assert query(settings, "SELECT run_id FROM scoring_runs ORDER BY 1") == runs
    assert (
        query(settings, "SELECT snapshot_date, count(*) AS n FROM predictions GROUP BY 1") == counts
    )
    forced = lifecycle.backfill(settings, "2026-08-01", "2026-10-31", force=True)
    assert not any(r.loaded.get("skipped") for r in forced)
    slices = query(settings, "SELECT DISTINCT snapshot_date, run_id FROM predictions")
    assert {r["run_id"] for r in slices} == {r.run.run_id for r in forced}
    assert len(slices) == 3
    with pytest.raises(ParameterError, match="holds no warehouse snapshot"):
        lifecycle.backfill(settings, "2020-01-01", "2020-02-01")


def test_a_changed_snapshot_is_rescored_by_a_backfill(demo):
    settings, _, _ = demo
    lifecycle.backfill(settings, "2026-10-31", "2026-10-31")
    db = connect(settings.warehouse_url)
    db.execute("UPDATE features SET age = age + 1 WHERE snapshot_date = DATE '2026-10-31'")
    db.close()
    [again] = lifecycle.backfill(settings, "2026-10-31", "2026-10-31")
    assert not again.loaded.get("skipped")
    assert len(query(settings, "SELECT run_id FROM scoring_runs")) == 2


def test_retiring_the_champion_is_refused(demo):
    settings, _, champion = demo
    with pytest.raises(GateError, match="is the champion"):
        lifecycle.retire(settings, champion.model_version, reason="old")
    # Only the fixture's promotion is on record.
    assert [e["event"] for e in lifecycle.events(settings)] == ["promoted"]


def test_points_follow_the_declared_scale():
    from credit_batch.config import Scorecard
    from credit_batch.steps.scoring import points

    got = points(np.array([1 / 51, 1 / 101, 1 / 26, 0.0, 1.0]))
    assert np.allclose(got[:3], [600.0, 620.0, 580.0], atol=1e-9)  # 50:1, 100:1, 25:1
    assert np.isfinite(got).all() and got[3] > got[0] > got[4]
    card = Scorecard.from_env({"CREDIT_BATCH_POINTS_BASE": "500", "CREDIT_BATCH_POINTS_PDO": "40"})
    assert np.allclose(points(np.array([1 / 51, 1 / 101]), card), [500.0, 540.0])
    with pytest.raises(ParameterError, match="pdo > 0"):
        Scorecard(pdo=0)


def test_each_version_scores_with_its_registered_policy_not_the_workers_environment(demo):
    """Two versions with different bands and points scales in one night, on a worker whose
    environment holds a third: each slice follows its own version's registered policy."""
    from credit_batch.config import Policy

    settings, _, champion = demo
    own = Policy(
        risk_bands=((0.05, "low"), (0.3, "mid"), (1.0, "high")),
        scorecard=Scorecard(base_points=650, pdo=25),
        gates=Gates(champion_margin=0.1),
    )
    trainer = dataclasses.replace(
        settings, risk_bands=own.risk_bands, scorecard=own.scorecard, gates=own.gates
    )
    challenger = lifecycle.train_candidate(trainer, cutoff="2026-10-31", seed=5)
    assert challenger.role == "challenger" and challenger.policy_or(Policy()) == own
    worker = dataclasses.replace(
        settings, scorecard=Scorecard(base_points=500, pdo=40), risk_bands=((0.5, "X"), (1, "Y"))
    )
    run_pipeline(worker, snapshot_date=VALIDATION, sample_rows=500, repeats=1)
    for version, policy in ((champion.model_version, Policy()), (challenger.model_version, own)):
        rows = query(
            settings,
            "SELECT * FROM prediction_points WHERE model_version = :v ORDER BY customer_id",
            {"v": version},
        )
        assert len(rows) > 1_000, version
        p = np.array([r["score"] for r in rows])
        card = policy.scorecard
        factor = card.pdo / np.log(2)
        want = card.base_points + factor * (np.log((1 - p) / p) - np.log(card.base_odds))
        assert np.max(np.abs(np.array([r["points"] for r in rows]) - want)) < 1e-9, version
        bands = [next(label for bound, label in policy.risk_bands if s <= bound) for s in p]
        assert [r["risk_band"] for r in rows] == bands, version
        raw = query(
            settings,
            "SELECT reason_1_value FROM predictions WHERE model_version = :v ORDER BY customer_id",
            {"v": version},
        )
        for r, value in zip(rows, raw, strict=True):
            if value["reason_1_value"] is not None:
                assert abs(r["reason_1_points"] + value["reason_1_value"] * factor) < 1e-9
        [run] = query(
            settings,
            "SELECT points_base, points_odds, points_pdo FROM scoring_runs "
            "WHERE model_version = :v",
            {"v": version},
        )
        assert run == {"points_base": card.base_points, "points_odds": 50.0, "points_pdo": card.pdo}


def _two_challengers(settings: Settings) -> list:
    """Two challengers on the demo (gates loosened: the small demo's trees trail a little)."""
    loose = dataclasses.replace(settings, gates=Gates(champion_margin=0.1))
    found = [
        lifecycle.train_candidate(loose, cutoff="2026-10-31", algorithm="lgbm"),
        lifecycle.train_candidate(loose, cutoff="2026-10-31", seed=5),
    ]
    assert [r.role for r in found] == ["challenger", "challenger"]
    return found


def test_a_night_scores_the_champion_and_two_challengers_from_one_extract(demo, monkeypatch):
    from credit_batch.run import RunOptions
    from credit_batch.stores import warehouse

    settings, _, champion = demo
    challengers = _two_challengers(settings)
    extracted = []
    stream = warehouse.stream_features
    monkeypatch.setattr(
        warehouse, "stream_features", lambda *a, **k: extracted.append(a[2]) or stream(*a, **k)
    )
    done = pipeline.run(
        settings,
        RunOptions(snapshot_date="2026-10-31", rows_per_partition=1_000, importance_repeats=1),
        workers=2,
    )
    assert extracted == [dt.date(2026, 10, 31)]  # the features were extracted once
    scored = done.loaded["rows_loaded"]
    versions = [champion.model_version, *(c.model_version for c in challengers)]
    counts = query(
        settings,
        "SELECT model_version, count(*) AS n, count(DISTINCT run_id) AS runs "
        "FROM predictions GROUP BY 1 ORDER BY 1",
    )
    assert counts == [{"model_version": v, "n": scored, "runs": 1} for v in sorted(versions)]
    runs = query(settings, "SELECT model_version, role, run_id FROM scoring_runs ORDER BY 1")
    assert {r["model_version"]: r["role"] for r in runs} == {
        champion.model_version: "champion",
        **{c.model_version: "challenger" for c in challengers},
    }
    assert len({r["run_id"] for r in runs}) == 3
    latest = query(settings, "SELECT DISTINCT model_version FROM latest_predictions")
    assert latest == [{"model_version": champion.model_version}]
    _check_comparison(settings, champion.model_version, challengers[0].model_version, scored)


def _check_comparison(settings: Settings, champion: str, challenger: str, scored: int) -> None:
    rows = query(
        settings,
        "SELECT * FROM challenger_comparison WHERE challenger_version = :c",
        {"c": challenger},
    )
    pair = query(
        settings,
        "SELECT a.score AS a, b.score AS b, a.risk_band AS ab, b.risk_band AS bb "
        "FROM predictions a JOIN predictions b ON a.customer_id = b.customer_id "
        "WHERE a.model_version = :a AND b.model_version = :b",
        {"a": champion, "b": challenger},
    )
    a, b = np.array([r["a"] for r in pair]), np.array([r["b"] for r in pair])
    [corr] = [r for r in rows if r["kind"] == "correlation"]
    assert corr["customers"] == scored and abs(corr["value"] - np.corrcoef(a, b)[0, 1]) < 1e-9
    migration = {r["bucket"]: r["customers"] for r in rows if r["kind"] == "migration"}
    assert sum(migration.values()) == scored
    assert migration.get("A>A", 0) == sum(r["ab"] == r["bb"] == "A" for r in pair)
    swaps = {r["bucket"]: r["customers"] for r in rows if r["kind"] == "swap"}
    assert swaps == {
        "champion only": int(((a <= 0.1) & (b > 0.1)).sum()),
        "challenger only": int(((a > 0.1) & (b <= 0.1)).sum()),
    }


def test_a_pinned_model_version_scores_no_challenger_and_records_its_role(demo):
    settings, _, champion = demo
    first, _ = _two_challengers(settings)
    run_pipeline(settings, snapshot_date="2026-10-31", model_version=champion.model_version)
    run_pipeline(settings, snapshot_date="2026-09-30", model_version=first.model_version)
    runs = query(settings, "SELECT model_version, role, importance_status FROM scoring_runs")
    assert sorted((r["model_version"], r["role"]) for r in runs) == sorted(
        [(champion.model_version, "champion"), (first.model_version, "challenger")]
    )
    assert not any(r["importance_status"].endswith("in shadow") for r in runs)


def test_band_rows_measure_each_band_on_its_own_rows_only():
    """Kills mutmut's survivor in band_rows: every figure of a band from that band's rows."""
    y = np.array([0, 1, 0, 0, 1, 1])
    p = np.array([0.01, 0.04, 0.30, 0.40, 0.50, 0.90])
    rows = performance.band_rows(y, p, ["A", "A", "E", "E", "E", "E"])
    assert [r["bucket"] for r in rows] == ["A", "E"]
    a, e = rows
    assert (a["customers"], a["bads"], a["bad_rate"]) == (2, 1, 0.5)
    assert abs(a["mean_score"] - 0.025) < 1e-15 and (a["min_score"], a["max_score"]) == (0.01, 0.04)
    assert (e["customers"], e["bads"], e["bad_rate"]) == (4, 2, 0.5)
    assert abs(e["mean_score"] - 0.525) < 1e-15 and (e["min_score"], e["max_score"]) == (0.3, 0.9)


def test_the_champion_on_any_past_day_is_what_model_events_says(demo, capsys, monkeypatch):
    from credit_batch import catalog, cli

    settings, _, first = demo
    a, b = _two_challengers(settings)
    lifecycle.promote(settings, a.model_version, reason="beats the champion", actor="risk")
    lifecycle.promote(settings, b.model_version, reason="beats a", actor="risk")
    when = {  # each promotion moved to a day of the test's choosing
        first.model_version: dt.datetime(2026, 1, 10, 9, 0),
        a.model_version: dt.datetime(2026, 2, 15, 12, 0),
        b.model_version: dt.datetime(2026, 3, 1, 0, 0),  # at midnight: the day it starts
    }
    with results.open_results(settings) as db:
        for version, at in when.items():
            db.execute("UPDATE model_events SET event_at = :at WHERE model_version = :v "
                       "AND event = 'promoted'", {"at": at, "v": version})  # fmt: skip
    events = [e["event"] for e in lifecycle.events(settings)]
    assert events.count("promoted") == 3 and events.count("retired") == 2  # replaced ones

    def champion(day: str):
        found = catalog.champions_as_of(settings, day)
        assert len(found) <= 1 and all(r["segment"] is None for r in found)
        return found[0]["model_version"] if found else None

    assert [champion(d) for d in ("2026-01-09", "2026-01-10", "2026-02-14", "2026-02-15",
                                  "2026-02-28", "2026-03-01", "2026-12-31")] == [
        None, first.model_version, first.model_version, a.model_version,
        a.model_version, b.model_version, b.model_version,
    ]  # fmt: skip
    (row,) = catalog.champions_as_of(settings, "2026-02-20")
    assert (row["promoted_by"], row["reason"]) == ("risk", "beats the champion")
    assert row["champion_until"] == when[b.model_version]
    monkeypatch.setenv("CREDIT_BATCH_HOME", str(settings.home))
    assert cli.main(["models", "--as-of", "2026-02-20"]) in (0, None)
    out = capsys.readouterr().out
    assert f"{a.model_version}" in out and "promoted by risk: beats the champion" in out
    assert b.model_version not in out
    from credit_batch.steps.inventory import write_inventory_page

    assert cli.main(["inventory"]) in (0, None)
    page = write_inventory_page(settings).read_text()
    assert capsys.readouterr().out.strip().endswith("inventory/inventory.html")
    ends = [f"{when[a.model_version]:%Y-%m-%d %H:%M}", f"{when[b.model_version]:%Y-%m-%d %H:%M}"]
    for version, until in zip(when, [*ends, "now"], strict=True):
        assert f"<li>{version}: {when[version]:%Y-%m-%d %H:%M} to {until}, promoted by" in page
    assert "promoted by risk: beats a</li>" in page and page.count("<rect ") == 3
    assert f"champion validated out of time on {b.validation_date}" in page
    cards = [r.model_card for r in (a, b) if r.model_card]
    assert cards and all(f"<a href='{c}'>model card</a>" in page for c in cards)
    assert "<b>owner</b>: not recorded (the model file does not say)" in page  # no model file
