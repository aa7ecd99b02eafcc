"""A process killed with SIGKILL at each named point leaves the old slice or the new one.

Each test: a complete run of the date is loaded (the old slice); a new
process runs the same date and kills itself at the fault point; the database
must then hold exactly the old slice or exactly the new one, never a mix,
never a duplicate; a retry of the same run id must complete. On DuckDB, on
PostgreSQL and with the lake and models on an S3 API server.
"""

from __future__ import annotations

import signal

import pytest

from tests.conftest import query
from tests.reliability.conftest import RUN_ARGS, assert_whole_slice, cli

pytestmark = pytest.mark.e2e

RUN_POINTS = [
    ("extract.after_first_part", "old"),
    ("extract.before_return", "old"),
    ("lake.before_rename", "old"),
    ("score.after_first_chunk", "old"),
    ("score.before_manifest", "old"),
    ("load.after_delete", "old"),
    ("load.after_insert", "old"),
    ("load.before_commit", "old"),
    ("load.after_commit", "new"),
    ("importance.before_commit", "new"),
]


@pytest.mark.parametrize(("point", "survivor"), RUN_POINTS)
def test_run_killed_at_point_leaves_one_whole_slice_and_retry_completes(
    any_lake, outcome, rerun, point, survivor
):
    settings, _, old_run = any_lake
    new_run = f"retry-{point.replace('.', '-')}"
    killed = cli(settings, *RUN_ARGS, "--run-id", new_run, fault=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    seen = assert_whole_slice(settings, old_run if survivor == "old" else new_run)
    code, log = rerun(settings, *RUN_ARGS, "--run-id", new_run)
    assert code == 0, log[-2000:]
    final = assert_whole_slice(settings, new_run)
    runs = query(settings, "SELECT run_id, importance_status FROM scoring_runs ORDER BY run_id")
    assert [r["run_id"] for r in runs] == sorted([old_run, new_run])
    assert all(r["importance_status"] == "computed" for r in runs)
    assert len(query(settings, "SELECT * FROM feature_importance")) == 26  # with, without labels
    outcome(
        f"{survivor} slice whole after kill; retry completes",
        f"{survivor}: {seen['rows']} rows, 0 dup; retry: {final['rows']} rows, 0 dup",
    )


def _scored_parts(settings, run_id: str) -> dict[str, float]:
    """The run's scored part files in the lake (local or S3), with their write times."""
    files = (settings.lake / "scores").files()
    return {
        f.uri: f.mtime()
        for f in files
        if f"/run_id={run_id}/" in f.uri
        and f.name.startswith("part-")
        and f.name.endswith(".parquet")
    }


def test_retry_after_a_kill_in_load_reuses_the_scored_partitions(any_lake, outcome, rerun):
    settings, _, _ = any_lake
    killed = cli(settings, *RUN_ARGS, "--run-id", "reuse-1", fault="load.after_insert")
    assert killed.returncode == -signal.SIGKILL
    before = _scored_parts(settings, "reuse-1")
    code, log = rerun(settings, *RUN_ARGS, "--run-id", "reuse-1")
    assert code == 0, log[-2000:]
    assert log.count("reusing scored partition") == len(before) == 3
    assert _scored_parts(settings, "reuse-1") == before
    parts = list(before)
    assert_whole_slice(settings, "reuse-1")
    outcome("3 partitions reused, not rescored", f"{len(parts)} reused, files untouched")


def test_changed_input_partition_is_rescored_not_reused(any_lake, outcome, rerun):
    settings, _, _ = any_lake
    assert (
        cli(settings, *RUN_ARGS, "--run-id", "reuse-2", fault="load.after_insert").returncode
        == -signal.SIGKILL
    )
    code, log = rerun(settings, *RUN_ARGS, "--run-id", "reuse-2", "--rows-per-partition", "700")
    assert code == 0, log[-2000:]
    assert log.count("scored ") >= 3 and "reusing scored partition" not in log  # rescored
    assert_whole_slice(settings, "reuse-2")
    outcome("new partitioning: every partition rescored", "0 reused")


_BY_MODEL = """
SELECT r.model_name, COUNT(*) AS n, COUNT(DISTINCT p.customer_id) AS customers,
       MIN(p.run_id) AS run_id, COUNT(DISTINCT p.run_id) AS runs
FROM predictions p JOIN model_registry r USING (model_version)
WHERE p.snapshot_date = :d GROUP BY r.model_name ORDER BY r.model_name
"""


def test_a_portfolio_night_killed_between_two_models_loads_leaves_each_slice_whole(
    demo, tmp_path, outcome
):
    """Killed after the first model's load committed: that slice new, the other's old."""
    from tests.reliability.conftest import DATE
    from tests.unit.test_portfolio import make_book, oracle

    settings, _, _ = make_book(demo, tmp_path)
    want = oracle(settings)
    assert cli(settings, *RUN_ARGS).returncode == 0  # the old night: both models
    old = {r["model_name"]: r for r in query(settings, _BY_MODEL, {"d": DATE})}
    killed = cli(settings, *RUN_ARGS, fault="load.after_commit")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    seen = {r["model_name"]: r for r in query(settings, _BY_MODEL, {"d": DATE})}
    for name in ("gmsc", "pd_accounts"):
        assert seen[name]["n"] == seen[name]["customers"] == want[name]  # whole, no duplicate
        assert seen[name]["runs"] == 1
    assert seen["gmsc"]["run_id"] != old["gmsc"]["run_id"]  # committed before the kill: new
    assert seen["pd_accounts"]["run_id"] == old["pd_accounts"]["run_id"]  # not reached: old
    assert cli(settings, *RUN_ARGS).returncode == 0  # the next try completes both
    final = {r["model_name"]: r for r in query(settings, _BY_MODEL, {"d": DATE})}
    assert {n: (r["n"], r["runs"]) for n, r in final.items()} == {
        n: (want[n], 1) for n in ("gmsc", "pd_accounts")
    }
    assert final["pd_accounts"]["run_id"] != old["pd_accounts"]["run_id"]
    outcome(
        "portfolio night: each model's slice old or new",
        f"gmsc new, pd_accounts old ({want['pd_accounts']} rows), then both new",
    )
