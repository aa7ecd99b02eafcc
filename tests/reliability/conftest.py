"""Reliability suite: faults (SIGKILL at named points) and bad inputs.

Every test records what it injected, what it expected and what it saw; the
table is printed at the end of the run.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from credit_batch.config import Settings
from tests.conftest import (
    PG_HOST,
    PG_PORT,
    PG_USER,
    build_demo,
    expected_counts,
    query,
    run_pipeline,
    s3_filesystem,
    s3_settings,
    storage_env,
)

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


@pytest.fixture(params=["duckdb", "postgresql"])
def backend(request):
    """A demo with one complete, loaded run of ``DATE``: ``(settings, record, old run id)``."""
    return _loaded_copy(request, request.param)


@pytest.fixture(params=["duckdb", "postgresql", "s3"])
def any_lake(request):
    """As ``backend``, and also ``s3``: the lake and models on an S3 API server (DuckDB)."""
    return _loaded_copy(request, request.param)


def _run_old(settings) -> str:
    """The old slice: one complete, loaded run of ``DATE`` (its run id)."""
    old = run_pipeline(
        settings,
        snapshot_date=DATE.isoformat(),
        sample_rows=500,
        repeats=1,
        rows_per_partition=1_000,
    )
    return old["plan"].run.run_id


@pytest.fixture(scope="session")
def loaded_duckdb(demo_template, tmp_path_factory):
    """A demo home with the old slice loaded, built once per worker: tests copy it."""
    home, _, record = demo_template
    target = tmp_path_factory.mktemp("loaded-duckdb") / "home"
    shutil.copytree(home, target)
    settings = Settings(home=target)
    return settings, record, _run_old(settings)


@pytest.fixture(scope="session")
def loaded_postgresql(pg_admin, tmp_path_factory):
    """As ``loaded_duckdb`` with warehouse and results in a PostgreSQL database of its own,
    the template of each test's database (``CREATE DATABASE ... TEMPLATE``)."""
    name = f"credit_batch_tmpl_{uuid.uuid4().hex[:10]}"
    pg_admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    home = tmp_path_factory.mktemp("loaded-postgresql") / "home"
    settings = Settings(home=home, warehouse_url=url, results_url=url)
    try:
        _, record = build_demo(settings)
        yield settings, record, _run_old(settings)
    finally:
        pg_admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def loaded_s3(s3_server, tmp_path_factory):
    """As ``loaded_duckdb`` with the lake and models under a prefix of the S3 test bucket."""
    settings = s3_settings(s3_server, tmp_path_factory.mktemp("loaded-s3") / "home")
    _, record = build_demo(settings)
    return settings, record, _run_old(settings)


def _loaded_copy(request, kind: str):
    """A private copy of the ``kind`` template: its home, and its database or lake prefix."""
    template, record, old_run = request.getfixturevalue(f"loaded_{kind}")
    home = request.getfixturevalue("tmp_path") / "home"
    shutil.copytree(template.home, home)
    if kind == "duckdb":
        return Settings(home=home), record, old_run
    if kind == "postgresql":
        url = _copy_database(request, template.results_url)
        return Settings(home=home, warehouse_url=url, results_url=url), record, old_run
    settings = s3_settings(template.s3, home)
    _copy_prefix(template, settings)
    return settings, record, old_run


def _copy_database(request, template_url: str) -> str:
    """A new database made from ``template_url``'s, dropped after the test."""
    from sqlalchemy.engine import make_url

    pg_admin = request.getfixturevalue("pg_admin")
    source = make_url(template_url).database
    name = f"credit_batch_test_{uuid.uuid4().hex[:10]}"
    # A template may have no session: end any a pool of this process left open on it.
    pg_admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid()",
        (source,),
    )
    pg_admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    request.addfinalizer(lambda: pg_admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return template_url.rsplit("/", 1)[0] + "/" + name


def _copy_prefix(template, settings) -> None:
    """Every object of the template's lake (models included) under ``settings``' prefix."""
    import pyarrow.fs as pafs

    fs = s3_filesystem(template.s3)
    pafs.copy_files(
        template.lake_url.removeprefix("s3://"),
        settings.lake_url.removeprefix("s3://"),
        source_filesystem=fs,
        destination_filesystem=fs,
    )


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


@pytest.fixture
def rerun(monkeypatch, caplog):
    """``rerun(settings, *args) -> (exit code, log text)``: ``credit-batch`` in this process.

    The kill happens in a process of its own (it must die); its retry runs here,
    where the package is imported already (a new process spends seconds on imports),
    with the same variables ``cli`` gives a process and the log at INFO.
    """
    from credit_batch import cli as entry

    def run(settings, *args: str) -> tuple[int, str]:
        _, env = cli_command(settings)
        for key in [k for k in os.environ if k.startswith("CREDIT_BATCH_")]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            if key.startswith(("CREDIT_BATCH_", "AWS_")):
                monkeypatch.setenv(key, value)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="credit_batch"):
            code = entry.main(list(args))
        return code, caplog.text

    return run


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
