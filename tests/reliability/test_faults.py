"""A process killed with SIGKILL at each named point leaves the old slice or the new one.

Each test: a complete run of the date is loaded (the old slice); a new
process runs the same date and kills itself at the fault point; the database
must then hold exactly the old slice or exactly the new one, never a mix,
never a duplicate; a retry of the same run id must complete.
"""

from __future__ import annotations

import signal

import pytest

from tests.conftest import advisory_waits, query
from tests.reliability.conftest import (
    DATE,
    RUN_ARGS,
    assert_whole_slice,
    cli,
    cli_command,
)

pytestmark = pytest.mark.services


def test_training_killed_before_registration_registers_nothing(backend, outcome, rerun):
    settings, record, _ = backend
    killed = cli(settings, "train", "--until", "2026-08-31", fault="registry.before_register")
    assert killed.returncode == -signal.SIGKILL
    models = query(settings, "SELECT model_version, status FROM model_registry")
    assert models == [{"model_version": record.model_version, "status": "champion"}]
    code, log = rerun(settings, "train", "--until", "2026-08-31")
    assert code == 0, log[-3000:]
    assert len(query(settings, "SELECT * FROM model_registry")) == 2
    outcome("registry unchanged; retrain registers", "1 model after kill, 2 after retrain")


def test_promote_killed_between_updates_keeps_the_old_champion(backend, outcome, rerun):
    from credit_batch import pipeline

    settings, record, _ = backend
    second = pipeline.train(settings, until="2026-08-31", algorithm="hgb")
    killed = cli(
        settings, "promote", second.model_version, "--reason", "r", fault="promote.between_updates"
    )
    assert killed.returncode == -signal.SIGKILL
    champions = query(
        settings, "SELECT model_version FROM model_registry WHERE status = 'champion'"
    )
    assert champions == [{"model_version": record.model_version}]
    assert rerun(settings, "promote", second.model_version, "--reason", "r")[0] == 0
    champions = query(
        settings, "SELECT model_version FROM model_registry WHERE status = 'champion'"
    )
    assert champions == [{"model_version": second.model_version}]
    outcome(
        "one champion, the old one", f"champion {champions[0]['model_version'][:6]} after retry"
    )


def test_duckdb_file_locked_by_another_process_fails_after_bounded_retries_naming_holder(
    demo, outcome
):
    """DuckDB lets one process write a file: retry with backoff, then name the holder."""
    import os
    import subprocess
    import sys
    import time

    settings, _, _ = demo
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; "
            "c = duckdb.connect(sys.argv[1]); print('locked', flush=True); time.sleep(60)",
            settings.results_url.removeprefix("duckdb:///"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        t0 = time.perf_counter()
        blocked = cli(settings, *RUN_ARGS)
        waited = time.perf_counter() - t0
    finally:
        holder.kill()
        holder.wait()
    assert blocked.returncode == 2, blocked.stderr[-2000:]
    error = blocked.stderr.strip().splitlines()[-1]
    assert error.startswith("credit-batch run: error: cannot open DuckDB file"), error
    assert "lock" in error and f"PID {holder.pid}" in error and waited > 5
    assert blocked.stderr.count("is locked; retrying") == 5
    assert os.path.exists(settings.results_url.removeprefix("duckdb:///"))
    outcome("bounded retry, then error naming the holder", f"waited {waited:.0f}s; PID named")


def _wait_for(condition, what: str, timeout: float = 120.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _b_waits_on_a(pg_admin, settings) -> bool:
    """Run B's own backend (its application name) waits on run A's advisory lock."""
    return ("run-b", ["run-a"]) in advisory_waits(pg_admin, settings.results_url)


def test_two_runs_forced_to_overlap_wait_for_the_lock_and_leave_one_whole_run(
    backend, outcome, tmp_path, request
):
    """Run A pauses inside its load transaction; run B starts and must wait for A's lock.

    (Two runs merely started together need not overlap at all: this is the
    test of two runs of one date at once, forced to overlap.)

    PostgreSQL: B blocks on the slice's advisory lock (seen in ``pg_locks``).
    DuckDB: B cannot open the file A writes and retries with backoff (seen in
    its log). Released, A commits, then B replaces the slice: one run id, no
    duplicate, nothing of A left.
    """
    import subprocess

    settings, _, _ = backend
    argv, env = cli_command(
        settings, *RUN_ARGS, "--run-id", "first", fault="load.after_delete:pause"
    )
    env = {**env, "CREDIT_BATCH_FAULT_DIR": str(tmp_path), "PGAPPNAME": "run-a"}
    first = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE)
    _wait_for((tmp_path / "load.after_delete.reached").exists, "run A to pause in its load")
    argv, env = cli_command(settings, *RUN_ARGS, "--run-id", "second")
    log = tmp_path / "second.log"
    with open(log, "w") as err:
        second = subprocess.Popen(
            argv, env={**env, "PGAPPNAME": "run-b"}, stdout=subprocess.DEVNULL, stderr=err
        )
    if settings.results_url.startswith("postgresql"):
        pg_admin = request.getfixturevalue("pg_admin")
        _wait_for(lambda: _b_waits_on_a(pg_admin, settings), "run B to wait on A's lock")
        seen = "B's backend waited on A's advisory lock"
    else:
        _wait_for(lambda: "is locked; retrying" in log.read_text(), "run B to find the file locked")
        seen = "B retried the locked file"
    assert second.poll() is None, log.read_text()[-2000:]  # still waiting
    (tmp_path / "load.after_delete.go").touch()
    assert first.wait(timeout=300) == 0, first.stderr.read()[-2000:]
    assert second.wait(timeout=300) == 0, log.read_text()[-2000:]
    state = assert_whole_slice(settings, "second")
    outcome("B waits for A, then one whole slice", f"{seen}; {state['rows']} rows by 'second'")


def test_reconciliation_failing_inside_the_load_transaction_rolls_back_the_old_slice_stays(
    backend, outcome
):
    """A scored file gains a row its counts do not know of (a planted fault): the load's
    in-transaction check finds more rows than customers, and everything rolls back."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from credit_batch import errors, pipeline
    from credit_batch.run import RunOptions

    settings, _, old_run = backend
    plan = pipeline.extract(
        settings, RunOptions(snapshot_date=DATE, run_id="planted", rows_per_partition=1_000)
    )
    scored = [pipeline.score_partition(settings, plan.run, p) for p in plan.partitions]
    table = pq.read_table(scored[0]["path"])
    pq.write_table(pa.concat_tables([table, table.slice(0, 1)]), scored[0]["path"])
    with pytest.raises(errors.ReconciliationError, match="does not reconcile") as info:
        pipeline.load(settings, plan.run, scored)
    assert "nothing was loaded" in str(info.value)
    state = assert_whole_slice(settings, old_run)
    assert [r["run_id"] for r in query(settings, "SELECT run_id FROM scoring_runs")] == [old_run]
    outcome("rollback, the old slice whole", f"{state['rows']} rows by {old_run}")
