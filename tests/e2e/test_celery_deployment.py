"""The nightly DAG on the Celery deployment that ``deploy/celery/up`` starts.

One deployment for the module: PostgreSQL for Airflow's metadata, the
warehouse and the results, Redis as the broker, two Celery workers, and an S3
API server (moto's, its own process) for the lake and the models. The tests
drive it as a platform engineer would, from a shell that ran
``eval "$(deploy/celery/up --dir D)"``: ``credit-batch demo``, then runs
triggered over the REST API (v2) and polled to the end.

The workers are started with a planted pause at ``score.after_first_chunk``,
armed only while a test removes its ``once`` file: the test then knows which
worker runs a scoring task, and kills (SIGKILL) or freezes (SIGSTOP) that
worker's whole process group there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO, expected_counts, redis_answers, services_required

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(900)]

DAG = "credit_batch_nightly"
DATE = "2026-09-30"
DEMO_ROWS = 20_000
PARTITION_ROWS = 5_000  # four scoring tasks
POINT = "score.after_first_chunk"
#: A broker database of this test's own (14 or 15: one per xdist worker, never a user's 1-13).
REDIS = f"127.0.0.1:6379/{14 + int(os.environ.get('PYTEST_XDIST_WORKER', 'gw0')[2:]) % 2}"


def _deploy_module():
    """``deploy/celery/deployment.py`` (a script, not a package): its session helpers."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "celery_deployment", REPO / "deploy" / "celery" / "deployment.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DEPLOY = _deploy_module()


@dataclass
class Deployment:
    folder: Path
    env: dict[str, str]  # the shell's, after eval "$(up)"
    workers_env: dict[str, str]  # what up was started with (the planted pause)
    up_seconds: float
    state: dict = field(default_factory=dict)

    @property
    def faults(self) -> Path:
        return self.folder / "faults"

    def settings(self):
        from credit_batch.config import Settings

        return Settings.from_env(self.env)

    def api(self, method: str, path: str, body=None):
        token = self._token()
        request = urllib.request.Request(
            self.env["AIRFLOW_API"] + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read() or b"null")

    def _token(self) -> str:
        body = {"username": self.env["AIRFLOW_USER"], "password": self.env["AIRFLOW_PASSWORD"]}
        request = urllib.request.Request(
            self.env["AIRFLOW_API"] + "/auth/token",
            method="POST",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())["access_token"]

    def worker_pid(self, name: str) -> int:
        return int((self.folder / "pids" / f"{name}.pid").read_text())


def _up(folder: Path, env: dict) -> tuple[dict, float]:
    t0 = time.perf_counter()
    done = subprocess.run(
        [str(REPO / "deploy" / "celery" / "up"), "--dir", str(folder), "--redis", REDIS],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    exports = {}
    for line in done.stdout.splitlines():
        assert line.startswith("export "), f"up printed a line that is not an export: {line!r}"
        key, _, value = line.removeprefix("export ").partition("=")
        exports[key] = value
    return exports, time.perf_counter() - t0


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, pg_admin):
    if not redis_answers():
        reason = "Redis is not running on 127.0.0.1:6379 (the Celery broker)"
        pytest.fail(reason) if services_required() else pytest.skip(reason)
    folder = tmp_path_factory.mktemp("celery")
    (folder / "faults").mkdir()
    (folder / "faults" / "once").touch()  # the planted pause stays off until a test arms it
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CREDIT_BATCH_", "AIRFLOW"))}
    workers_env = {
        **base,
        "PATH": f"{Path(sys.executable).parent}:{base.get('PATH', '')}",
        "CREDIT_BATCH_SCHEDULE": "none",  # triggered runs only: no run of its own at unpause
        "CREDIT_BATCH_FAULT": f"{POINT}:pause",
        "CREDIT_BATCH_FAULT_DIR": str(folder / "faults"),
        "CREDIT_BATCH_FAULT_ONCE": str(folder / "faults" / "once"),
    }
    exports, seconds = _up(folder, workers_env)
    env = {**base, "PATH": workers_env["PATH"], **exports}
    deployment = Deployment(folder, env, workers_env, seconds)
    deployment.state = json.loads((folder / "deployment.json").read_text())
    try:
        yield deployment
    finally:
        _down_leaves_nothing_running(deployment)
        for name in (deployment.state["data_db"], deployment.state["airflow_db"]):
            pg_admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _down_leaves_nothing_running(deployment: Deployment) -> None:
    sessions = [
        int(p.read_text())
        for p in (deployment.folder / "pids").glob("*.pid")
        if not p.name.endswith(".celery.pid")
    ]
    done = subprocess.run(
        [str(REPO / "deploy" / "celery" / "down"), "--dir", str(deployment.folder)],
        env=deployment.workers_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert [pid for s in sessions for pid in DEPLOY.session_members(s)] == []
    assert list((deployment.folder / "pids").glob("*.pid")) == []


def _signal_worker(deployment: Deployment, name: str, sig: int) -> None:
    """``sig`` to the worker and every process it started (tasks run in groups of their own)."""
    DEPLOY.signal_session(deployment.worker_pid(name), sig)


@pytest.fixture(scope="module")
def demo_done(deployment):
    """``credit-batch demo`` from the shell of ``eval "$(up)"``: PostgreSQL data, S3 models."""
    done = subprocess.run(
        [str(Path(sys.executable).with_name("credit-batch")), "demo", "--rows", str(DEMO_ROWS)],
        env=deployment.env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=deployment.folder,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    deployment.api("PATCH", f"/api/v2/dags/{DAG}", {"is_paused": False})
    return deployment


def _trigger(deployment: Deployment) -> str:
    body = {
        "logical_date": None,
        "conf": {"snapshot_date": DATE, "rows_per_partition": PARTITION_ROWS},
    }
    return deployment.api("POST", f"/api/v2/dags/{DAG}/dagRuns", body)["dag_run_id"]


def _wait_for_run(deployment: Deployment, run_id: str, *, seconds: float = 600) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run = deployment.api("GET", f"/api/v2/dags/{DAG}/dagRuns/{run_id}")
        if run["state"] in ("success", "failed"):
            return run
        time.sleep(2)
    raise AssertionError(f"run {run_id} did not end in {seconds} s")


def _task_instances(deployment: Deployment, run_id: str) -> list[dict]:
    path = f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances?limit=100"
    return deployment.api("GET", path)["task_instances"]


def _tries(deployment: Deployment, run_id: str, map_index: int) -> list[dict]:
    path = f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances/score/{map_index}/tries"
    return deployment.api("GET", path)["task_instances"]


def _slice(deployment: Deployment) -> dict:
    from credit_batch.stores.db import connect

    with connect(deployment.env["CREDIT_BATCH_RESULTS_URL"], read_only=True) as db:
        rows = db.fetch_arrow(
            "SELECT run_id, COUNT(*) AS n, COUNT(DISTINCT customer_id) AS ids, SUM(score) AS s "
            "FROM predictions WHERE snapshot_date = :d GROUP BY run_id",
            {"d": DATE},
        ).to_pylist()
        runs = db.fetch_arrow(
            "SELECT run_id, airflow_run_id, extract_seconds, score_seconds, load_seconds, "
            "importance_seconds, report_path FROM scoring_runs WHERE snapshot_date = :d",
            {"d": DATE},
        ).to_pylist()
    return {"rows": rows, "runs": runs}


def _assert_one_whole_slice(deployment: Deployment, dag_run_id: str) -> dict:
    want = expected_counts(deployment.settings(), DATE)
    state = _slice(deployment)
    assert len(state["rows"]) == 1, state["rows"]
    only = state["rows"][0]
    assert only["n"] == only["ids"] == want["scored"]  # exact count, no duplicate
    (record,) = [r for r in state["runs"] if r["run_id"] == only["run_id"]]
    assert record["airflow_run_id"] == dag_run_id
    return {**only, **record}


def _worker_of(deployment: Deployment, pid: int) -> str:
    """The worker (worker1, worker2) whose process tree holds ``pid``."""
    workers = {deployment.worker_pid(w): w for w in ("worker1", "worker2")}
    while pid > 1:
        if pid in workers:
            return workers[pid]
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    raise AssertionError("the paused task is not a worker's child")


def _arm_pause(deployment: Deployment) -> None:
    for name in ("once", f"{POINT}.reached", f"{POINT}.go"):
        (deployment.faults / name).unlink(missing_ok=True)


def _paused_task(deployment: Deployment, *, seconds: float = 300) -> int:
    reached = deployment.faults / f"{POINT}.reached"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if reached.exists() and reached.read_text().strip():
            return int(reached.read_text())
        time.sleep(0.2)
    raise AssertionError("no scoring task reached the planted pause")


def _secrets(deployment: Deployment) -> list[str]:
    return [deployment.state["db_password"], deployment.state["s3_secret"]]


def test_deployment_runs_the_demo_and_a_triggered_night_on_the_celery_workers(demo_done, request):
    deployment = demo_done
    t0 = time.perf_counter()
    run_id = _trigger(deployment)
    run = _wait_for_run(deployment, run_id)
    wall = time.perf_counter() - t0
    assert run["state"] == "success"
    stored = _assert_one_whole_slice(deployment, run_id)
    scores = [ti for ti in _task_instances(deployment, run_id) if ti["task_id"] == "score"]
    assert len(scores) == DEMO_ROWS // PARTITION_ROWS
    assert {ti["hostname"].split("@")[0] for ti in scores} <= {"worker1", "worker2"}
    assert all(ti["queue"] == "scoring" for ti in scores)
    lake = deployment.settings().lake
    assert lake.uri.startswith("s3://")
    run_folder = [f for f in (lake / "scores").files() if f"run_id={stored['run_id']}/" in f.uri]
    parts = sorted(f.name for f in run_folder if f.name.endswith(".parquet"))
    assert parts == [f"part-{i:05d}.parquet" for i in range(len(scores))]
    assert lake.at(stored["report_path"]).read_text().startswith("<!DOCTYPE html>")
    request.node.user_properties.append(("figures", _shares(deployment, run_id, stored, wall)))


def _shares(deployment: Deployment, run_id: str, stored: dict, wall: float) -> str:
    """Where the run's wall time went: the pipeline's own steps, task start-up, Airflow."""
    tis = _task_instances(deployment, run_id)
    longest = {}
    for ti in tis:
        longest[ti["task_id"]] = max(longest.get(ti["task_id"], 0.0), ti["duration"] or 0.0)
    critical = sum(longest.values())  # extract, the longest score, load, importance, report
    steps = {k: stored[f"{k}_seconds"] or 0.0 for k in ("extract", "score", "load", "importance")}
    n_scores = sum(1 for ti in tis if ti["task_id"] == "score")
    own = steps["extract"] + steps["score"] / n_scores + steps["load"] + steps["importance"]
    return (
        f"celery e2e: up {deployment.up_seconds:.0f} s; run {wall:.1f} s wall; tasks on the "
        f"critical path {critical:.1f} s ({', '.join(f'{k} {v:.1f}' for k, v in longest.items())})"
        f"; the pipeline's own step seconds {own:.1f} s (score: mean of {n_scores} tasks); "
        f"Airflow: {wall - critical:.1f} s between tasks, {critical - own:.1f} s inside tasks"
    )


def test_no_connection_password_is_in_a_task_log_or_an_xcom(demo_done):
    deployment = demo_done
    logs = [p for p in (deployment.folder / "airflow" / "logs").rglob("*") if p.is_file()]
    assert logs, "no task logs written"
    task_logs = [p for p in logs if "dag_id=" in str(p)]
    assert task_logs, "no task log of a DAG run"
    for secret in _secrets(deployment):
        assert [str(p) for p in logs if secret in p.read_text(errors="replace")] == []
    from credit_batch.stores.db import connect

    airflow_db = (
        deployment.env["CREDIT_BATCH_RESULTS_URL"].rsplit("/", 1)[0]
        + "/"
        + (deployment.state["airflow_db"])
    )
    with connect(airflow_db, read_only=True) as db:
        values = db.fetch_arrow("SELECT CAST(value AS TEXT) AS v FROM xcom").column("v")
    xcoms = " ".join(v or "" for v in values.to_pylist())
    assert "rows_loaded" in xcoms  # the XComs are there to look at
    for secret in _secrets(deployment):
        assert secret not in xcoms


def test_a_worker_killed_while_scoring_loses_nothing_and_the_task_retries_elsewhere(
    demo_done, request
):
    deployment = demo_done
    _arm_pause(deployment)
    run_id = _trigger(deployment)
    victim = _worker_of(deployment, _paused_task(deployment))
    killed_at = time.perf_counter()
    _signal_worker(deployment, victim, signal.SIGKILL)  # the machine is gone
    deadline = time.monotonic() + 10
    while DEPLOY.session_members(deployment.worker_pid(victim)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert DEPLOY.session_members(deployment.worker_pid(victim)) == []
    run = _wait_for_run(deployment, run_id)
    assert run["state"] == "success"
    _assert_one_whole_slice(deployment, run_id)
    retried = [
        tries
        for ti in _task_instances(deployment, run_id)
        if ti["task_id"] == "score"
        for tries in [_tries(deployment, run_id, ti["map_index"])]
        if len(tries) > 1
    ]
    assert len(retried) == 1
    first, last = sorted(retried[0], key=lambda t: t["try_number"])[:: len(retried[0]) - 1]
    assert first["hostname"].startswith(victim) and first["state"] != "success"
    assert last["state"] == "success" and not last["hostname"].startswith(victim)
    figure = (
        f"celery e2e: {victim} killed while scoring; score[{retried[0][0]['map_index']}] "
        f"try {first['try_number']} on {first['hostname']} ({first['state']}), try "
        f"{last['try_number']} on {last['hostname']} ({last['state']}); the run ended "
        f"{time.perf_counter() - killed_at:.0f} s after the kill"
    )
    request.node.user_properties.append(("figures", figure))
    _up(deployment.folder, deployment.workers_env)  # the lost worker comes back


def test_a_frozen_worker_resumed_after_its_task_was_retried_does_not_change_the_slice(demo_done):
    deployment = demo_done
    _arm_pause(deployment)
    run_id = _trigger(deployment)
    paused = _paused_task(deployment)
    victim = _worker_of(deployment, paused)
    _signal_worker(deployment, victim, signal.SIGSTOP)
    try:
        run = _wait_for_run(deployment, run_id)
        assert run["state"] == "success"
        before = _assert_one_whole_slice(deployment, run_id)
    finally:
        (deployment.faults / f"{POINT}.go").touch()
        _signal_worker(deployment, victim, signal.SIGCONT)
    deadline = time.monotonic() + 120
    while Path(f"/proc/{paused}").exists() and time.monotonic() < deadline:
        time.sleep(1)  # the stale attempt goes on, is refused by the API server, and ends
    assert not Path(f"/proc/{paused}").exists(), "the stale attempt is still running"
    time.sleep(5)
    assert _assert_one_whole_slice(deployment, run_id) == before


def test_the_deployments_stream_consumers_score_an_event_with_the_champion(demo_done):
    """``up`` starts two stream consumers (waiting for a champion until the demo promoted
    one): an event sent to the deployment's stream is scored as the night scored it."""
    import uuid
    from urllib.request import urlopen

    import redis

    from tests.conftest import query

    deployment = demo_done
    settings = deployment.settings()
    (night,) = query(settings, "SELECT customer_id, score FROM predictions WHERE snapshot_date = "
                               "(SELECT MAX(snapshot_date) FROM predictions) "
                               "ORDER BY customer_id LIMIT 1")  # fmt: skip
    event_id = f"deploy-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(deployment.env["CREDIT_BATCH_REDIS_URL"])
    client.xadd(deployment.env["CREDIT_BATCH_STREAM"],
                {"event_id": event_id, "customer_id": str(night["customer_id"])})  # fmt: skip
    client.close()
    sql = "SELECT score, model_name FROM stream_predictions WHERE event_id = :e"
    deadline, found = time.monotonic() + 90, []
    while not found and time.monotonic() < deadline:
        found = query(settings, sql, {"e": event_id})
        time.sleep(0.5)
    assert found and found[0]["score"] == night["score"], found
    port = deployment.state["stream_metrics_port"]
    pages = [urlopen(f"http://127.0.0.1:{p}/metrics", timeout=5).read().decode()
             for p in (port, port + 1)]  # fmt: skip
    assert sum('outcome="scored"} 1.0' in page for page in pages) == 1, pages
