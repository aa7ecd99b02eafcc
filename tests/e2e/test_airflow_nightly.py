"""Whole runs of ``credit_batch_nightly`` through Airflow (``airflow dags test``).

Each run is a real Airflow DAG run on a SQLite metadata database: the task
runner, XCom, dynamic task mapping over the partitions, retries config and
params validation are Airflow's own.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DEMO_ROWS, expected_counts, query

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(600)]
NEWEST_DATE = "2026-10-31"

DAG_ID = "credit_batch_nightly"
SMALL = {
    "rows_per_partition": 1_000,
    "chunk_rows": 400,
    "importance_sample_rows": 1_000,
    "importance_repeats": 2,
}


def dags_test(env: dict, settings, logical_date: str, conf: dict, *, dag_id: str = DAG_ID):
    """Run a DAG once with ``airflow dags test``; return the finished process."""
    airflow = str(Path(sys.executable).with_name("airflow"))
    run_env = {
        **os.environ,
        **env,
        "CREDIT_BATCH_HOME": str(settings.home),
        "CREDIT_BATCH_WAREHOUSE_URL": settings.warehouse_url,
        "CREDIT_BATCH_RESULTS_URL": settings.results_url,
    }
    return subprocess.run(
        [airflow, "dags", "test", dag_id, logical_date, "-c", json.dumps(conf)],
        env=run_env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def airflow_dags_test(
    env: dict, settings, logical_date: str, conf: dict, *, dag_id: str = DAG_ID
) -> str:
    """Run a DAG once; return Airflow's output; fail the test if the run failed."""
    done = dags_test(env, settings, logical_date, conf, dag_id=dag_id)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]  # `dags test` exits 1 when the run failed
    return output


def slice_rows(settings, date: dt.date) -> list[dict]:
    return query(
        settings,
        "SELECT snapshot_date, customer_id, model_version, score, risk_band "
        "FROM predictions WHERE snapshot_date = :d ORDER BY customer_id",
        {"d": date},
    )


def _nightly_rerun_and_backfill(env, settings, record) -> None:
    newest, older = dt.date(2026, 10, 31), dt.date(2026, 9, 30)
    want, want_older = expected_counts(settings, newest), expected_counts(settings, older)
    # The nightly run scores the newest snapshot at or before its logical date.
    airflow_dags_test(env, settings, "2026-11-02", SMALL)
    first = slice_rows(settings, newest)
    assert len(first) == want["scored"] == len({r["customer_id"] for r in first})
    assert {r["model_version"] for r in first} == {record.model_version}
    [run] = query(settings, "SELECT * FROM scoring_runs")
    assert run["airflow_dag_id"] == DAG_ID and run["airflow_run_id"]
    assert (run["rows_in"], run["rows_scored"], run["rows_quarantined"], run["partitions"]) == (
        DEMO_ROWS,
        want["scored"],
        want["quarantined"],
        3,
    )
    assert run["importance_status"].startswith("skipped: no outcomes")
    report = Path(run["report_path"])
    assert report.name == "report.html" and "<svg" in report.read_text()

    # A second run of the same date and model: identical rows, no duplicates.
    airflow_dags_test(env, settings, "2026-11-03", SMALL)
    assert slice_rows(settings, newest) == first
    assert query(settings, "SELECT COUNT(*) AS n FROM predictions") == [{"n": want["scored"]}]
    assert query(settings, "SELECT COUNT(*) AS n FROM quarantine") == [{"n": want["quarantined"]}]

    # A manual trigger with params for another date adds that date's slice only.
    airflow_dags_test(
        env,
        settings,
        "2026-11-04",
        {**SMALL, "snapshot_date": older.isoformat(), "model_version": record.model_version},
    )
    assert len(slice_rows(settings, older)) == want_older["scored"]
    assert slice_rows(settings, newest) == first
    # The online store: each customer's newest snapshot, the backfill under it.
    held = query(settings, "SELECT snapshot_date, COUNT(*) AS n FROM online_features "
                 "GROUP BY 1 ORDER BY 1")  # fmt: skip
    assert held == [{"snapshot_date": older, "n": _online_oracle(settings)["older"]},
                    {"snapshot_date": newest, "n": _online_oracle(settings)["newest"]}]  # fmt: skip
    runs = query(
        settings, "SELECT snapshot_date, importance_status FROM scoring_runs ORDER BY finished_at"
    )
    assert [r["snapshot_date"] for r in runs] == [newest, newest, older]
    assert runs[-1]["importance_status"] == "computed"
    methods = query(
        settings,
        "SELECT snapshot_date, method, COUNT(*) AS n FROM feature_importance "
        "GROUP BY 1, 2 ORDER BY 1, 2",
    )
    assert methods == [
        {"snapshot_date": older, "method": "permutation", "n": 13},
        {"snapshot_date": older, "method": "permutation_unlabeled", "n": 13},
        {"snapshot_date": newest, "method": "permutation_unlabeled", "n": 13},
    ]


_ONLINE_ORACLE = """
WITH n AS (SELECT customer_id FROM features WHERE snapshot_date = :new
           GROUP BY customer_id HAVING COUNT(*) = 1),
     o AS (SELECT customer_id FROM features WHERE snapshot_date = :old
           GROUP BY customer_id HAVING COUNT(*) = 1)
SELECT (SELECT COUNT(*) FROM n) AS newest,
       (SELECT COUNT(*) FROM o WHERE customer_id NOT IN (SELECT customer_id FROM n)) AS older
"""


def _online_oracle(settings) -> dict:
    """From the warehouse, apart from the package: the customers once in the newest
    snapshot, and those once in the older one but not once in the newest."""
    from credit_batch.stores.db import connect

    with connect(settings.warehouse_url, read_only=True) as wh:
        dates = {"new": dt.date(2026, 10, 31), "old": dt.date(2026, 9, 30)}
        return wh.fetch_arrow(_ONLINE_ORACLE, dates).to_pylist()[0]


def test_nightly_dag_on_duckdb_scores_once_reruns_identically_and_backfills(airflow_db, demo):
    settings, _, record = demo
    _nightly_rerun_and_backfill(airflow_db, settings, record)


@pytest.mark.postgres
def test_nightly_dag_on_postgresql_scores_once_reruns_identically_and_backfills(
    airflow_db, pg_demo
):
    settings, _, record = pg_demo
    _nightly_rerun_and_backfill(airflow_db, settings, record)


def _model_tasks(env: dict) -> dict[tuple[str, str], tuple[int, str]]:
    """``(task, rendered map index) -> (try, state)`` of the newest run's per-model tasks."""
    import sqlite3

    con = sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db")
    try:
        rows = con.execute(
            "SELECT task_id, rendered_map_index, try_number, state FROM task_instance "
            "WHERE run_id = (SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC "
            "LIMIT 1) AND task_id IN ('load', 'importance', 'report')",
            (DAG_ID,),
        ).fetchall()
    finally:
        con.close()
    return {(task, label): (tries, state) for task, label, tries, state in rows}


def test_a_portfolio_night_loads_each_model_and_a_failed_model_fails_alone(
    airflow_db, demo, tmp_path
):
    from tests.unit.test_portfolio import PER_MODEL, make_book, oracle
    from tests.unit.test_segments import add_regions, regions_oracle

    settings, gmsc, accounts = make_book(demo, tmp_path)
    regions = add_regions(settings, tmp_path / "accounts.toml")  # a champion per region
    conf = {**SMALL, "snapshot_date": "2026-09-30"}
    airflow_dags_test(airflow_db, settings, "2026-11-01", conf)
    want, date = oracle(settings), dt.date(2026, 9, 30)
    by_region = regions_oracle(settings, date)
    assert query(settings, PER_MODEL, {"d": date}) == [
        {"model_name": "gmsc", "n": want["gmsc"], "runs": 1},
        {"model_name": "pd_accounts", "n": want["pd_accounts"], "runs": 1},
        {"model_name": "pd_regions", "n": by_region["north"] + by_region["south"], "runs": 2},
    ]
    per_version = (
        "SELECT COUNT(*) AS n FROM predictions WHERE model_version = :v AND snapshot_date = :d"
    )
    for region, record in regions.items():  # each region's rows, by its own champion
        found = query(settings, per_version, {"v": record.model_version, "d": date})
        assert found == [{"n": by_region[region]}]
    held = "SELECT COUNT(*) AS n FROM quarantine WHERE reason LIKE '%has no champion'"
    assert query(settings, held) == [{"n": by_region["uncovered"]}]
    tasks = _model_tasks(airflow_db)  # one group per model (its segments in it), by name
    assert tasks == {(t, m): (1, "success") for t in ("load", "importance", "report")
                     for m in ("gmsc", "pd_accounts", "pd_regions")}  # fmt: skip
    page = settings.lake / "reports" / "portfolio" / f"as_of={date}" / "portfolio.html"
    assert "pd_accounts" in page.read_text()

    artifact = settings.home / accounts.artifact_path  # one model fails the next night
    artifact.write_bytes(artifact.read_bytes() + b"\x00")
    done = dags_test(airflow_db, settings, "2026-11-02", {**SMALL, "snapshot_date": NEWEST_DATE})
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "refusing to load a changed artifact" in output
    newest = query(settings, PER_MODEL, {"d": dt.date.fromisoformat(NEWEST_DATE)})
    scored = expected_counts(settings, NEWEST_DATE)["scored"]
    assert newest[0] == {"model_name": "gmsc", "n": scored, "runs": 1}  # the others loaded
    assert [m["model_name"] for m in newest] == ["gmsc", "pd_regions"]
    tasks = _model_tasks(airflow_db)
    assert tasks[("load", "pd_accounts")] == (1, "failed")  # at once, with its own error
    assert {tasks[(t, "gmsc")] for t in ("load", "importance", "report")} == {(1, "success")}


def _task_times(env: dict) -> dict[tuple[str, str], tuple]:
    """``(task, rendered map index) -> (start, end, state)`` of the newest run's tasks."""
    import sqlite3

    con = sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db")
    try:
        newest = "(SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1)"
        rows = con.execute(
            "SELECT task_id, rendered_map_index, start_date, end_date, state FROM task_instance "
            f"WHERE run_id = {newest}",
            (DAG_ID,),
        ).fetchall()
        events = con.execute(  # this run's only: the worker's Airflow home holds others' too
            "SELECT a.uri, e.extra FROM asset_event AS e JOIN asset AS a ON a.id = e.asset_id "
            f"WHERE a.uri LIKE 'credit_batch://scores/%' AND e.source_run_id = {newest} "
            "ORDER BY e.id",
            (DAG_ID,),
        ).fetchall()
    finally:
        con.close()
    return {(t, label): (start, end, state) for t, label, start, end, state in rows}, events


def test_a_model_reading_another_is_scored_in_the_next_wave_from_that_nights_scores(
    airflow_db, demo, tmp_path
):
    """Wave 1 starts once wave 0 has loaded (task order in one DAG run, not Asset events);
    the reader's scores are its predict_proba on the rows with gmsc's score of the night;
    each model's load emits its scores Asset, the reader's naming what it reads; rerunning
    gmsc alone reruns its reader."""
    from tests.unit.test_models_reading_models import _oracle, _scores, promoted_reader

    settings, written, gmsc = demo
    dates = [w["snapshot_date"] for w in written]
    reader = promoted_reader(settings, tmp_path / "spec", dates[-2])  # on gmsc's stored scores
    airflow_dags_test(airflow_db, settings, "2026-11-01", {**SMALL, "snapshot_date": NEWEST_DATE})
    tasks, events = _task_times(airflow_db)
    assert tasks[("load", "gmsc")][2] == tasks[("wave_1.load", "gmsc_reader")][2] == "success"
    assert ("load", "gmsc_reader") not in tasks and ("wave_1.load", "gmsc") not in tasks
    assert tasks[("report", "gmsc")][1] <= tasks[("extract_wave_1", None)][0]  # after wave 0
    assert tasks[("extract_wave_2", None)][2] == "success"  # an empty wave: nothing to extract
    date = dt.date.fromisoformat(NEWEST_DATE)
    want = _oracle(settings, reader, gmsc, date)
    got = _scores(settings, reader.model_version, date)
    assert set(got) == set(want) and max(abs(got[k]["score"] - want[k]) for k in want) <= 1e-12
    assert [(uri, json.loads(extra)) for uri, extra in events] == [
        ("credit_batch://scores/gmsc", {"reads": []}),
        ("credit_batch://scores/gmsc_reader", {"reads": ["gmsc"]}),
    ]

    conf = {**SMALL, "snapshot_date": NEWEST_DATE, "model_name": "gmsc", "skip_unchanged": False}
    airflow_dags_test(airflow_db, settings, "2026-11-02", conf)
    again = _scores(settings, reader.model_version, date)
    assert set(again) == set(got)
    assert {r["run_id"] for r in again.values()}.isdisjoint({r["run_id"] for r in got.values()})
