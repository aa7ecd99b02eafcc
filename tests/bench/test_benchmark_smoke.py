"""The benchmark suite still runs: a smoke size, so that it cannot rot.

The figures are not checked against their bars here (tiny sizes measure
start-up costs, not throughput); that every figure is produced, and written
as a table, JSON and a chart, is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import PG_HOST, PG_PORT, PG_USER, REPO

pytestmark = [pytest.mark.services, pytest.mark.timeout(900)]  # the whole suite, small

FIGURES = {
    "pipeline, 2 mapped tasks, vs bare model",
    "pipeline, 2 mapped tasks, vs bare model in 2 processes",
    "pipeline in one process vs bare model",
    "score step, 2 mapped tasks, vs bare model in 2 processes",
    "pipeline, 2 mapped tasks, vs bare model (40,000 rows)",
    "pipeline, 2 mapped tasks, vs bare model in 2 processes (40,000 rows)",
    "pipeline in one process vs bare model (40,000 rows)",
    "score step, 2 mapped tasks, vs bare model in 2 processes (40,000 rows)",
    "pipeline on PostgreSQL, 2 mapped tasks, vs bare model",
    "naive (DuckDB) vs pipeline",
    "naive (SQLite) vs pipeline",
    "load into DuckDB",
    "load into PostgreSQL",
    "analyst queries on PostgreSQL",
    "reason codes (logistic)",
    "reason codes (HGB, TreeExplainer)",
    "reason codes (LightGBM stumps, exact)",
    "reason codes (LightGBM depth 3, pred_contrib)",
    "training DAG (airflow dags test)",
    "challenger cost: champion + 2 challengers",
    "lookup latency at 200 requests/s",
    "online score latency at 100 requests/s",
    "maximum lookups/s",
    "parallel: 2 mapped tasks vs 1",
    "memory: big vs small partition",
    "memory: big partition vs 1 GiB",
    "DAG parse: credit_batch_monitor.py",
    "DAG parse: credit_batch_nightly.py",
    "DAG parse: credit_batch_train.py",
    "whole night (airflow dags test)",
    "categorical features (logistic, one-hot)",
    "extract rate, DuckDB warehouse",
    "extract rate, PostgreSQL warehouse",
    "load rate into PostgreSQL",
    "floor: DuckDB writes the snapshot to Parquet",
    "floor: extract + score + load on DuckDB, vs bare model",
    "floor: PostgreSQL sends the snapshot",
    "floor: PostgreSQL stores the scores, 1 connection",
    "floor: PostgreSQL stores the scores, 2 connections",
    "floor: PostgreSQL stores the scores, 2 connections, indexed after",
    "floor: extract + score + load on PostgreSQL, vs bare model",
    "task start-up: one trivial step through Airflow",
    "whole night, real Airflow (LocalExecutor)",
    "whole night, peak RSS of every task",
    "portfolio night, real Airflow (LocalExecutor)",
    "registry: models listing at 5 models x 3 versions",
    "registry: one model's champion at 5 models x 3 versions",
    "registry: a lookup, every model at 5 models x 3 versions",
    "segmented night: 1 segment champions",
    "segmented night: 2 segment champions",
    "segmented night: 4 segment champions",
    "score a customer now (online store) at 100 requests/s",
    "streaming: events/s, one consumer",
    "streaming: 2 consumers vs 1",
    "streaming: p99 event-to-score latency at 1,000 events/s",
    "streaming: consumer lag back to zero after a consumer is killed",
    "adverse-action reasons in the scoring step",
    "nightly fairness figures vs the scoring step",
    "reason codes of an outside LightGBM model (TreeSHAP)",
    *(
        f"online store: materialize 5,000 customers {case}, {store}"
        for case in ("into an empty store", "replacing every row")
        for store in ("DuckDB", "PostgreSQL", "Redis")
    ),
}


def test_benchmark_suite_runs_at_smoke_size_and_writes_every_figure(tmp_path, pg_admin):
    out = tmp_path / "results"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--smoke",
            "--out",
            str(out),
            "--pg-url",
            f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/postgres",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=REPO,
        env={**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow")},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads((out / "results.json").read_text())["figures"]
    assert {f["name"] for f in found} == FIGURES
    assert all(f["ratio"] > 0 for f in found)
    table = (out / "results.md").read_text()
    assert all(f"| {name} |" in table for name in FIGURES)
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    night = next(f for f in found if f["name"] == "whole night (airflow dags test)")
    assert set(night["detail"]["steps_seconds"]) >= {"extract", "score", "load", "importance"}
    memory = next(f for f in found if f["name"] == "whole night, peak RSS of every task")
    peaks = memory["detail"]["peak_rss_mib"]  # every task process was sampled
    assert set(peaks) >= {"extract", "score", "load", "importance"}
    steps = ("plan", "extract", "score", "load", "importance", "report")  # seconds each
    assert all(peaks[t] > 50 for t in steps), peaks  # sampled while working, not at start
    # (a wave's 1 s bookkeeping task may be sampled only as it starts, under load)
    book = next(f for f in found if f["name"] == "portfolio night, real Airflow (LocalExecutor)")
    one, three = book["detail"]["one_model_task_instances"], book["detail"]["task_instances"]
    assert book["detail"]["models"] == 3 and three == one + 2 * 3  # load, importance, report
    now = next(f for f in found if f["name"].startswith("score a customer now"))
    assert now["detail"]["errors"] == 0 and now["detail"]["n"] > 0  # every request a 200
    latency = next(f for f in found if f["name"].startswith("streaming: p99"))
    assert latency["detail"]["n"] == latency["detail"]["sent"] > 0  # every event scored
    caught = next(f for f in found if f["name"].startswith("streaming: consumer lag"))
    assert caught["detail"]["backlog"] == {"lag": 0, "pending": 0}  # caught up, not timed out
    segmented = [f for f in found if f["name"].startswith("segmented night")]
    assert [f["detail"]["segments"] for f in segmented] == [1, 2, 4]
