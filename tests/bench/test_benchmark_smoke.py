"""The benchmark script still runs: a smoke size, so that it cannot rot (figures not checked)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_benchmark_runs_at_smoke_size_and_prints_every_figure(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "score_and_load.py"),
            "--rows",
            "20000",
            "--partition-rows",
            "5000",
            "--chunk-rows",
            "2000",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for figure in (
        "bare predict_proba",
        "pipeline score + load",
        "naive to_sql DuckDB",
        "naive to_sql SQLite",
        "pipeline / bare model",
        "reason codes, logreg",
        "reason codes, hgb",
    ):
        assert figure in done.stdout, (figure, done.stdout)
    assert "rows: 20,000  partitions: 4" in done.stdout
