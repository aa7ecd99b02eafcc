"""The README as a newcomer runs it: every command block, verbatim, in a fresh clone.

The blocks are read from README.md and the docs pages themselves, so the two
cannot drift (``tests/newcomer/blocks.py`` says how they run). A new command
block fails :func:`test_every_command_block_of_every_page_is_covered` until a
test runs it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, services_required
from tests.newcomer.blocks import (
    PAGES,
    fresh_clone,
    newcomer_env,
    page_blocks,
    readme_blocks,
    run_block,
)

# A block runs for minutes (standalone, the Celery deployment): a timeout above its own.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]


def test_every_command_block_of_every_page_is_covered():
    pages = [
        "README.md",
        *(str(p.relative_to(REPO)) for p in sorted((REPO / "docs").rglob("*.md"))),
    ]
    counts = {page: len(page_blocks(page)) for page in pages}
    assert {p: n for p, n in counts.items() if n} == {p: len(n) for p, n in PAGES.items()}
    blocks = readme_blocks()
    for page, names in PAGES.items():  # a repeated name repeats the very same text
        assert [blocks[n] for n in names] == page_blocks(page), page


def test_the_quick_check_is_the_unit_lane_of_the_test_command_which_runs_every_lane():
    blocks = readme_blocks()
    assert blocks["quick"].strip() == ".venv/bin/python -m pytest -m unit"
    assert blocks["tests"].strip().endswith("&& .venv/bin/python -m pytest")  # every lane


def test_the_readme_test_command_is_the_one_ci_runs():
    command = readme_blocks()["tests"].strip()
    # the last line: in a `a && b` list only the last command's failure ends a `set -e` script
    assert (REPO / ".ci" / "run").read_text().strip().splitlines()[-1] == command


@pytest.fixture(scope="module")
def clone(tmp_path_factory, wheelhouse) -> Path:
    """A fresh clone of this checkout, its installs served from the wheelhouse."""
    return fresh_clone(tmp_path_factory)


@pytest.fixture(scope="module")
def demo_output(clone) -> str:
    """The first command of the README, run in the fresh clone."""
    return run_block(clone, "demo")


@pytest.fixture(scope="module")
def dags_test_output(clone, demo_output) -> str:
    """The output of the in-process Airflow block (installs the airflow extra)."""
    return run_block(clone, "dags_test")


@pytest.fixture(scope="module")
def airflow_installed(clone, dags_test_output) -> Path:
    """The clone after the README's in-process Airflow block."""
    return clone


def test_first_command_installs_and_runs_the_demo_in_a_fresh_clone(clone, demo_output):
    assert demo_output.count("customers scored") == 2
    assert demo_output.count("risk band  customers  mean score") == 2
    assert "top features (mean |SHAP|):" in demo_output
    assert "look further: .venv/bin/credit-batch sql" in demo_output  # runnable as printed
    assert (clone / "data" / "results.duckdb").is_file()


def test_demo_run_twice_registers_one_model_and_the_band_query_lists_each_band_once(
    clone, demo_output
):
    run_block(clone, "demo")
    out = run_block(clone, "query")
    rows = [line.split() for line in out.splitlines() if re.match(r"\s+2026-", line)]
    assert len(rows) == 10  # 2 snapshots x bands A..E, once each
    assert {r[2] for r in rows} == set("ABCDE") and len({r[1] for r in rows}) == 1


def test_airflow_dags_test_block_runs_the_nightly_dag(airflow_installed, dags_test_output):
    errors = [line for line in dags_test_output.splitlines() if "[error" in line]
    assert errors == []  # a successful run logs no error (iterating the mapped scores did)
    [done] = [line for line in dags_test_output.splitlines() if "done: 2026-09-30 / " in line]
    assert "results.duckdb (table predictions); report: " in done, done
    out = subprocess.run(
        [str(airflow_installed / ".venv" / "bin" / "credit-batch"), "runs"],
        cwd=airflow_installed,
        env=newcomer_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "airflow credit_batch_nightly/" in out


def test_airflow_standalone_block_starts_triggers_waits_for_success_and_stops(
    airflow_installed,
):
    clone = airflow_installed
    out = run_block(clone, "standalone", timeout=900)
    assert '"state":"success"' in out, out[-3000:]
    left = subprocess.run(
        ["pgrep", "-f", f"{clone}/.venv/bin/airflow"], capture_output=True, text=True
    )
    assert left.stdout == "", f"Airflow processes left running: {left.stdout}"


@pytest.mark.postgres
def test_postgresql_block_creates_the_database_runs_and_queries_with_psql(
    clone, demo_output, pg_admin
):
    if shutil.which("createdb") is None or shutil.which("psql") is None:
        if services_required():
            pytest.fail("the PostgreSQL client programs (createdb, psql) are required")
        pytest.skip("the PostgreSQL client programs (createdb, psql) are not installed")
    # The block creates the database the README names. One that exists already is
    # someone's: the test neither drops nor writes it, and says why it cannot run.
    exists = "SELECT 1 FROM pg_database WHERE datname = %s"
    if pg_admin.execute(exists, ["credit_batch"]).fetchone():
        reason = "database credit_batch exists on this server (it may be a user's): left alone"
        if services_required():
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        out = run_block(clone, "postgresql")
    finally:  # only what this test created
        pg_admin.execute('DROP DATABASE IF EXISTS "credit_batch" WITH (FORCE)')
    assert "customers scored" in out
    assert re.search(r"\(10 rows\)", out), out[-3000:]


def test_own_data_block_checks_trains_and_scores_the_lender_spec(clone, demo_output):
    out = run_block(clone, "own_data")
    assert "spec lender (sql/specs/lender/spec.toml): valid" in out
    assert "15 features fit (query-derived: utilization)" in out
    assert re.search(r"registered logreg-20260831-\w+: ROC AUC 0\.[6-9]", out), out[-3000:]
    assert "customers scored" in out and "as 'other'" in out
    assert re.search(r"(employment|housing|loan_purpose|region|channel) +\d", out), out[-3000:]
    assert (
        not (clone / "data" / "lender").exists() and (clone / "lender" / "results.duckdb").is_file()
    )


@pytest.mark.postgres
def test_production_block_brings_up_celery_runs_the_demo_and_a_triggered_night_and_stops(
    airflow_installed, pg_admin
):
    import json

    clone = airflow_installed
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


def test_lifecycle_block_trains_gates_promotes_backfills_and_monitors(clone, demo_output):
    out = run_block(clone, "lifecycle")
    version = re.search(r"registered (lgbm-\S+) \(challenger\)", out).group(1)
    assert "gates: passed" in out and f"champion: {version}" in out, out[-3000:]
    assert re.search(rf"{version} +promoted +by \S+: beats the champion out of time", out)
    assert out.count("scored in") == 4  # the four snapshots of the range, by the new champion
    assert re.search(r"2026-09-30 lgbm-\S+ +champion +out of time +\d", out), out[-3000:]


def test_serving_block_looks_up_and_scores_over_http_and_stops_the_server(clone, demo_output):
    import json

    out = run_block(clone, "serving")
    lines = [line for line in out.splitlines() if line.startswith("{")]
    stored, now, online = (json.loads(line) for line in lines[:3])
    assert stored["customer_id"] == 1 and stored["reason_1_text"], out[-3000:]
    assert (now["score"], now["features_snapshot_date"]) == (stored["score"], "2026-10-31")
    assert f"customer 1: score {stored['score']:.4f}, band {stored['risk_band']}" in out
    assert online["risk_band"] in {"A", "B", "C", "D", "E"} and len(online["reasons"]) == 3
    assert all(reason["text"] for reason in online["reasons"])  # the README shows them
    left = subprocess.run(["pgrep", "-f", f"{clone}/.venv/bin/credit-batch serve"],
                          capture_output=True, text=True)  # fmt: skip
    assert left.stdout == "", f"the server was left running: {left.stdout}"


def test_streaming_block_scores_live_events_and_the_scores_move(clone, demo_output):
    from tests.conftest import redis_answers

    if not redis_answers():
        reason = "Redis is not running on 127.0.0.1:6379"
        pytest.fail(reason) if services_required() else pytest.skip(reason)
    out = run_block(clone, "streaming")
    found = re.search(r"events (\d+), scored (\d+), dead (\d+)", out)
    assert found, out[-3000:]
    events, scored, dead = map(int, found.groups())
    assert events >= 100 and scored == events and dead == 0  # 50 events/s for 3 s
    rows = re.findall(r"^ +(\d+) +(0\.\d{4}) +(0\.\d{4}) +(\d+)$", out, re.M)
    assert len(rows) >= 15, out[-3000:]  # of the 20 customers, most had an event
    assert any(night != now for _, night, now, _ in rows)  # the scores moved


def test_adverse_action_block_prints_each_decline_with_at_most_four_reasons(clone, demo_output):
    out = run_block(clone, "adverse_action")
    head = out.splitlines()[:2]
    assert re.match(r"gmsc \S+ customer \d+: score 0\.\d{4} > cutoff 0\.1$", head[0]), out[-3000:]
    assert head[1].startswith("  1. "), out[-3000:]
    lines = (clone / "data" / "notices.txt").read_text().splitlines()
    starts = [i for i, line in enumerate(lines) if not line.startswith("  ")]
    sizes = [b - a - 1 for a, b in zip(starts, [*starts[1:], len(lines)], strict=True)]
    assert len(starts) > 1000 and set(sizes) <= {1, 2, 3, 4}, out[-3000:]
    rows = (clone / "data" / "notices.csv").read_text().count("\n")
    assert rows == 1 + sum(sizes) and f"{len(lines)} data/notices.txt" in out, out[-3000:]


def test_fairness_search_block_prints_the_baseline_and_its_variants(clone, demo_output):
    out = run_block(clone, "fairness_search")
    assert "less discriminatory alternatives, validated on 2026-09-30" in out, out[-3000:]
    rows = re.findall(r"^  (baseline|drop \S+|cap \S+) +(\d+) +0\.(\d{4}) +(\S+)", out, re.M)
    assert rows and rows[0][:2] == ("baseline", "13") and len(rows) in (2, 3), out[-3000:]


def test_inventory_block_writes_the_page_with_the_demo_models_owner_tier_and_history(
    clone, demo_output
):
    out = run_block(clone, "inventory")
    assert out.strip().endswith("data/lake/reports/inventory/inventory.html"), out[-3000:]
    page = (clone / "data/lake/reports/inventory/inventory.html").read_text()
    assert "<h2 id='gmsc'>gmsc</h2>" in page and "<b>tier</b>: 1</li>" in page
    assert "<b>owner</b>: credit-risk</li>" in page and "promoted by" in page


def test_what_the_documented_blocks_leave_in_the_clone_is_ignored_by_git():
    """The folders and files the blocks write (the demo's data, the lender example's home,
    Airflow's home and log, the Celery deployment's folder) never show up as changes."""
    left = [
        "data/results.duckdb",
        "lender/results.duckdb",
        "streaming/results.duckdb",
        ".airflow/airflow.db",
        "airflow.log",
        "airflow.pid",
        ".celery/deployment.json",
        "site/index.html",
        ".venv/bin/python",
    ]
    done = subprocess.run(
        ["git", "check-ignore", "--verbose", "--non-matching", "--no-index", *left],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = done.stdout.splitlines()
    not_ignored = [line.split("\t")[1] for line in lines if line.startswith("::")]
    assert not_ignored == [] and len(lines) == len(left), done.stdout
