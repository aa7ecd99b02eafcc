"""Reliability suite: faults (SIGKILL at named points) and bad inputs.

Every test records what it injected, what it expected and what it saw; the
table is printed at the end of the run.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import expected_counts, query, run_pipeline, storage_env

DATE = dt.date(2026, 9, 30)
#: ``credit-batch run`` of ``DATE`` in small partitions and chunks (the fault tests' run).
RUN_ARGS = [
    "run",
    "--snapshot-date",
    DATE.isoformat(),
    "--rows-per-partition",
    "1000",
    "--chunk-rows",
    "400",
    "--importance-sample-rows",
    "500",
    "--importance-repeats",
    "1",
]


@pytest.fixture
def outcome(request):
    """Call ``outcome(expected, seen)`` to record this test's line of the summary table.

    The line travels in the test's report (``user_properties``), so that the
    table is printed by the main process also when workers run the tests
    (pytest-xdist); ``tests/conftest.py`` prints it.
    """
    kind = "bad input" if "bad_inputs" in request.node.nodeid else "fault"

    def record(expected: str, seen: str) -> None:
        request.node.user_properties.append(
            ("reliability", (kind, request.node.name, expected, seen))
        )

    return record


_DEMOS = {"duckdb": "demo", "postgresql": "pg_demo", "s3": "s3_demo"}


@pytest.fixture(params=["duckdb", "postgresql"])
def backend(request):
    """A demo with one complete, loaded run of ``DATE``: ``(settings, record, old run id)``."""
    return _loaded_demo(request)


@pytest.fixture(params=list(_DEMOS))
def any_lake(request):
    """As ``backend``, and also ``s3``: the lake and models on an S3 API server (DuckDB)."""
    return _loaded_demo(request)


def _loaded_demo(request):
    settings, _, record = request.getfixturevalue(_DEMOS[request.param])
    old = run_pipeline(
        settings,
        snapshot_date=DATE.isoformat(),
        sample_rows=500,
        repeats=1,
        rows_per_partition=1_000,
    )
    return settings, record, old["plan"].run.run_id


def cli_command(settings, *args: str, fault: str | None = None) -> tuple[list[str], dict]:
    """The argv and environment of ``credit-batch`` for ``settings`` (and a fault point)."""
    env = {
        **os.environ,
        "CREDIT_BATCH_HOME": str(settings.home),
        "CREDIT_BATCH_WAREHOUSE_URL": settings.warehouse_url,
        "CREDIT_BATCH_RESULTS_URL": settings.results_url,
        **storage_env(settings),
    }
    env.pop("CREDIT_BATCH_FAULT", None)
    if fault:
        env["CREDIT_BATCH_FAULT"] = fault
    return [sys.executable, "-m", "credit_batch.cli", *args], env


def cli(settings, *args: str, fault: str | None = None, timeout: int = 300):
    """Run ``credit-batch`` in a new process (optionally dying at a fault point)."""
    argv, env = cli_command(settings, *args, fault=fault)
    return subprocess.run(
        argv,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )


def slice_state(settings) -> dict:
    """What the database holds for ``DATE``: counts, run ids, duplicates."""
    rows = query(
        settings,
        "SELECT customer_id, run_id FROM predictions WHERE snapshot_date = :d",
        {"d": DATE},
    )
    quarantined = query(
        settings, "SELECT customer_id, run_id FROM quarantine WHERE snapshot_date = :d", {"d": DATE}
    )
    return {
        "rows": len(rows),
        "duplicates": len(rows) - len({r["customer_id"] for r in rows}),
        "run_ids": {r["run_id"] for r in rows},
        "quarantined": len(quarantined),
        "quarantine_run_ids": {r["run_id"] for r in quarantined},
    }


def assert_whole_slice(settings, run_id: str) -> dict:
    """The slice of ``DATE`` is complete, unique and written by ``run_id`` alone."""
    want = expected_counts(settings, DATE)
    state = slice_state(settings)
    assert state == {
        "rows": want["scored"],
        "duplicates": 0,
        "run_ids": {run_id},
        "quarantined": want["quarantined"],
        "quarantine_run_ids": {run_id},
    }, state
    return state
