"""Analyst SQL on DuckDB, the command line, and loading a real-format CSV."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from credit_batch import cli
from tests.conftest import REPO, expected_counts, query, run_pipeline

pytestmark = pytest.mark.unit


def test_analyst_queries_run_as_they_are_on_duckdb_and_find_rows(demo):
    settings, _, _ = demo
    run_pipeline(settings, snapshot_date="2026-09-30", sample_rows=500, repeats=1)
    run_pipeline(settings, snapshot_date="2026-10-31")
    con = duckdb.connect(settings.results_url.removeprefix("duckdb:///"), read_only=True)
    for path in sorted((REPO / "sql" / "analyst").glob("*.sql")):
        assert con.sql(path.read_text()).fetchall(), path.name


def _cli(settings, *args):
    env = {"CREDIT_BATCH_HOME": str(settings.home)}
    return env, ["-v", *args]


def test_cli_run_scores_and_prints_a_summary(demo, monkeypatch, capsys):
    settings, _, record = demo
    monkeypatch.setenv("CREDIT_BATCH_HOME", str(settings.home))
    assert (
        cli.main(
            [
                "run",
                "--snapshot-date",
                "2026-09-30",
                "--importance-sample-rows",
                "500",
                "--importance-repeats",
                "1",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    want = expected_counts(settings, dt.date(2026, 9, 30))
    assert f"{want['scored']:,} customers scored, {want['quarantined']:,} quarantined" in out
    assert record.model_version in out
    assert "latest_predictions" in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (
            ["run", "--snapshot-date", "2026-13-01"],
            "snapshot date must be a date in YYYY-MM-DD form",
        ),
        (["run", "--snapshot-date", "2026-10-15"], "snapshot 2026-10-15 has no rows"),
        (["run", "--model-version", "../../etc/passwd"], "model version must match"),
        (["run", "--chunk-rows", "-5"], "chunk_rows must be between"),
        (["promote", "nope-1", "--reason", "r"], "model version 'nope-1' is not registered"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line_error(demo, monkeypatch, capsys, args, needle):
    settings, _, _ = demo
    monkeypatch.setenv("CREDIT_BATCH_HOME", str(settings.home))
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1
    assert query(settings, "SELECT * FROM predictions") == []


def test_load_csv_takes_the_kaggle_file_format(tmp_path, monkeypatch, capsys):
    csv = tmp_path / "cs-training.csv"
    csv.write_text(
        ",SeriousDlqin2yrs,RevolvingUtilizationOfUnsecuredLines,age,"
        "NumberOfTime30-59DaysPastDueNotWorse,DebtRatio,MonthlyIncome,"
        "NumberOfOpenCreditLinesAndLoans,NumberOfTimes90DaysLate,NumberRealEstateLoansOrLines,"
        "NumberOfTime60-89DaysPastDueNotWorse,NumberOfDependents\n"
        "1,1,0.766126609,45,2,0.802982129,9120,13,0,6,0,2\n"
        "2,0,0.957151019,40,0,0.121876201,2600,4,0,0,0,1\n"
        "3,0,0.65818014,38,1,0.085113375,3042,2,1,0,0,0\n"
        "4,0,0.233809776,30,0,0.036049682,NA,5,0,0,0,NA\n"
    )
    monkeypatch.setenv("CREDIT_BATCH_HOME", str(tmp_path / "home"))
    assert cli.main(["load-csv", str(csv), "--snapshot-date", "2010-01-31"]) == 0
    con = duckdb.connect(str(tmp_path / "home" / "warehouse.duckdb"), read_only=True)
    rows = con.sql(
        "SELECT customer_id, age, monthly_income, num_dependents FROM features ORDER BY 1"
    ).fetchall()
    assert rows == [
        (1, 45.0, 9120.0, 2.0),
        (2, 40.0, 2600.0, 1.0),
        (3, 38.0, 3042.0, 0.0),
        (4, 30.0, None, None),
    ]
    assert con.execute("SELECT SUM(delinquency), COUNT(*) FROM outcomes").fetchone() == (1, 4)


def test_cli_runs_lists_each_run_with_its_step_seconds(demo, monkeypatch, capsys):
    settings, _, record = demo
    run_pipeline(settings, snapshot_date="2026-09-30", sample_rows=500, repeats=1)
    run_pipeline(settings, snapshot_date="2026-10-31")
    monkeypatch.setenv("CREDIT_BATCH_HOME", str(settings.home))
    assert cli.main(["runs"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:2] == ["snapshot", "model"] and len(lines) == 3
    assert lines[1].startswith("2026-10-31") and lines[2].startswith("2026-09-30")
    assert record.model_version in lines[1] and "3,000" in lines[1]
