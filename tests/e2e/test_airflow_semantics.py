"""What the DAG promises, read back from a real Airflow run (``airflow dags test``).

Retries: a retryable error is retried and the retry reuses what was done; a
permanent one fails the task at once, with one try. Params: the documented
ones change the run. A HistGradientBoosting champion runs end to end. Try
numbers and XComs are read from Airflow's own metadata database.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from credit_batch import pipeline
from credit_batch.run import night_run_id
from credit_batch.stores import registry, results
from tests.conftest import build_demo, expected_counts, make_settings, query
from tests.e2e.test_airflow_nightly import DAG_ID, SMALL, dags_test

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(600)]
NEWEST = "2026-10-31"


def _metadata(env: dict, sql: str, params: tuple = ()) -> list[tuple]:
    con = sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db")
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def _newest_run(env: dict) -> str:
    [(run_id,)] = _metadata(
        env, "SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (DAG_ID,)
    )
    return run_id


def _tries(env: dict, run_id: str) -> dict[tuple[str, int], tuple[int, str]]:
    rows = _metadata(
        env,
        "SELECT task_id, map_index, try_number, state FROM task_instance "
        "WHERE dag_id = ? AND run_id = ?",
        (DAG_ID, run_id),
    )
    return {(task, index): (tries, state) for task, index, tries, state in rows}


def _score_results(env: dict, run_id: str) -> dict[int, dict]:
    rows = _metadata(
        env,
        "SELECT x.map_index, x.value FROM xcom AS x JOIN dag_run AS r ON r.id = x.dag_run_id "
        "WHERE r.run_id = ? AND x.task_id = 'score' AND x.key = 'return_value'",
        (run_id,),
    )
    out = {}
    for index, value in rows:
        value = json.loads(value)
        out[index] = json.loads(value) if isinstance(value, str) else value
    return out


def _run(env, settings, logical_date: str, conf: dict, **extra: str):
    return dags_test({**env, **extra}, settings, logical_date, {**SMALL, **conf})


def test_retryable_error_is_retried_and_the_retry_reuses_the_scored_partition(
    airflow_db, demo, tmp_path
):
    settings, _, _ = demo
    done = _run(
        airflow_db,
        settings,
        "2026-11-10",
        {},
        CREDIT_BATCH_FAULT="score.after_manifest:unavailable",
        CREDIT_BATCH_FAULT_ONCE=str(tmp_path / "fired"),
        CREDIT_BATCH_RETRY_DELAY_SECONDS="1",
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    run_id = _newest_run(airflow_db)
    tries = _tries(airflow_db, run_id)
    scores = {k: v for k, v in tries.items() if k[0] == "score"}
    assert len(scores) == 3 and all(state == "success" for _, state in scores.values())
    assert sorted(t for t, _ in scores.values()) == [1, 1, 2]
    retried = next(index for (_, index), (t, _) in scores.items() if t == 2)
    xcoms = {i: x["models"]["gmsc"] for i, x in _score_results(airflow_db, run_id).items()}
    assert xcoms[retried].get("reused") is True
    assert not any(xcoms[i].get("reused") for i in xcoms if i != retried)
    assert {tries[(t, -1)][0] for t in ("plan", "extract")} == {1}
    assert {tries[(t, 0)][0] for t in ("load", "importance", "report")} == {1}  # the model's
    want = expected_counts(settings, NEWEST)
    stored = query(settings, "SELECT DISTINCT run_id FROM predictions")
    assert stored == [{"run_id": night_run_id(DAG_ID, run_id, "gmsc")}]
    assert query(settings, "SELECT COUNT(*) AS n FROM predictions") == [{"n": want["scored"]}]


def test_permanent_error_fails_the_task_at_once_with_one_try_and_loads_nothing(airflow_db, demo):
    settings, _, _ = demo
    done = _run(
        airflow_db, settings, "2026-11-11", {}, CREDIT_BATCH_FAULT="load.after_insert:error"
    )
    assert done.returncode != 0
    assert "planted permanent error" in done.stdout + done.stderr
    tries = _tries(airflow_db, _newest_run(airflow_db))
    assert tries[("load", 0)] == (1, "failed")  # the model's load, mapped by model
    assert query(settings, "SELECT COUNT(*) AS n FROM predictions") == [{"n": 0}]


def _tamper(settings, record) -> None:
    artifact = settings.home / record.artifact_path
    artifact.write_bytes(artifact.read_bytes() + b"\x00")


PERMANENT = {  # what a retry cannot fix: conf, a change to the home, the error's words, the task
    "missing snapshot": (
        {"snapshot_date": "2026-10-15"},
        None,
        "has no rows in the warehouse",
        "extract",
    ),
    "unknown model": (
        {"model_version": "logreg-19990101-deadbeef00"},
        None,
        "is not registered",
        "extract",
    ),
    "changed artifact": ({}, _tamper, "refusing to load a changed artifact", "extract"),
}


@pytest.mark.parametrize("case", list(PERMANENT))
def test_what_a_retry_cannot_fix_fails_extract_with_exactly_one_try(airflow_db, demo, case):
    """With the night's one model failed (found by plan or extract), nothing is left to
    score: extract fails with its error, at once."""
    settings, _, record = demo
    conf, change, words, task = PERMANENT[case]
    if change is not None:
        change(settings, record)
    done = _run(airflow_db, settings, "2026-11-05", conf)
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "DagRun failed" in output, output[-4000:]
    assert words in output
    tries = _tries(airflow_db, _newest_run(airflow_db))
    assert tries[(task, -1)] == (1, "failed")  # not up_for_retry: no second try
    assert tries[("plan", -1)] == (1, "success")
    assert {task for task, _ in tries} >= {"plan", "extract", "score"}
    assert query(settings, "SELECT * FROM predictions") == []
    assert not (settings.lake / "features").exists()


def test_param_max_quarantine_fraction_zero_fails_a_snapshot_with_broken_rows(airflow_db, demo):
    settings, _, _ = demo
    assert expected_counts(settings, NEWEST)["quarantined"] > 0
    done = _run(airflow_db, settings, "2026-11-12", {"max_quarantine_fraction": 0})
    assert done.returncode != 0 and "error budget of 0.00%" in done.stdout + done.stderr
    assert _tries(airflow_db, _newest_run(airflow_db))[("load", 0)] == (1, "failed")
    assert query(settings, "SELECT COUNT(*) AS n FROM predictions") == [{"n": 0}]


def test_param_importance_sample_rows_sets_the_rows_importance_uses(airflow_db, demo):
    settings, _, _ = demo
    done = _run(airflow_db, settings, "2026-11-13", {"importance_sample_rows": 150})
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    rows = query(settings, "SELECT DISTINCT method, sample_rows FROM feature_importance")
    assert rows == [{"method": "permutation_unlabeled", "sample_rows": 150}]


def test_param_fail_on_drift_fails_a_drifted_snapshot_and_without_it_the_run_loads(
    airflow_db, tmp_path
):
    settings = make_settings(tmp_path / "drifted")
    written = pipeline.demo_data(settings, rows=3_000, snapshots=4, seed=7, plant_drift=True)
    record = pipeline.train(settings, until=written[-3]["snapshot_date"], seed=1)
    pipeline.promote(settings, record.model_version)
    done = _run(airflow_db, settings, "2026-11-14", {"fail_on_drift": True})
    assert done.returncode != 0 and "act band" in done.stdout + done.stderr
    assert query(settings, "SELECT COUNT(*) AS n FROM predictions") == [{"n": 0}]
    done = _run(airflow_db, settings, "2026-11-15", {"fail_on_drift": False})
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    [run] = query(settings, "SELECT drift_status, rows_scored FROM scoring_runs")
    assert run["drift_status"] == "act"
    assert run["rows_scored"] == expected_counts(settings, NEWEST)["scored"]


def test_histgradientboosting_champion_runs_end_to_end_through_the_dag(airflow_db, tmp_path):
    settings = make_settings(tmp_path / "hgb")
    written, _ = build_demo(settings, promote=False)
    hgb = pipeline.train(settings, until=written[-3]["snapshot_date"], algorithm="hgb", seed=1)
    with results.open_results(settings) as db:
        registry.promote(db, settings, hgb.model_version)
    done = _run(airflow_db, settings, "2026-11-16", {})
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    want = expected_counts(settings, NEWEST)
    [counts] = query(
        settings,
        "SELECT COUNT(*) AS n, COUNT(reason_1) AS with_reason, COUNT(DISTINCT model_version) AS m "
        "FROM predictions",
    )
    assert counts["n"] == want["scored"] and counts["m"] == 1 and counts["with_reason"] > 0
    reasons = query(
        settings, "SELECT DISTINCT reason_1 FROM predictions WHERE reason_1 IS NOT NULL"
    )
    assert {r["reason_1"] for r in reasons} <= set(hgb.features)
    assert query(settings, "SELECT COUNT(*) AS n FROM drift")[0]["n"] == 14  # 13 features, score
    assert query(settings, "SELECT COUNT(DISTINCT feature) AS n FROM partial_dependence") == [
        {"n": 3}
    ]
    [run] = query(settings, "SELECT model_version, report_path FROM scoring_runs")
    assert run["model_version"] == hgb.model_version and Path(run["report_path"]).is_file()
