"""The first day's rough edges, each mended: the messages a newcomer meets say what to do."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from credit_batch import cli, lifecycle
from tests.conftest import REPO, query, run_pipeline
from tests.unit.test_cli_teaches import _main

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("command", [["lookup", "1"], ["report", "--date", "2026-09-30"]])
def test_a_read_on_a_fresh_home_says_no_results_yet_and_creates_nothing(
    tmp_path, monkeypatch, capsys, command
):
    code, _, err = _main(monkeypatch, capsys, tmp_path / "fresh", *command)
    assert code == 2 and "no results yet" in err and "`credit-batch demo`" in err
    assert not (tmp_path / "fresh").exists()


def test_report_of_an_unscored_date_lists_the_scored_ones(demo, monkeypatch, capsys):
    settings, _, _ = demo
    code, _, err = _main(monkeypatch, capsys, settings.home, "report", "--date", "2026-07-31")
    assert code == 2 and "its scored snapshots: none yet (`credit-batch run`)" in err, err
    run_pipeline(settings, snapshot_date="2026-09-30", sample_rows=200, repeats=1)
    code, _, err = _main(monkeypatch, capsys, settings.home, "report", "--date", "2026-07-31")
    assert code == 2 and "its scored snapshots: 2026-09-30" in err, err


def test_a_table_typo_in_sql_suggests_the_names_it_resembles(demo, monkeypatch, capsys):
    settings, _, _ = demo
    code, _, err = _main(monkeypatch, capsys, settings.home, "sql", "SELECT * FROM predictionz")
    assert code == 2 and "did you mean predictions" in err, err


def test_train_before_the_data_names_the_warehouses_range_not_year_one(demo, monkeypatch, capsys):
    settings, _, _ = demo
    code, _, err = _main(monkeypatch, capsys, settings.home, "train", "--until", "2020-01-31")
    assert code == 2 and "0001-01-01" not in err
    assert "up to 2020-01-31" in err and "its snapshots: 2026-07-31 .. 2026-10-31" in err, err


def test_the_demo_run_twice_records_one_promotion(tmp_path):
    from credit_batch.config import Settings

    settings = Settings(home=tmp_path / "home")
    events = "SELECT COUNT(*) AS n FROM model_events WHERE event = 'promoted'"
    for _ in range(2):
        record, _, _ = lifecycle.demo(settings, rows=2_000)
        assert record.status == "champion"
    assert query(settings, events) == [{"n": 1}]


def test_models_says_which_auc_it_shows(demo, monkeypatch, capsys):
    settings, _, _ = demo
    code, out, _ = _main(monkeypatch, capsys, settings.home, "models")
    assert code == 0 and "held-out AUC" in out and "out-of-time figures" in out


def test_the_look_further_hint_runs_as_printed_where_credit_batch_is_not_on_path(monkeypatch):
    script = Path(sys.executable).with_name("credit-batch")
    monkeypatch.setattr(sys, "argv", [str(script), "demo"])  # as the console script sets it
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.chdir(REPO)
    printed = cli._prog()
    assert printed == str(script.relative_to(REPO)) and (REPO / printed).is_file()
    monkeypatch.setenv("PATH", str(script.parent))
    assert cli._prog() == "credit-batch"


def test_serve_on_a_busy_port_is_refused_by_name_not_by_a_traceback(tmp_path, monkeypatch, capsys):
    import socket

    pytest.importorskip("uvicorn", reason="the serve extra is not installed")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = _main(monkeypatch, capsys, tmp_path, "serve", "--port", str(port))
    assert code == 2 and err.count("\n") == 1, err
    assert "--port is not free on 127.0.0.1" in err and "pick another with --port" in err
