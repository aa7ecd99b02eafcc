"""The run report: self-contained HTML whose numbers match the tables; opens in Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from credit_batch.steps.report import write_report
from tests.conftest import REPO, query, run_pipeline, services_required

# Lanes per test: the browser test starts Chromium.


@pytest.fixture
def reported(demo):
    settings, _, record = demo
    run_pipeline(settings, snapshot_date="2026-09-30", sample_rows=800, repeats=2)
    path = write_report(settings, snapshot_date="2026-09-30")
    return settings, record, path


@pytest.mark.unit
def test_report_is_self_contained_and_its_numbers_match_the_tables(reported):
    settings, record, path = reported
    text = path.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "<script" not in text and "<link" not in text
    [run] = query(settings, "SELECT * FROM scoring_runs")
    assert run["report_path"] == str(path)
    assert f"<td>{run['rows_scored']:,}</td>" in text
    assert f"<td>{run['rows_quarantined']:,}</td>" in text and "reconciled" in text
    for d in query(settings, "SELECT feature, psi FROM drift"):
        assert f"<td>{d['feature']}</td><td>{d['psi']:.4f}</td>" in text
    for b in query(settings, "SELECT risk_band, COUNT(*) AS n FROM predictions GROUP BY 1"):
        assert f"<td>{b['risk_band']}</td><td>{b['n']:,}</td>" in text
    assert text.count("<svg") == 5  # histogram, two importances, SHAP summary, dependence
    assert record.model_version in text


@pytest.mark.services
def test_report_opens_in_headless_chromium_without_errors(reported, tmp_path):
    _, _, path = reported
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if services_required():
            pytest.fail("chromium is required (.ci/run installs Debian's chromium package)")
        pytest.skip("chromium is not installed")
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1200,4200",
            f"--screenshot={shot}",
            Path(path.path).as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.stat().st_size > 50_000
    artifacts = REPO / ".test-artifacts"
    artifacts.mkdir(exist_ok=True)
    shutil.copy(shot, artifacts / "report.png")  # kept for a look after the run
    assert "CONSOLE" not in done.stderr and "net::ERR" not in done.stderr, done.stderr[-2000:]
