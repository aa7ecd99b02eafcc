"""credit-batch on Airflow's CeleryExecutor, on one machine: ``up`` and ``down``.

``up`` starts, as background processes with a pid file and a log each under
``--dir``: an S3 API server for the lake and the models (moto's server), the
Airflow api-server, scheduler, dag-processor and triggerer, and two Celery
workers; the metadata database and the data live in the local PostgreSQL,
the Celery broker is the local Redis. It waits until every part is healthy,
then prints the environment a shell needs, one ``export KEY=VALUE`` a line:

    eval "$(deploy/celery/up --dir /tmp/cb)" && credit-batch demo

``down`` stops exactly the processes ``up`` recorded and nothing else.
``up`` again starts only what is not running (a worker that died, say).

Progress goes to standard error. Settings that differ from Airflow's
defaults, and why, are in ``docs/deploy.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from credit_batch.config import DAGS_FOLDER

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BUCKET = "credit-batch-lake"
ADMIN = "admin"
WORKERS = ("worker1", "worker2")
#: The stream the deployment's consumers score (credit-batch stream-score), on its Redis database.
STREAM = "events"
AIRFLOW_PROCESSES = ("api-server", "scheduler", "dag-processor", "triggerer", *WORKERS)
#: Connection ids the tasks read their stores from (never a URL in the DAG).
CONNECTIONS = {
    "warehouse": "credit_batch_warehouse",
    "results": "credit_batch_results",
    "lake": "credit_batch_lake",
}
EXECUTOR = "airflow.providers.celery.executors.celery_executor.CeleryExecutor"
LOAD_POOL = "credit_batch_load"
SCORE_QUEUE = "scoring"
#: A lost task (its worker killed or frozen) is failed after this many seconds
#: without a heartbeat, and retried after the retry delay: about a minute in all.
HEARTBEAT_TIMEOUT_SECONDS = 30
RETRY_DELAY_SECONDS = 10


def log(message: str) -> None:
    print(f"[deploy] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deploy/celery", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--dir", default="./celery-deployment", help="state, pid files and logs")
    parser.add_argument(
        "--pg-admin-url",
        default=os.environ.get(
            "CREDIT_BATCH_DEPLOY_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL role that may create databases",
    )
    parser.add_argument(
        "--redis",
        default=os.environ.get("CREDIT_BATCH_DEPLOY_REDIS", "127.0.0.1:6379"),
        help="HOST:PORT[/DB] of the Redis broker (default DB: one of 1-13 chosen by --dir)",
    )
    args = parser.parse_args(argv)
    folder = Path(args.dir).expanduser().resolve()
    if args.action == "down":
        return down(folder)
    return up(folder, pg_admin_url=args.pg_admin_url, redis=args.redis)


# -- state -------------------------------------------------------------------
def _state(folder: Path, pg_admin_url: str, redis: str) -> dict:
    """What this deployment is: names, ports and secrets, made once and kept in the folder."""
    path = folder / "deployment.json"
    if path.exists():
        return json.loads(path.read_text())
    tag = hashlib.sha256(str(folder).encode()).hexdigest()[:8]
    from cryptography.fernet import Fernet
    from sqlalchemy.engine import make_url

    admin = make_url(pg_admin_url)
    state = {
        "tag": tag,
        "pg": {
            "host": admin.host or "127.0.0.1",
            "port": admin.port or 5432,
            "user": admin.username or "postgres",
            "admin_db": admin.database or "postgres",
        },
        "data_db": f"credit_batch_{tag}",
        "airflow_db": f"credit_batch_{tag}_airflow",
        # A database of its own on the shared Redis (1-13; tests take 14 and 15).
        "redis": f"redis://{redis}" if "/" in redis else f"redis://{redis}/{1 + int(tag, 16) % 13}",
        "api_port": _free_port(),
        "s3_port": _free_port(),
        "log_ports": [_free_port(), _free_port()],
        "password": secrets.token_urlsafe(12),
        "db_password": "cb-" + secrets.token_urlsafe(12),
        "s3_key": "cb" + secrets.token_hex(6),
        "s3_secret": secrets.token_urlsafe(18),
        "fernet_key": Fernet.generate_key().decode(),
        "jwt_secret": secrets.token_urlsafe(24),
        "secret_key": secrets.token_urlsafe(24),
    }
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, indent=1))
    path.chmod(0o600)
    return state


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_url(
    state: dict, database: str, *, driver: str = "postgresql", password: bool = True
) -> str:
    pg = state["pg"]
    secret = f":{state['db_password']}" if password else ""
    return f"{driver}://{pg['user']}{secret}@{pg['host']}:{pg['port']}/{database}"


def client_env(folder: Path, state: dict) -> dict[str, str]:
    """What a shell needs to use the deployment (printed by ``up``)."""
    data = _pg_url(state, state["data_db"])
    return {
        "AIRFLOW_API": f"http://127.0.0.1:{state['api_port']}",
        "AIRFLOW_USER": ADMIN,
        "AIRFLOW_PASSWORD": state["password"],
        "CREDIT_BATCH_HOME": str(folder / "home"),
        "CREDIT_BATCH_WAREHOUSE_URL": data,
        "CREDIT_BATCH_RESULTS_URL": data,
        "CREDIT_BATCH_LAKE_URL": f"s3://{BUCKET}/lake",
        "CREDIT_BATCH_MODELS_URL": f"s3://{BUCKET}/models",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{state['s3_port']}",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": state["s3_key"],
        "AWS_SECRET_ACCESS_KEY": state["s3_secret"],
        "CREDIT_BATCH_REDIS_URL": state["redis"],
        "CREDIT_BATCH_STREAM": STREAM,
    }


def airflow_env(folder: Path, state: dict) -> dict[str, str]:
    """The environment of every Airflow process: config by variables, stores by connection."""
    home = folder / "airflow"
    api = f"http://127.0.0.1:{state['api_port']}"
    meta = _pg_url(state, state["airflow_db"], driver="postgresql+psycopg", password=False)
    client = client_env(folder, state)
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "AWS_", "CREDIT_BATCH_WAREHOUSE", "CREDIT_BATCH_RESULTS"))
    }
    return {
        **inherited,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__EXECUTOR": EXECUTOR,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": meta,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": meta,  # psycopg 3 is async too: no asyncpg
        "AIRFLOW__CELERY__BROKER_URL": state["redis"],
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + meta,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
        "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__CORE__FERNET_KEY": state["fernet_key"],
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(state["api_port"]),
        "AIRFLOW__API__BASE_URL": api,
        "AIRFLOW__API__SECRET_KEY": state["secret_key"],
        "AIRFLOW__API_AUTH__JWT_SECRET": state["jwt_secret"],
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_SECONDS),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "120",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(state["log_ports"][0]),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(state["log_ports"][1]),
        "CREDIT_BATCH_HOME": client["CREDIT_BATCH_HOME"],
        "CREDIT_BATCH_LAKE_URL": client["CREDIT_BATCH_LAKE_URL"],
        "CREDIT_BATCH_MODELS_URL": client["CREDIT_BATCH_MODELS_URL"],
        "CREDIT_BATCH_WAREHOUSE_CONN_ID": CONNECTIONS["warehouse"],
        "CREDIT_BATCH_RESULTS_CONN_ID": CONNECTIONS["results"],
        "CREDIT_BATCH_LAKE_CONN_ID": CONNECTIONS["lake"],
        "CREDIT_BATCH_LOAD_POOL": LOAD_POOL,
        "CREDIT_BATCH_SCORE_QUEUE": SCORE_QUEUE,
        "CREDIT_BATCH_RETRY_DELAY_SECONDS": os.environ.get(
            "CREDIT_BATCH_RETRY_DELAY_SECONDS", str(RETRY_DELAY_SECONDS)
        ),
    }


# -- up ------------------------------------------------------------------------
def up(folder: Path, *, pg_admin_url: str, redis: str) -> int:
    state = _state(folder, pg_admin_url, redis)
    for sub in ("pids", "logs", "airflow", "home"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    _check_redis(redis)
    _create_databases(state)
    env = airflow_env(folder, state)
    _write_passwords(folder, state)
    _start(folder, "s3", [_bin("moto_server"), "-H", "127.0.0.1", "-p", str(state["s3_port"])], env)
    _create_bucket(state)
    if not (folder / "airflow" / ".migrated").exists():
        log("migrating the Airflow metadata database")
        _run([_bin("airflow"), "db", "migrate"], env, folder / "logs" / "db-migrate.log")
        (folder / "airflow" / ".migrated").touch()
    _start(folder, "api-server", [_bin("airflow"), "api-server"], env)
    for name in ("scheduler", "dag-processor", "triggerer"):
        _start(folder, name, [_bin("airflow"), name], env)
    for name in WORKERS:
        command = [
            _bin("airflow"), "celery", "worker", "--celery-hostname", f"{name}@%h",
            "--queues", f"default,{SCORE_QUEUE}", "--concurrency", "1", "--skip-serve-logs",
            "--pid", str(folder / "pids" / f"{name}.celery.pid"),
        ]  # fmt: skip
        identity = {
            "CREDIT_BATCH_WORKER_NAME": name,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "worker_identity.hostname",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")])),
        }
        _start(folder, name, command, {**env, **identity})
    _start_stream(folder, state)
    token = _wait_for_api(folder, state)
    _configure(folder, state, token)
    _wait_for_workers(folder, env)
    for key, value in client_env(folder, state).items():
        print(f"export {key}={value}")
    log(f"up: Airflow at http://127.0.0.1:{state['api_port']} (user {ADMIN})")
    return 0


def _start_stream(folder: Path, state: dict) -> None:
    """Two stream consumers of the stream ``events`` on the deployment's Redis database
    (``credit-batch stream-score``), metrics on ``stream_metrics_port`` and the next port."""
    if "stream_metrics_port" not in state:  # a deployment made before the stream consumers
        state["stream_metrics_port"] = _free_port()
        (folder / "deployment.json").write_text(json.dumps(state, indent=1))
    command = [
        _bin("credit-batch"), "stream-score", "--stream", STREAM, "--redis-url", state["redis"],
        "--processes", "2", "--metrics-port", str(state["stream_metrics_port"]),
    ]  # fmt: skip
    _start(folder, "stream", command, {**os.environ, **client_env(folder, state)})


def _bin(name: str) -> str:
    """A command of this Python's environment (the venv that has Airflow installed)."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        sys.exit(f"deploy: {name} is not installed; pip install -c constraints.txt -e '.[deploy]'")
    return found


def _check_redis(address: str) -> None:
    host, _, port = address.split("/")[0].partition(":")
    try:
        with socket.create_connection((host, int(port or 6379)), timeout=3) as sock:
            sock.sendall(b"PING\r\n")
            assert sock.recv(64).startswith(b"+PONG")
    except (OSError, AssertionError) as exc:
        sys.exit(f"deploy: Redis at {address} does not answer PING: {exc}")


def _create_databases(state: dict) -> None:
    import psycopg

    pg = state["pg"]
    with psycopg.connect(host=pg["host"], port=pg["port"], user=pg["user"],
                         dbname=pg["admin_db"], autocommit=True) as con:  # fmt: skip
        for name in (state["data_db"], state["airflow_db"]):
            if not con.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                log(f"creating database {name}")
                con.execute(f'CREATE DATABASE "{name}"')


def _write_passwords(folder: Path, state: dict) -> None:
    path = folder / "airflow" / "passwords.json"
    path.write_text(json.dumps({ADMIN: state["password"]}))
    path.chmod(0o600)


def _pid(folder: Path, name: str) -> int | None:
    path = folder / "pids" / f"{name}.pid"
    if not path.exists():
        return None
    pid = int(path.read_text().split()[0])
    return pid if _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def _start(folder: Path, name: str, command: list[str], env: dict) -> None:
    if _pid(folder, name):
        log(f"{name} is running (pid {_pid(folder, name)})")
        return
    with open(folder / "logs" / f"{name}.log", "ab") as out:
        proc = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=folder, start_new_session=True,
        )  # fmt: skip
    (folder / "pids" / f"{name}.pid").write_text(f"{proc.pid}\n")
    log(f"started {name} (pid {proc.pid})")


def _run(command: list[str], env: dict, logfile: Path) -> None:
    with open(logfile, "ab") as out:
        done = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode:
        sys.exit(f"deploy: {' '.join(command[:3])} failed; see {logfile}")


def _create_bucket(state: dict) -> None:
    import pyarrow.fs as pafs

    fs = pafs.S3FileSystem(
        access_key=state["s3_key"], secret_key=state["s3_secret"], region="us-east-1",
        endpoint_override=f"127.0.0.1:{state['s3_port']}", scheme="http",
        allow_bucket_creation=True,
    )  # fmt: skip
    _until(lambda: fs.create_dir(BUCKET) or True, "the S3 API server", seconds=60)


def _until(check, what: str, *, seconds: float):
    deadline = time.monotonic() + seconds
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - anything means "not yet"
            last = exc
        time.sleep(1)
    sys.exit(f"deploy: {what} not ready after {seconds:.0f} s (last: {last})")


def api(state: dict, method: str, path: str, body=None, token: str | None = None):
    """One call to the deployment's REST API; the decoded JSON answer."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{state['api_port']}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json",
                 **({"Authorization": f"Bearer {token}"} if token else {})},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read() or b"null")


def _wait_for_api(folder: Path, state: dict) -> str:
    log("waiting for the api-server, scheduler, dag-processor and triggerer")

    def healthy():
        health = api(state, "GET", "/api/v2/monitor/health")
        return all(
            (health.get(part) or {}).get("status") == "healthy"
            for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
        )

    _until(healthy, "Airflow's health check", seconds=240)
    body = {"username": ADMIN, "password": state["password"]}
    token = api(state, "POST", "/auth/token", body)["access_token"]
    _until(
        lambda: api(state, "GET", "/api/v2/dags/credit_batch_nightly", token=token),
        "the DAG credit_batch_nightly (parsed by the dag-processor)",
        seconds=180,
    )
    return token


def _configure(folder: Path, state: dict, token: str) -> None:
    """The load's one-slot pool and the stores' connections, through the REST API."""
    pool = {"name": LOAD_POOL, "slots": 1, "description": "one load of a slice at a time"}
    _put(state, token, "/api/v2/pools", "name", pool)
    pg = state["pg"]
    for kind in ("warehouse", "results"):
        _put(state, token, "/api/v2/connections", "connection_id", {
            "connection_id": CONNECTIONS[kind], "conn_type": "postgres", "host": pg["host"],
            "port": pg["port"], "login": pg["user"], "password": state["db_password"],
            "schema": state["data_db"],
        })  # fmt: skip
    _put(state, token, "/api/v2/connections", "connection_id", {
        "connection_id": CONNECTIONS["lake"], "conn_type": "aws", "login": state["s3_key"],
        "password": state["s3_secret"],
        "extra": json.dumps({"endpoint_url": f"http://127.0.0.1:{state['s3_port']}",
                             "region_name": "us-east-1"}),
    })  # fmt: skip


def _put(state: dict, token: str, collection: str, key: str, body: dict) -> None:
    """Create ``body`` in a REST collection, or replace it where it exists."""
    try:
        api(state, "POST", collection, body, token)
    except urllib.error.HTTPError as exc:
        if exc.code != 409:
            raise
        api(state, "DELETE", f"{collection}/{body[key]}", None, token)
        api(state, "POST", collection, body, token)


def _wait_for_workers(folder: Path, env: dict) -> None:
    log("waiting for the Celery workers")
    probe = (
        "from airflow.providers.celery.executors.celery_executor import app\n"
        "print(' '.join(sorted(n.split('@')[0] for r in app.control.ping(timeout=3) for n in r)))"
    )

    def answered():
        done = subprocess.run(
            [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=False
        )
        return set(done.stdout.split()) >= set(WORKERS)

    _until(answered, "both Celery workers", seconds=180)


# -- down ------------------------------------------------------------------------
def down(folder: Path) -> int:
    """Stop every process ``up`` started, and nothing else.

    Each was started in a session of its own; Airflow's task runner puts each
    task in a process group of its own, so a process group is not enough: every
    process of the recorded sessions gets TERM, then KILL after 30 s.
    """
    sessions = {}
    for path in sorted((folder / "pids").glob("*.pid")):
        if not path.name.endswith(".celery.pid"):
            sessions[path.stem] = int(path.read_text().split()[0])
    for name, sid in sessions.items():
        log(f"stopping {name} (session {sid}: {len(session_members(sid))} processes)")
        signal_session(sid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(session_members(s) for s in sessions.values()):
        time.sleep(0.5)
    for name, sid in sessions.items():
        if session_members(sid):
            log(f"{name} did not stop in 30 s: SIGKILL")
            signal_session(sid, signal.SIGKILL)
    for path in (folder / "pids").glob("*.pid"):
        path.unlink()
    log("down")
    _say_what_is_kept(folder)
    return 0


def _say_what_is_kept(folder: Path) -> None:
    """``down`` stops processes only: name the data it keeps, and how to remove it."""
    path = folder / "deployment.json"
    if not path.is_file():
        return
    state = json.loads(path.read_text())
    log(
        f"kept (data, not processes): PostgreSQL databases {state['data_db']} and "
        f"{state['airflow_db']}, the Redis database {state['redis']} and the files "
        f"under {folder}; remove them with: dropdb {state['data_db']}; "
        f"dropdb {state['airflow_db']}; redis-cli -u {state['redis']} flushdb; rm -r {folder}"
    )


def session_members(sid: int) -> list[int]:
    """The live processes of session ``sid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] not in ("Z", "X"):
            found.append(int(stat.parent.name))
    return found


def signal_session(sid: int, sig: int) -> None:
    """Send ``sig`` to every process of session ``sid``."""
    for pid in session_members(sid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


if __name__ == "__main__":
    sys.exit(main())
