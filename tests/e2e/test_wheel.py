"""The built wheel works on its own: from an empty folder, outside the checkout.

The wheel is built from this checkout and installed without its
dependencies into a fresh virtual environment in a temporary folder; the
dependencies come from this test run's pinned environment through a plain
path entry (a ``.pth`` line, whose own ``.pth`` files, the editable install's
finder among them, are not run). So ``credit_batch`` is imported from the
wheel's files and nothing else: a SQL file, a spec or a DAG the wheel forgot
fails here. Installing the dependencies again would only repeat what the
newcomer tests already do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


def _run(args, *, cwd, env, timeout=600) -> subprocess.CompletedProcess:
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """A fresh venv holding only the wheel, and an empty working folder."""
    root = tmp_path_factory.mktemp("wheel")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(root), "PIP_NO_INPUT": "1"}
    pip = [sys.executable, "-m", "pip"]
    _run(
        [*pip, "wheel", "-q", "--no-deps", "-w", str(root / "dist"), str(REPO)],
        cwd=root,
        env={**os.environ, "PIP_NO_INPUT": "1"},
    )
    (wheel,) = (root / "dist").glob("credit_batch-*.whl")
    venv = root / "venv"
    _run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], cwd=root, env=env)
    purelib = Path(sysconfig.get_paths(vars={"base": str(venv)})["purelib"])
    target = ["--target", str(purelib), "--no-deps", "--no-index", "-q", str(wheel)]
    _run([*pip, "install", *target], cwd=root, env={**os.environ, "PIP_NO_INPUT": "1"})
    (purelib / "_pinned_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = root / "empty"
    work.mkdir()
    return {"python": str(venv / "bin" / "python"), "work": work, "env": env, "wheel": wheel}


def _cli(installed, *args, extra_env=None):
    code = "import sys; from credit_batch.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {**installed["env"], **(extra_env or {})}
    return _run([installed["python"], "-c", code, *args], cwd=installed["work"], env=env)


def test_the_wheel_is_imported_from_the_fresh_environment_not_the_checkout(installed):
    probe = "import credit_batch.config as c; print(c.__file__, c._PACKAGE_SQL_DIR)"
    out = _run([installed["python"], "-c", probe], cwd=installed["work"], env=installed["env"])
    package, sql_dir = out.stdout.split()
    assert Path(package).is_relative_to(installed["python"].rsplit("/bin/", 1)[0])
    assert not Path(package).is_relative_to(REPO)
    assert (Path(sql_dir) / "specs" / "gmsc" / "spec.toml").is_file()


def test_demo_and_an_airflow_run_work_from_an_empty_folder(installed):
    work = installed["work"]
    out = _cli(installed, "demo", "--rows", "3000").stdout
    assert out.count("risk band  customers  mean score") == 2
    assert (work / "data" / "results.duckdb").is_file()

    folder = _cli(installed, "dags-folder").stdout.strip()
    assert not Path(folder).is_relative_to(REPO)
    assert (Path(folder) / ".airflowignore").read_text().split() == ["_tasks.py"]  # not a DAG
    airflow_env = {
        "AIRFLOW_HOME": str(work / ".airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": folder,
        "CREDIT_BATCH_HOME": str(work / "data"),
    }
    env = {**installed["env"], **airflow_env}
    airflow = [installed["python"], "-m", "airflow"]
    _run([*airflow, "db", "migrate"], cwd=work, env=env)
    dates = json.loads(
        _cli(
            installed,
            "sql",
            "SELECT DISTINCT snapshot_date::VARCHAR AS d FROM predictions ORDER BY 1",
            "--json",
        ).stdout
    )
    conf = json.dumps({"snapshot_date": dates[0]["d"]})
    _run(
        [*airflow, "dags", "test", "credit_batch_nightly", "2026-11-01", "-c", conf],
        cwd=work,
        env=env,
    )
    query = (
        "SELECT airflow_dag_id, snapshot_date::VARCHAR AS d, status, rows_scored > 0 AS scored"
        " FROM scoring_runs WHERE airflow_dag_id IS NOT NULL"
    )
    runs = json.loads(_cli(installed, "sql", query, "--json").stdout)
    expected = {"airflow_dag_id": "credit_batch_nightly", "d": dates[0]["d"], "scored": True}
    assert [{k: r[k] for k in expected} for r in runs] == [expected], runs
