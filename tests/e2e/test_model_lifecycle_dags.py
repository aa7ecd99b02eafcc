"""The training and monitoring DAGs through real Airflow (``airflow dags test``)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.conftest import query, run_pipeline
from tests.e2e.test_airflow_nightly import SMALL, airflow_dags_test

pytestmark = pytest.mark.airflow


def test_training_dag_gates_a_challenger_the_night_shadows_it_and_approval_is_audited(
    airflow_db, demo
):
    settings, _, champion = demo
    train = {"dag_id": "credit_batch_train"}
    airflow_dags_test(airflow_db, settings, "2026-11-03", {"cutoff": "2026-10-31"}, **train)
    models = query(settings, "SELECT * FROM model_registry ORDER BY created_at")
    assert len(models) == 2 and models[0]["model_version"] == champion.model_version
    new = models[1]
    assert new["validation_date"] == dt.date(2026, 9, 30) and new["gate_status"] == "passed"
    assert (new["status"], models[0]["status"]) == ("candidate", "champion")  # a challenger
    assert json.loads(new["validation"])["champion_version"] == champion.model_version
    assert new["model_card"].endswith(f"{new['model_version']}/model_card.html")
    # The night scores the champion and, in shadow, the challenger: one extract, two slices.
    airflow_dags_test(airflow_db, settings, "2026-11-04", SMALL)
    slices = query(
        settings,
        "SELECT model_version, role, rows_scored FROM scoring_runs ORDER BY role DESC",
    )
    assert [(s["model_version"], s["role"]) for s in slices] == [
        (champion.model_version, "champion"),
        (new["model_version"], "challenger"),
    ]
    assert slices[0]["rows_scored"] == slices[1]["rows_scored"] > 0
    [corr] = query(settings, "SELECT * FROM challenger_comparison WHERE kind = 'correlation'")
    assert corr["customers"] == slices[0]["rows_scored"] and corr["value"] > 0.8
    # Approval: the same training again (nothing new registered), then the promotion.
    conf = {"cutoff": "2026-10-31", "approve": True, "reason": "better out of time"}
    airflow_dags_test(airflow_db, settings, "2026-11-05", conf, **train)
    events = query(
        settings,
        "SELECT model_version, event, actor, reason FROM model_events "
        "WHERE model_version = :v OR event = 'retired' ORDER BY event_at, event_id",
        {"v": new["model_version"]},
    )
    assert [(e["event"], e["model_version"] == new["model_version"]) for e in events] == [
        ("registered", True),
        ("gates_passed", True),
        ("retired", False),
        ("promoted", True),
    ]
    assert events[-1]["reason"] == "better out of time"
    # Who: the user Airflow says triggered the run (`dags test` names "dag_test"), and where.
    assert all(e["actor"].startswith("dag_test (airflow:credit_batch_train/") for e in events)
    status = query(settings, "SELECT model_version, status FROM model_registry")
    assert {s["model_version"]: s["status"] for s in status} == {
        champion.model_version: "retired",
        new["model_version"]: "champion",
    }


def test_monitor_dag_measures_each_scored_snapshot_with_outcomes_once(airflow_db, demo):
    settings, _, champion = demo
    for date in ("2026-09-30", "2026-10-31"):  # outcomes known / not yet
        run_pipeline(settings, snapshot_date=date, sample_rows=500, repeats=1)
    airflow_dags_test(airflow_db, settings, "2026-11-03", {}, dag_id="credit_batch_monitor")
    [row] = query(settings, "SELECT * FROM realized_performance")
    assert (row["snapshot_date"], row["model_version"], row["role"]) == (
        dt.date(2026, 9, 30),
        champion.model_version,
        "champion",
    )
    assert 0.75 < row["roc_auc"] < 0.95 and row["rows_known"] == row["rows_scored"]
    assert len(query(settings, "SELECT * FROM calibration WHERE grouping = 'decile'")) == 10


def test_training_dag_trains_the_model_a_model_file_names_with_its_policy(
    airflow_db, demo, tmp_path
):
    import shutil

    from credit_batch.config import DEFAULT_SPEC_PATH

    settings, _, champion = demo
    folder = tmp_path / "pd_cards"
    shutil.copytree(DEFAULT_SPEC_PATH.parent, folder)  # the GMSC spec and model file
    text = (folder / "model.toml").read_text()
    text = text.replace('name = "gmsc"', 'name = "pd_cards"')
    text = text.replace('[0.02, "A"], [0.05, "B"]', '[0.03, "A"], [0.06, "B"]')
    (folder / "model.toml").write_text(text)
    conf = {"cutoff": "2026-10-31", "model_file": str(folder / "model.toml")}
    airflow_dags_test(airflow_db, settings, "2026-11-03", conf, dag_id="credit_batch_train")
    [new] = query(settings, "SELECT * FROM model_registry WHERE model_name = 'pd_cards'")
    assert new["gate_status"] == "passed" and new["algorithm"] == "logreg"
    assert json.loads(new["policy"])["risk_bands"][:2] == [[0.03, "A"], [0.06, "B"]]
    [old] = query(settings, "SELECT status FROM model_registry WHERE model_name = 'gmsc'")
    assert old["status"] == "champion"  # another model: its champion untouched
