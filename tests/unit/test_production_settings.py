"""Production settings: an S3 lake, Airflow connections, a results schema, database roles."""

from __future__ import annotations

import os
import pickle
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from credit_batch.config import Settings, deployment, safe_url
from credit_batch.errors import ParameterError
from credit_batch.storage import S3Options, location
from tests.conftest import REPO, build_demo, query, run_pipeline, s3_settings, storage_env

# Lanes per test: this file holds unit tests and tests that need a service.


def _connection(conn_type: str, **fields):
    base = {"host": None, "port": None, "login": None, "password": None, "schema": None}
    return SimpleNamespace(conn_type=conn_type, extra_dejson=fields.pop("extra", {}), **{
        **base, **fields
    })  # fmt: skip


@pytest.mark.unit
def test_connections_give_the_database_urls_and_the_lake_credentials():
    conns = {
        "wh": _connection(
            "postgres", host="db1", port=5433, login="u", password="p@ss/w", schema="w"
        ),
        "res": _connection("postgres", host="db2", login="r", password="secret-r", schema="res"),
        "lake": _connection(
            "aws", login="AKIA1", password="s3-secret",
            extra={"endpoint_url": "http://minio:9000", "region_name": "eu-west-2"},
        ),
    }  # fmt: skip
    env = {
        "CREDIT_BATCH_WAREHOUSE_CONN_ID": "wh",
        "CREDIT_BATCH_RESULTS_CONN_ID": "res",
        "CREDIT_BATCH_LAKE_CONN_ID": "lake",
        "CREDIT_BATCH_WAREHOUSE_URL": "postgresql://ignored@x/y",
        "CREDIT_BATCH_LAKE_URL": "s3://bucket/lake",
    }
    settings = Settings.from_env(env, connection=conns.__getitem__)
    assert settings.warehouse_url == "postgresql://u:p%40ss%2Fw@db1:5433/w"
    assert settings.results_url == "postgresql://r:secret-r@db2:5432/res"
    assert settings.s3 == S3Options("http://minio:9000", "eu-west-2", "AKIA1", "s3-secret")
    assert settings.models_url == "s3://bucket/lake/models"
    for secret in ("s3-secret", "secret-r", "p%40ss"):
        assert secret not in repr(settings)
    assert safe_url(settings.results_url) == "postgresql://r:***@db2:5432/res"
    assert pickle.loads(pickle.dumps(settings)) == settings  # settings travel to worker processes


@pytest.mark.unit
def test_a_connection_id_outside_airflow_is_refused_by_name():
    with pytest.raises(ParameterError, match="CREDIT_BATCH_RESULTS_CONN_ID.*only a task run by"):
        Settings.from_env({"CREDIT_BATCH_RESULTS_CONN_ID": "results"})


@pytest.mark.unit
def test_a_connection_of_another_type_is_refused_by_name():
    def mysql(_):
        return _connection("mysql", host="h")

    with pytest.raises(ParameterError, match="CREDIT_BATCH_WAREHOUSE_CONN_ID.*type postgres"):
        Settings.from_env({"CREDIT_BATCH_WAREHOUSE_CONN_ID": "wh"}, connection=mysql)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("gs://bucket/x", "local path, file:///path or s3://"),
        ("s3:///nobucket", "must name a bucket"),
    ],
)
def test_a_storage_url_of_an_unknown_kind_is_refused_by_name(url, rule):
    with pytest.raises(ParameterError, match=rule):
        location(url)


@pytest.mark.unit
def test_the_deployment_variables_set_the_pool_queue_and_schedule_and_default_to_airflows_own():
    assert deployment({}) == deployment({"CREDIT_BATCH_SCHEDULE": "0 2 * * *"})
    assert (deployment({}).load_pool, deployment({}).score_queue) == ("default_pool", "default")
    chosen = deployment(
        {
            "CREDIT_BATCH_LOAD_POOL": "credit_batch_load",
            "CREDIT_BATCH_SCORE_QUEUE": "scoring",
            "CREDIT_BATCH_SCHEDULE": "none",
        }
    )
    assert (chosen.load_pool, chosen.score_queue, chosen.schedule) == (
        "credit_batch_load",
        "scoring",
        None,
    )
    with pytest.raises(ParameterError, match="CREDIT_BATCH_LOAD_POOL"):
        deployment({"CREDIT_BATCH_LOAD_POOL": "a pool; DROP"})


@pytest.mark.unit
def test_the_score_concurrency_caps_the_mapped_tasks_only_when_set():
    assert deployment({}).score_concurrency is None
    assert deployment({"CREDIT_BATCH_SCORE_CONCURRENCY": "0"}).score_concurrency is None
    assert deployment({"CREDIT_BATCH_SCORE_CONCURRENCY": "2"}).score_concurrency == 2
    for bad in ("-1", "two", "5000"):
        with pytest.raises(ParameterError, match="CREDIT_BATCH_SCORE_CONCURRENCY"):
            deployment({"CREDIT_BATCH_SCORE_CONCURRENCY": bad})


@pytest.mark.services
def test_the_demo_on_an_s3_lake_writes_lake_and_models_to_the_bucket_and_nothing_local(
    tmp_path, s3_server
):
    settings = s3_settings(s3_server, tmp_path / "home")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CREDIT_BATCH_", "AWS_"))},
        "CREDIT_BATCH_HOME": str(settings.home),
        **storage_env(settings),
    }
    done = subprocess.run(
        [sys.executable, "-m", "credit_batch.cli", "demo", "--rows", "3000"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in settings.home.iterdir()) == ["results.duckdb", "warehouse.duckdb"]
    runs = query(settings, "SELECT report_path, rows_scored FROM scoring_runs ORDER BY 1")
    assert len(runs) == 2 and all(r["report_path"].startswith(settings.lake_url) for r in runs)
    (model,) = query(settings, "SELECT artifact_path FROM model_registry")
    assert model["artifact_path"].startswith(f"{settings.lake_url}/models/")
    assert settings.lake.at(model["artifact_path"]).is_file()
    names = {f.name for f in settings.lake.files()}
    assert {"_manifest.json", "part-00000.parquet", "report.html", "model.skops"} <= names
    assert not any(n.endswith(".tmp") for n in names)  # no temporary object left behind


@pytest.mark.services
def test_results_in_a_named_schema_leave_public_empty(tmp_path, pg_url):
    settings = Settings(
        home=tmp_path / "home",
        warehouse_url=pg_url,
        results_url=pg_url,
        results_schema="credit_results",
    )
    build_demo(settings)
    run_pipeline(settings, snapshot_date="2026-09-30", sample_rows=300, repeats=1)
    from credit_batch.stores.db import connect

    with connect(pg_url, read_only=True) as db:
        tables = db.fetch_arrow(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_name IN ('predictions', 'scoring_runs', 'latest_predictions')"
        ).to_pylist()
    assert sorted((t["table_schema"], t["table_name"]) for t in tables) == [
        ("credit_results", "latest_predictions"),
        ("credit_results", "predictions"),
        ("credit_results", "scoring_runs"),
    ]
    assert query(replace(settings), "SELECT 1 AS one") == [{"one": 1}]


@pytest.mark.services
def test_the_analyst_role_reads_latest_predictions_and_can_change_nothing(tmp_path, pg_url):
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql is not installed")
    settings = Settings(
        home=tmp_path / "home", warehouse_url=pg_url, results_url=pg_url, results_schema="results"
    )
    build_demo(settings)
    run_pipeline(settings, snapshot_date="2026-09-30", sample_rows=300, repeats=1)
    roles = subprocess.run(
        [psql, pg_url, "-q", "-v", "schema=results", "-f", str(REPO / "sql/roles/postgresql.sql")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert roles.returncode == 0, roles.stderr
    import psycopg

    with psycopg.connect(pg_url.replace("postgresql://", "postgresql://", 1)) as con:
        con.execute("SET ROLE analyst")
        (n,) = con.execute("SELECT COUNT(*) FROM results.latest_predictions").fetchone()
        assert n > 0
        refused = []
        for statement in (
            "INSERT INTO results.predictions (snapshot_date) VALUES ('2026-01-31')",
            "UPDATE results.predictions SET score = 0",
            "DELETE FROM results.predictions",
            "CREATE TABLE results.mine (x int)",
            "CREATE TABLE public.mine (x int)",
            "CREATE SCHEMA mine",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), con.transaction():
                con.execute(statement)
            refused.append(statement.split()[0])
    assert refused == ["INSERT", "UPDATE", "DELETE", "CREATE", "CREATE", "CREATE"]


@pytest.mark.unit
def test_a_results_schema_that_is_not_an_identifier_is_refused():
    with pytest.raises(ParameterError, match="CREDIT_BATCH_RESULTS_SCHEMA"):
        Settings.from_env({"CREDIT_BATCH_RESULTS_SCHEMA": "x; DROP TABLE y"})


@pytest.mark.unit
def test_a_local_lake_url_is_the_default_layout(tmp_path):
    settings = Settings(home=tmp_path)
    assert settings.lake_url == str(tmp_path.resolve() / "lake")
    assert settings.models_url == str(tmp_path.resolve() / "models")
    assert settings.lake.is_local and settings.lake.uri == settings.lake_url
    file_url = Settings(home=tmp_path, lake_url=f"file://{tmp_path}/elsewhere")
    assert file_url.lake.uri == str(Path(tmp_path).resolve() / "elsewhere")


@pytest.mark.unit
def test_a_run_without_partition_or_chunk_params_takes_the_deployments_settings():
    from credit_batch.config import RUN_PARAMS
    from credit_batch.run import RunOptions

    defaults = {name: schema["default"] for name, schema in RUN_PARAMS.items()}
    options = RunOptions.from_params(defaults)
    env = {"CREDIT_BATCH_ROWS_PER_PARTITION": "5000000", "CREDIT_BATCH_CHUNK_ROWS": "50000"}
    settings = Settings.from_env(env)
    assert (options.partition_rows(settings), options.chunk(settings)) == (5_000_000, 50_000)
    given = RunOptions.from_params({**defaults, "rows_per_partition": 700, "chunk_rows": 300})
    assert (given.partition_rows(settings), given.chunk(settings)) == (700, 300)


@pytest.mark.services
@pytest.mark.postgres
def test_the_roles_script_run_at_once_by_several_administrators_succeeds_every_time(
    pg_url, pg_admin
):
    """Roles are the cluster's: runs on two databases (two deployments, two test workers)
    race to create them, and runs on one database race to grant. The script's role names
    are swapped for names of this test's, so that it makes (and drops) only its own roles.

    The role race is forced: this test creates the writer role in a transaction it holds
    open, so the script finds no such role, then waits on the test's insert, then meets
    a duplicate when the test commits."""
    import time
    import uuid
    from concurrent.futures import ThreadPoolExecutor

    import psycopg

    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql is not installed")
    tag = uuid.uuid4().hex[:8]
    names = {"analyst": f"analyst_{tag}", "credit_batch_writer": f"writer_{tag}"}
    script = (REPO / "sql/roles/postgresql.sql").read_text()
    for role, mine in names.items():
        script = re.sub(rf"\b{role}\b", mine, script)
    assert "analyst" not in script.replace(names["analyst"], "")

    def run(_=None, app: str = "roles"):
        return subprocess.run(
            [psql, pg_url, "-q", "-v", "schema=results"],
            input=script,
            env={**os.environ, "PGAPPNAME": app},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    try:
        with psycopg.connect(pg_url.rsplit("/", 1)[0] + "/postgres") as other:
            other.execute(f'CREATE ROLE "{names["credit_batch_writer"]}" NOLOGIN')  # not committed
            with ThreadPoolExecutor(1) as pool:
                racing = pool.submit(run, app=f"race_{tag}")
                waiting = (
                    "SELECT 1 FROM pg_stat_activity "
                    "WHERE application_name = %s AND wait_event_type = 'Lock'"
                )
                deadline = time.monotonic() + 30
                while not pg_admin.execute(waiting, [f"race_{tag}"]).fetchone():
                    assert time.monotonic() < deadline, (
                        racing.result().stderr if racing.done() else "no wait"
                    )
                    time.sleep(0.05)
                other.commit()  # the script's CREATE ROLE now meets a duplicate
                raced = racing.result()
        with ThreadPoolExecutor(4) as pool:
            done = [raced, *pool.map(run, range(4))]
        errors = [line for d in done for line in d.stderr.splitlines() if "ERROR" in line]
        assert ([d.returncode for d in done], errors) == ([0] * 5, [])
        made = pg_admin.execute(
            "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s) ORDER BY 1",
            [list(names.values())],
        ).fetchall()
        assert [r[0] for r in made] == sorted(names.values())
    finally:
        with psycopg.connect(pg_url, autocommit=True) as con:
            for mine in names.values():
                if con.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [mine]).fetchone():
                    con.execute(f'DROP OWNED BY "{mine}"')
        for mine in names.values():
            pg_admin.execute(f'DROP ROLE IF EXISTS "{mine}"')
