"""Shared fixtures: small demo warehouses on DuckDB and PostgreSQL, a champion model.

Tests that need PostgreSQL skip when it is not reachable, and fail instead
when ``CREDIT_BATCH_REQUIRE_SERVICES=1`` (as in ``.ci/run``).
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from credit_batch import pipeline
from credit_batch.config import DAGS_FOLDER, Settings
from credit_batch.run import RunOptions

REPO = Path(__file__).resolve().parent.parent
PG_HOST = os.environ.get("CREDIT_BATCH_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("CREDIT_BATCH_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("CREDIT_BATCH_TEST_PG_USER", "postgres")
DEMO_ROWS = 3_000
DEMO_SNAPSHOTS = 4  # 2026-07-31 .. 2026-10-31; the last has no outcomes


def services_required() -> bool:
    return os.environ.get("CREDIT_BATCH_REQUIRE_SERVICES") == "1"


@pytest.fixture(scope="session")
def pg_admin():
    """An autocommit connection to PostgreSQL's ``postgres`` database."""
    psycopg = pytest.importorskip("psycopg")
    try:
        con = psycopg.connect(
            host=PG_HOST,
            port=PG_PORT,
            user=PG_USER,
            dbname="postgres",
            autocommit=True,
            connect_timeout=3,
        )
    except psycopg.OperationalError as exc:
        if services_required():
            pytest.fail(f"PostgreSQL at {PG_HOST}:{PG_PORT} is required but unreachable: {exc}")
        pytest.skip(f"PostgreSQL at {PG_HOST}:{PG_PORT} is not reachable: {exc}")
    yield con
    con.close()


@pytest.fixture
def pg_url(pg_admin):
    """URL of a fresh, empty PostgreSQL database, dropped after the test."""
    name = f"credit_batch_test_{uuid.uuid4().hex[:10]}"
    pg_admin.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    pg_admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# An oracle written apart from the package: the rows of a snapshot that break
# the GMSC rules (age 18..120, no 96/98 late-payment codes, no negatives, no
# missing values where none are allowed).
_BROKEN_ROWS_SQL = """
SELECT COUNT(*) AS n FROM features
WHERE snapshot_date = :d AND (
    age IS NULL OR age < 18 OR age > 120
    OR num_30_59_days_late IN (96, 98) OR num_60_89_days_late IN (96, 98)
    OR num_90_days_late IN (96, 98)
    OR num_30_59_days_late < 0 OR num_60_89_days_late < 0 OR num_90_days_late < 0
    OR revolving_unsecured_line_utilization IS NULL OR revolving_unsecured_line_utilization < 0
    OR debt_ratio IS NULL OR debt_ratio < 0 OR monthly_income < 0
    OR num_open_credit_loans IS NULL OR num_real_estate_loans IS NULL
    OR num_dependents < 0 OR num_dependents > 30)
"""


def broken_rows(settings: Settings, date) -> dict[int, dict]:
    """The oracle's broken rows of a snapshot (SQL written apart from the package): by id."""
    from credit_batch.stores.db import connect

    sql = _BROKEN_ROWS_SQL.replace("SELECT COUNT(*) AS n FROM features", "SELECT * FROM features")
    with connect(settings.warehouse_url, read_only=True) as db:
        return {r["customer_id"]: r for r in db.fetch_arrow(sql, {"d": date}).to_pylist()}


def expected_counts(settings: Settings, date) -> dict[str, int]:
    """Rows in, rows that must be quarantined, rows that must be scored, for a snapshot."""
    from credit_batch.stores.db import connect

    with connect(settings.warehouse_url, read_only=True) as db:
        total = db.fetch_arrow(
            "SELECT COUNT(*) AS n FROM features WHERE snapshot_date = :d", {"d": date}
        ).to_pylist()[0]["n"]
        broken = db.fetch_arrow(_BROKEN_ROWS_SQL, {"d": date}).to_pylist()[0]["n"]
    return {"rows_in": total, "quarantined": broken, "scored": total - broken}


def demo_frame(rows: int, *, seed: int = 0, snapshot: int = 0):
    """One generated snapshot as a frame: the spec's features (flags derived) and the label."""
    from credit_batch import demo

    _, table, outcomes = list(
        demo.generate(rows=rows, snapshots=snapshot + 1, seed=seed, unlabeled_snapshots=0)
    )[snapshot]
    frame = table.to_pandas()
    frame["high_debt_ratio"] = (frame["debt_ratio"] > 1).astype(float)
    frame["missing_monthly_income"] = frame["monthly_income"].isna().astype(float)
    frame["missing_num_dependents"] = frame["num_dependents"].isna().astype(float)
    frame["delinquency"] = outcomes.column("delinquency").to_numpy()
    return frame


def make_settings(home: Path, **overrides) -> Settings:
    return replace(Settings(home=home), **overrides)


def build_demo(settings: Settings, *, rows: int = DEMO_ROWS, promote: bool = True):
    """Write a small demo warehouse and train (and promote) a model on it."""
    written = pipeline.demo_data(settings, rows=rows, snapshots=DEMO_SNAPSHOTS, seed=7)
    record = pipeline.train(settings, until=written[-3]["snapshot_date"], seed=1)
    if promote:
        from credit_batch.stores import registry, results

        with results.open_results(settings) as db:
            registry.promote(db, settings, record.model_version)
    return written, record


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory):
    """A DuckDB demo home built once; tests copy it (building takes a few seconds)."""
    home = tmp_path_factory.mktemp("demo-template")
    written, record = build_demo(Settings(home=home))
    return home, written, record


@pytest.fixture
def demo(tmp_path, demo_template):
    """A private copy of the demo home: ``(settings, snapshots written, champion record)``."""
    import shutil

    home, written, record = demo_template
    shutil.copytree(home, tmp_path / "home")
    return Settings(home=tmp_path / "home"), written, record


S3_BUCKET = "credit-batch-test"


def redis_answers() -> bool:
    """Whether Redis answers a PING on 127.0.0.1:6379."""
    import socket

    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3 API on loopback (moto's server, its own process) with one bucket.

    Yields the :class:`~credit_batch.storage.S3Options` that reach it.
    The pipeline talks HTTP to it, as to AWS or MinIO: no storage call is mocked.
    """
    import subprocess
    import sys

    from credit_batch.storage import S3Options

    if not Path(sys.executable).with_name("moto_server").exists():
        reason = "moto[server] is not installed (pip install -e '.[dev]')"
        pytest.fail(reason) if services_required() else pytest.skip(reason)
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("moto_server")),
                "-H",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    options = S3Options(
        endpoint_url=f"http://127.0.0.1:{port}",
        region="us-east-1",
        access_key_id="testing",
        secret_access_key="testing-secret",
    )
    try:
        _create_bucket(options, S3_BUCKET, deadline=time.monotonic() + 30)
        yield options
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def s3_filesystem(options, **extra):
    """pyarrow's S3 client of the test S3 API server that ``options`` reach."""
    import pyarrow.fs as pafs

    return pafs.S3FileSystem(
        access_key=options.access_key_id,
        secret_key=options.secret_access_key,
        region=options.region,
        endpoint_override=options.endpoint_url.removeprefix("http://"),
        scheme="http",
        **extra,
    )


def _create_bucket(options, bucket: str, *, deadline: float) -> None:
    fs = s3_filesystem(options, allow_bucket_creation=True)
    while True:
        try:
            fs.create_dir(bucket)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def s3_settings(s3_server, home: Path, **overrides) -> Settings:
    """Settings whose lake and model store are a fresh prefix of the test bucket."""
    url = f"s3://{S3_BUCKET}/{uuid.uuid4().hex[:12]}"
    return Settings(home=home, lake_url=url, s3=s3_server, **overrides)


def storage_env(settings: Settings) -> dict[str, str]:
    """The variables a process needs to find ``settings``' lake, models and S3 API."""
    env = {
        "CREDIT_BATCH_LAKE_URL": settings.lake_url,
        "CREDIT_BATCH_MODELS_URL": settings.models_url,
    }
    if settings.s3.endpoint_url:
        env.update(
            AWS_ENDPOINT_URL=settings.s3.endpoint_url,
            AWS_REGION=settings.s3.region,
            AWS_ACCESS_KEY_ID=settings.s3.access_key_id,
            AWS_SECRET_ACCESS_KEY=settings.s3.secret_access_key,
        )
    return env


@pytest.fixture
def s3_demo(tmp_path, s3_server):
    """A demo whose lake and models are on the S3 API server; DuckDB warehouse and results."""
    settings = s3_settings(s3_server, tmp_path / "home")
    written, record = build_demo(settings)
    return settings, written, record


@pytest.fixture
def pg_demo(tmp_path, pg_url):
    """A demo with warehouse and results both in a fresh PostgreSQL database."""
    settings = Settings(home=tmp_path / "home", warehouse_url=pg_url, results_url=pg_url)
    written, record = build_demo(settings)
    return settings, written, record


def advisory_waits(pg_admin, url: str) -> list[tuple[str, list[str]]]:
    """Backends of ``url``'s database waiting on an advisory lock: each waiter's
    ``application_name`` and those of the backends blocking it (in that database only).

    Scoped to one test's own database, so another test's lock (under xdist)
    never satisfies a probe; the names say *whose* backend waits on *whom*.
    """
    from sqlalchemy.engine import make_url

    rows = pg_admin.execute(
        "SELECT w.application_name, array_remove(array_agg(b.application_name), NULL) "
        "FROM pg_locks AS l JOIN pg_stat_activity AS w ON w.pid = l.pid "
        "LEFT JOIN pg_stat_activity AS b ON b.pid = ANY(pg_blocking_pids(w.pid)) "
        "AND b.datname = w.datname "
        "WHERE l.locktype = 'advisory' AND NOT l.granted AND w.datname = %s "
        "GROUP BY w.pid, w.application_name",
        (make_url(url).database,),
    ).fetchall()
    return [(waiter, list(blockers)) for waiter, blockers in rows]


def query(settings: Settings, sql: str, params: dict | None = None) -> list[dict]:
    """Rows of a query on the results database, opened read-only."""
    from credit_batch.stores.db import connect

    with connect(settings.results_url, read_only=True) as db:
        return db.fetch_arrow(sql, params).to_pylist()


def stored_state(settings: Settings) -> dict:
    """What a "nothing written" check compares: the row count of every table of the
    results database, and (DuckDB) the size of its write-ahead log, where a write
    lands before a checkpoint copies it into the file."""
    from credit_batch.stores.db import connect

    with connect(settings.results_url, read_only=True) as db:
        tables = db.fetch_arrow(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
            "AND table_schema NOT IN ('information_schema', 'pg_catalog') ORDER BY 1"
        ).column(0)
        counts = " UNION ALL ".join(
            f"SELECT '{t}' AS t, COUNT(*) AS n FROM \"{t}\"" for t in tables.to_pylist()
        )
        state = dict(db.fetch_arrow(counts).to_pandas().itertuples(index=False, name=None))
    if settings.results_url.startswith("duckdb:///"):
        wal = Path(settings.results_url.removeprefix("duckdb:///") + ".wal")
        state["(wal bytes)"] = wal.stat().st_size if wal.exists() else 0
    return state


def run_pipeline(settings: Settings, **kwargs) -> dict:
    """extract -> score every partition (``workers`` processes) -> load -> importance.

    ``sample_rows`` and ``repeats`` are the importance options; the rest are
    :class:`~credit_batch.run.RunOptions`.
    """
    renamed = {"sample_rows": "importance_sample_rows", "repeats": "importance_repeats"}
    workers = kwargs.pop("workers", 1)
    options = RunOptions(**{renamed.get(k, k): v for k, v in kwargs.items()})
    plan = pipeline.extract(settings, options)
    scored = list(
        pipeline.score_partitions(
            settings, plan.run, plan.partitions, workers=workers, shadows=plan.shadows
        )
    )
    loaded = pipeline.load(settings, plan.run, scored, plan.shadows)
    pipeline.materialize(settings, plan.run)
    explained = pipeline.importance(settings, plan.run)
    return {"plan": plan, "scored": scored, "loaded": loaded, "explained": explained}


@pytest.fixture(scope="session")
def airflow_env(tmp_path_factory) -> dict[str, str]:
    """Environment of a private Airflow home (SQLite, no examples, our dags/ folder).

    Set in ``os.environ`` too, before any test imports Airflow, so that
    Airflow never writes to the user's ``~/airflow``.
    """
    pytest.importorskip("airflow.sdk", reason="apache-airflow is not installed")
    home = tmp_path_factory.mktemp("airflow-home")
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }
    os.environ.update(env)
    return env


@pytest.fixture(scope="session")
def airflow_db(airflow_env) -> dict[str, str]:
    """``airflow_env`` with its SQLite metadata database migrated."""
    import subprocess
    import sys

    airflow = str(Path(sys.executable).with_name("airflow"))
    done = subprocess.run(
        [airflow, "db", "migrate"],
        env={**os.environ, **airflow_env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return airflow_env


class LaneError(AssertionError):
    """A test of the unit lane reached for a subprocess or the network."""


@pytest.fixture(scope="session", autouse=True)
def _font_cache():
    """Build matplotlib's font cache before any guard: on a machine without one, its first
    import runs ``fc-list`` (a subprocess the unit lane's guard would blame on a test)."""
    import matplotlib.font_manager  # noqa: F401


@pytest.fixture(autouse=True)
def _unit_lane_guard(request, monkeypatch, _font_cache):
    """In the unit lane, starting a subprocess or opening a TCP or PostgreSQL connection fails."""
    if request.node.get_closest_marker("unit") is None:
        return
    import socket
    import subprocess

    def refuse(what):
        def _refused(*args, **kwargs):
            raise LaneError(f"{request.node.nodeid} is in the unit lane but {what}")

        return _refused

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse("starts a subprocess"))
    real_connect = socket.socket.connect

    def connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            refuse(f"opens a TCP connection to {address}")()
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    try:
        import psycopg
    except ImportError:
        return
    monkeypatch.setattr(psycopg, "connect", refuse("connects to PostgreSQL"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With ``CREDIT_BATCH_REQUIRE_SERVICES=1`` (CI), a skipped test fails: nothing skips silently.

    Whatever the cause (PostgreSQL unreachable, psycopg, Airflow, psql or
    Chromium missing), a skip in CI means a promise went unchecked.
    """
    outcome = yield
    report = outcome.get_result()
    if report.skipped and services_required() and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped, but CREDIT_BATCH_REQUIRE_SERVICES=1 forbids skips: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """The same rule at collection: a module-level ``importorskip`` or skip fails in CI."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and services_required():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = (
            f"skipped at collection, but CREDIT_BATCH_REQUIRE_SERVICES=1 forbids skips: {reason}"
        )


#: The reliability suite's lines (kind, case, expected, seen), gathered from the reports.
RELIABILITY: list[tuple[str, str, str, str]] = []


#: Measured figures some end-to-end tests report (wall times, which worker retried).
FIGURES: list[str] = []


def pytest_runtest_logreport(report):
    if report.when == "call":
        RELIABILITY.extend(v for k, v in report.user_properties if k == "reliability")
        FIGURES.extend(v for k, v in report.user_properties if k == "figures")


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("figures measured by the tests")
        for line in FIGURES:
            terminalreporter.write_line(line)
    if not RELIABILITY:
        return
    faults = sum(1 for o in RELIABILITY if o[0] == "fault")
    terminalreporter.section(
        f"reliability: {faults} faults injected, {len(RELIABILITY) - faults} bad inputs tried"
    )
    width = max(len(o[1]) for o in RELIABILITY)
    terminalreporter.write_line(f"{'kind':<10} {'case':<{width}}  {'expected':<40} seen")
    for kind, name, expected, seen in RELIABILITY:
        terminalreporter.write_line(f"{kind:<10} {name:<{width}}  {expected:<40} {seen}")


#: The longest indivisible pieces, started first so that two workers end together:
#: a file whose tests share a module's fixture (a deployment, a clone) runs
#: whole on one worker, longest first.
SLOW_FIRST = (
    "tests/newcomer/test_readme.py",
    "tests/e2e/test_celery_deployment.py",
    "tests/bench/test_benchmark_smoke.py",
    "tests/e2e/test_wheel.py",
    "tests/golden/test_expected_run.py",
    "tests/reliability/test_bad_inputs.py",
    # the unit lane's (pytest -m unit):
    "tests/unit/test_serve_schema.py",
    "tests/unit/test_portfolio.py",  # its book built once, its tests on one worker
    "tests/unit/test_segments.py",  # its loan book built once
    "tests/unit/test_portfolio_example.py",  # the CLI's portfolio demo, once
    "tests/unit/test_lifecycle.py",
    "tests/unit/test_cli_teaches.py",
    "tests/unit/test_pipeline.py",
    "tests/unit/test_budget_and_duplicates.py",
    "tests/unit/test_serve.py",
)
#: Files whose tests share no fixture wider than a function: their tests are
#: spread over the workers one by one; every other file runs whole on one
#: worker, so that its module fixtures are built once (``scope_of``).
SPREAD = (
    "tests/reliability/test_kill_points.py",
    "tests/reliability/test_faults.py",
    "tests/e2e/test_airflow_semantics.py",
    "tests/e2e/test_airflow_nightly.py",
    "tests/e2e/test_model_lifecycle_dags.py",
    "tests/e2e/test_lender_example.py",
    "tests/unit/test_lifecycle.py",
    "tests/unit/test_cli_teaches.py",
    "tests/unit/test_pipeline.py",
    "tests/unit/test_budget_and_duplicates.py",
    "tests/unit/test_rough_edges.py",
    "tests/unit/test_analyst_and_cli.py",
    "tests/unit/test_key_types.py",
    "tests/unit/test_serve_schema.py",  # one fuzzed operation per test (the app built per worker)
)


def scope_of(nodeid: str) -> str:
    """The unit of work a test is scheduled in: its file, or itself (a ``SPREAD`` file's)."""
    path = nodeid.split("::")[0]
    return nodeid if path in SPREAD else path


@pytest.hookimpl(tryfirst=True)  # before xdist's own choice from --dist
def pytest_xdist_make_scheduler(config, log):
    """xdist's scope scheduling with ``scope_of`` as the scope, in collection order.

    xdist's ``--dist loadgroup`` marks a group by appending it to the node id,
    which pytest 9 no longer lets a plugin do: every test became its own unit,
    module fixtures were built on both workers and two Celery deployments ran
    at once on one Redis database. The scope comes from the node id alone here.
    """
    from xdist.scheduler import LoadScopeScheduling

    class _FileScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    return _FileScheduling(config, log)


#: The lanes: every test carries exactly one of these markers.
LANES = ("unit", "services", "airflow", "e2e")
#: Fixtures that reach a service, Airflow or a subprocess: never in the unit lane.
SERVICE_FIXTURES = {
    "pg_admin",
    "pg_url",
    "pg_demo",
    "s3_server",
    "s3_demo",
    "airflow_env",
    "airflow_db",
    "backend",
}


def lane_problems(items) -> list[str]:
    """Each collected test without exactly one lane, or in ``unit`` with a service fixture."""
    problems = []
    for item in items:
        lanes = sorted({m.name for m in item.iter_markers() if m.name in LANES})
        if len(lanes) != 1:
            problems.append(f"{item.nodeid}: lanes {lanes or 'none'} (exactly one of {LANES})")
        elif lanes == ["unit"]:
            used = SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ()))
            if used or item.get_closest_marker("postgres"):
                problems.append(f"{item.nodeid}: in the unit lane but uses {sorted(used)}")
    return problems


def pytest_collection_modifyitems(items):
    problems = lane_problems(items)
    if problems and os.environ.get("CREDIT_BATCH_LANE_AUDIT") != "1":
        raise pytest.UsageError("tests without a proper lane marker:\n" + "\n".join(problems))

    def rank(item) -> int:
        path = item.nodeid.split("::")[0]
        return SLOW_FIRST.index(path) if path in SLOW_FIRST else len(SLOW_FIRST)

    items.sort(key=rank)  # stable: the order within a file is kept (and scheduled so)


def revoked_within(client, key: str, revoke) -> float:
    """Seconds from ``revoke()`` to the first 403 of ``key`` (which answers 200 first)."""
    from credit_batch import serve

    path, headers = "/v1/customers/1/score", {"Authorization": f"Bearer {key}"}
    deadline = time.monotonic() + 3 * serve.CACHE_SECONDS
    while client.get(path, headers=headers).status_code != 200:  # a new key: once refreshed
        assert time.monotonic() < deadline, "the new key is never accepted"
        time.sleep(0.1)
    t0 = time.monotonic()
    revoke()
    while (status := client.get(path, headers=headers).status_code) == 200:
        assert time.monotonic() < t0 + 3 * serve.CACHE_SECONDS, "the revoked key still answers"
        time.sleep(0.05)
    assert status == 403
    return time.monotonic() - t0
