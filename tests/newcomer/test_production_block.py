"""The production page's Celery block as a newcomer runs it, verbatim, in a fresh clone.

Apart from ``test_readme.py`` so that it can run on the worker of the other
Celery deployment (``tests/e2e/test_celery_deployment.py``) and never beside it:
two deployments at once on two cores each took four times as long. Its clone
has only the virtual environment the README's first command creates (the block
installs what it needs; its demo writes PostgreSQL and the bucket, not ``data/``).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.newcomer.blocks import fresh_clone, newcomer_env, run_block

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def venv_clone(tmp_path_factory, wheelhouse) -> Path:
    """A fresh clone after the first step of the README's first command."""
    clone = fresh_clone(tmp_path_factory)
    subprocess.run(
        ["python3", "-m", "venv", ".venv"], cwd=clone, env=newcomer_env(), check=True, timeout=120
    )
    return clone


def test_production_block_brings_up_celery_runs_the_demo_and_a_triggered_night_and_stops(
    venv_clone, pg_admin
):
    clone = venv_clone
    state = clone / ".celery" / "deployment.json"
    try:
        out = run_block(clone, "production", timeout=1500)
    finally:
        subprocess.run(
            [str(clone / "deploy" / "celery" / "down"), "--dir", str(clone / ".celery")],
            env=newcomer_env(),
            capture_output=True,
            timeout=120,
            check=False,
        )
        if state.exists():
            names = json.loads(state.read_text())
            for name in (names["data_db"], names["airflow_db"]):
                pg_admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert re.search(r'"state": *"success"', out), out[-3000:]
    assert "airflow credit_batch_nightly/celery-2026-09-30" in out, out[-3000:]
    assert "kept (data, not processes): PostgreSQL databases" in out, out[-3000:]  # down says so
    left = subprocess.run(["pgrep", "-f", str(clone / ".celery")], capture_output=True, text=True)
    assert left.stdout == "", f"processes of the deployment left running: {left.stdout}"
