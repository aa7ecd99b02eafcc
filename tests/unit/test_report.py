"""The run report: self-contained HTML whose numbers match the tables; opens in Chromium."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from credit_batch.steps.report import rule_in_words, write_report
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
    texts = {
        r["feature"]: r["reason_text"] for r in query(settings, "SELECT * FROM feature_reasons")
    }
    for d in query(settings, "SELECT feature, psi FROM drift"):
        label = f"{texts[d['feature']]} ({d['feature']})" if d["feature"] in texts else "score"
        assert f"<td>{html.escape(label)}</td><td>{d['psi']:.4f}</td>" in text
    for b in query(settings, "SELECT risk_band, COUNT(*) AS n FROM predictions GROUP BY 1"):
        assert f"<td>{b['risk_band']}</td><td>{b['n']:,}</td>" in text
    assert text.count("<svg") == 5  # histogram, two importances, SHAP summary, dependence
    assert record.model_version in text


@pytest.mark.unit
def test_report_opens_with_a_paragraph_in_words_and_a_legend(reported):
    settings, record, path = reported
    text = path.read_text()
    [run] = query(settings, "SELECT * FROM scoring_runs")
    summary = re.search(r"<p class='summary'>(.*?)</p>", text).group(1)
    assert summary.startswith(f"Model {record.model_version} scored snapshot 2026-09-30: ")
    assert (
        f"{run['rows_scored']:,} customers scored and {run['rows_quarantined']:,} set aside"
        in summary
    )
    mean = query(settings, "SELECT AVG(score) AS m FROM predictions")[0]["m"]
    assert f"The mean score is {mean:.2%}; this model scored no earlier snapshot." in summary
    assert "the feature that moved most is " in summary
    assert "A: up to 2 %" in text and "stable below 0.10" in text
    for method in ("permutation_unlabeled", "log-odds", "ICE", "SHAP"):
        assert f"<b>{method}</b>: " in text


@pytest.mark.unit
@pytest.mark.parametrize(
    ("rule", "words"),
    [
        ("age: greater_than_or_equal_to(18)", "age: below the minimum of 18"),
        ("age: less_than_or_equal_to(120)", "age: above the maximum of 120"),
        ("num_90_days_late: notin([96.0, 98.0])", "num_90_days_late: a code the spec forbids (one of [96.0, 98.0])"),  # noqa: E501
        ("age: not_nullable; debt_ratio: greater_than_or_equal_to(0)", "age: missing, and the spec requires a value; debt_ratio: below the minimum of 0"),  # noqa: E501
        ("customer_id: duplicate within snapshot", "customer_id: the customer appears more than once in the snapshot"),  # noqa: E501
        ("region: a rule nobody wrote", "region: a rule nobody wrote"),
    ],
)  # fmt: skip
def test_quarantine_rules_are_put_in_words_beside_the_rule(rule, words):
    assert rule_in_words(rule) == words


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
