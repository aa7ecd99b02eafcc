"""The whole night through a real Airflow: scheduler, API server and LocalExecutor.

``airflow standalone`` runs on free ports with its own ``AIRFLOW_HOME``; the
nightly DAG is unpaused and one run is triggered through the REST API for the
benchmark's snapshot. The figure is the run's wall time (the API's start and
end of the DAG run) against the bare model over the same rows (Parquet read +
``predict_proba`` in one process), with each task's share and the peak
resident memory of every task process (``VmHWM`` of each ``airflow worker --
<task instance id>`` process, sampled while the run goes).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

from benchmarks.output import Figure

#: Task processes at once: this machine's cores.
SLOTS = 2


def night_local(
    home: Path,
    rows: int,
    *,
    partition_rows: int,
    generated_rows: int | None = None,
    portfolio_models: int = 0,
) -> list[Figure]:
    """``rows`` customers scored by the nightly DAG under a real scheduler and LocalExecutor;
    then, with ``portfolio_models`` more models promoted, one night of the whole portfolio."""
    from benchmarks import figures

    bench = figures.setup(
        home / "home",
        rows,
        partition_rows=partition_rows,
        chunk_rows=100_000,
        repeats=1,
        generated_rows=generated_rows,
    )
    os.sync()  # the setup's writes on disk before the night starts, not during it
    env = _env(home, bench.settings.home)
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    memory = _Sampler()
    with _standalone(env, home / "airflow.log") as api, memory:
        conf = {"snapshot_date": bench.date.isoformat(), "rows_per_partition": partition_rows}
        run = _trigger_and_wait(api, conf)
        tasks = api.get(f"{_DAG}/dagRuns/{run['dag_run_id']}/taskInstances").json()
        night = _portfolio_night(api, bench, conf, portfolio_models) if portfolio_models else []
    wall = _seconds(run["start_date"], run["end_date"])
    paths = figures._features(bench.settings, bench.date)
    bare = figures.bare_seconds(replace(bench, repeats=2), paths)
    steps = _task_seconds(tasks["task_instances"])
    peaks: dict[str, float] = {}  # each task's highest, over its mapped instances
    for ti in tasks["task_instances"]:
        if ti.get("state") == "skipped":  # never started (every_model_loaded on a good night)
            continue
        if ti.get("operator") == "EmptyOperator":  # a wave's barrier: no worker process
            continue
        peaks[ti["task_id"]] = max(peaks.get(ti["task_id"], 0.0), memory.peak_of(ti["id"]))
    shares = ", ".join(f"{k} {v:.1f} s" for k, v in steps.items())
    return [
        Figure(
            "whole night, real Airflow (LocalExecutor)",
            f"{rows:,} rows, {len(paths)} mapped score tasks, {SLOTS} task slots; {shares}; "
            f"peak RSS of a task {max(peaks.values() or [0]):,.0f} MiB",
            f"{wall:.1f} s wall",
            f"Parquet read + predict_proba {bare:.2f} s",
            wall / bare,
            5.0,
            "<=",
            detail={"steps_seconds": steps, "peak_rss_mib": peaks, "wall": wall, "rows": rows},
        ),
        _memory_figure(rows, peaks),
        *_portfolio_figures(night, wall, len(tasks["task_instances"]), rows),
    ]


def _portfolio_night(api, bench, conf: dict, extra: int) -> list:
    """Promote ``extra`` models of their own names on the same spec; one night of them all."""
    from credit_batch import pipeline

    for k in range(extra):
        model = pipeline.train(
            bench.settings, until=bench.date, max_rows=2_000, seed=k + 2, model_name=f"pd_{k}"
        )
        pipeline.promote(bench.settings, model.model_version, reason="benchmark portfolio")
    run = _trigger_and_wait(api, conf)
    tasks = api.get(f"{_DAG}/dagRuns/{run['dag_run_id']}/taskInstances").json()
    return [extra + 1, run, tasks["task_instances"]]


def _portfolio_figures(night: list, one_wall: float, one_tis: int, rows: int) -> list[Figure]:
    if not night:
        return []
    models, run, instances = night
    wall = _seconds(run["start_date"], run["end_date"])
    return [
        Figure(
            "portfolio night, real Airflow (LocalExecutor)",
            f"{models} models on one spec (one extract, each score task scoring all {models}), "
            f"{rows:,} rows each; {len(instances)} task instances (one model's night: "
            f"{one_tis}); the naive way, {models} nights one after another, "
            f"~{models * one_wall:.0f} s",
            f"{wall:.1f} s wall",
            f"{models} separate one-model nights ({models} x {one_wall:.1f} s)",
            wall / (models * one_wall),
            1.0,
            "<=",
            detail={
                "models": models,
                "wall": wall,
                "one_model_wall": one_wall,
                "task_instances": len(instances),
                "one_model_task_instances": one_tis,
            },
        )
    ]


def _memory_figure(rows: int, peaks: dict[str, float]) -> Figure:
    """The highest peak RSS of any task of the night against 1 GiB (the issue's bar)."""
    top = max(peaks, key=peaks.get, default="none")
    each = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(peaks.items(), key=lambda kv: -kv[1]))
    return Figure(
        "whole night, peak RSS of every task",
        f"{rows:,} rows; VmHWM of each task process in MiB: {each}",
        f"{peaks.get(top, 0.0):,.0f} MiB ({top})",
        "bar 1,024 MiB",
        peaks.get(top, 0.0) / 1024,
        1.0,
        "<=",
        detail={"peak_rss_mib": peaks, "rows": rows},
    )


_DAG = "dags/credit_batch_nightly"


def _env(home: Path, data: Path) -> dict:
    from benchmarks import figures

    api_port, log_port, trigger_port = (figures.free_port() for _ in range(3))
    return {
        **figures._airflow_env(home / "airflow", data),
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{api_port}/execution/",
        "AIRFLOW__CORE__PARALLELISM": str(SLOTS),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(log_port),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(trigger_port),
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
        "CREDIT_BATCH_SCHEDULE": "none",  # only the triggered run
        "CREDIT_BATCH_SCORE_CONCURRENCY": str(SLOTS),
        "CREDIT_BATCH_RETRY_DELAY_SECONDS": "5",
    }


class _standalone:
    """``airflow standalone`` in a process group of its own; an httpx client of its API."""

    def __init__(self, env: dict, log: Path) -> None:
        self.env, self.log = env, log

    def __enter__(self):
        import httpx

        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                ["airflow", "standalone"], env=self.env, stdout=out, stderr=out,
                start_new_session=True,
            )  # fmt: skip
        self.client = httpx.Client(
            base_url=f"http://localhost:{self.env['AIRFLOW__API__PORT']}/api/v2/", timeout=30
        )
        _until(lambda: self._unpaused(), seconds=300, what="the DAG to be parsed and unpaused")
        return self.client

    def _unpaused(self) -> bool:
        import httpx

        try:
            return self.client.patch(_DAG, json={"is_paused": False}).status_code == 200
        except httpx.TransportError:
            return False

    def __exit__(self, *exc) -> None:
        self.client.close()
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.process.pid, sig)
                self.process.wait(timeout=wait)
                return
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue


def _trigger_and_wait(api, conf: dict) -> dict:
    run_id = f"bench-{time.time_ns()}"
    body = {"dag_run_id": run_id, "logical_date": None, "conf": conf}
    api.post(f"{_DAG}/dagRuns", json=body).raise_for_status()
    found = {}

    def ended() -> bool:
        found.update(api.get(f"{_DAG}/dagRuns/{run_id}").json())
        return found.get("state") in ("success", "failed")

    _until(ended, seconds=3600, what=f"run {run_id} to end")
    if found["state"] != "success":
        raise RuntimeError(f"the benchmark's night run {run_id} failed: {found}")
    return found


def _until(check, *, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up waiting for {what}")
        time.sleep(1)


def _seconds(start: str, end: str) -> float:
    import datetime as dt

    return (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds()


def _task_seconds(instances: list[dict]) -> dict:
    """Each task's span (first start to last end over its mapped instances), in order."""
    spans: dict[str, list] = {}
    for ti in instances:
        if ti.get("start_date") and ti.get("end_date"):
            span = spans.setdefault(ti["task_id"], [ti["start_date"], ti["end_date"]])
            span[0], span[1] = min(span[0], ti["start_date"]), max(span[1], ti["end_date"])
    ordered = sorted(spans.items(), key=lambda item: item[1][0])
    return {task: round(_seconds(*span), 2) for task, span in ordered}


class _Sampler:
    """Peak resident memory (``VmHWM``, MiB) of each task process, by task instance id."""

    def __init__(self) -> None:
        self.peaks: dict[str, float] = {}
        self._stop = threading.Event()

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def peak_of(self, ti_id: str) -> float:
        return round(self.peaks.get(ti_id, 0.0), 1)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            for proc in Path("/proc").glob("[0-9]*"):
                self._sample(proc)

    def _sample(self, proc: Path) -> None:
        try:
            title = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            if not title.startswith("airflow worker -- "):
                return
            status = (proc / "status").read_text()
        except OSError:
            return
        ti_id = title.split("-- ", 1)[1].strip()
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                mib = int(line.split()[1]) / 1024
                self.peaks[ti_id] = max(self.peaks.get(ti_id, 0.0), mib)
