"""The command line as a newcomer meets it: errors that teach, help on every option,
read-only commands that write nothing, and every command and flag the CLI summary shows."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re

import pytest

from credit_batch import cli
from tests.conftest import REPO, expected_counts, query, run_pipeline

pytestmark = pytest.mark.unit


def _main(monkeypatch, capsys, home, *args: str) -> tuple[int, str, str]:
    monkeypatch.setenv("CREDIT_BATCH_HOME", str(home))
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_every_option_of_every_command_has_help_text():
    parser = cli._parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [
        f"{name} {'/'.join(action.option_strings) or action.dest}"
        for name, sub in commands.choices.items()
        for action in sub._actions
        if not isinstance(action, argparse._HelpAction) and not action.help
    ]
    assert missing == []
    assert set(commands.choices) >= {"demo", "demo-data", "run", "runs", "models", "sql", "report"}


def test_version_and_verbose_are_offered(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0 and re.match(r"credit-batch \d", capsys.readouterr().out)
    assert "-v, --verbose" in cli._parser().format_help()


@pytest.mark.parametrize("command", [["runs"], ["models"], ["sql", "SELECT 1"]])
def test_read_only_commands_on_a_fresh_home_create_nothing_and_point_to_the_demo(
    tmp_path, monkeypatch, capsys, command
):
    code, out, err = _main(monkeypatch, capsys, tmp_path / "fresh", *command)
    assert "credit-batch demo" in out + err
    assert code == (2 if command[0] == "sql" else 0)
    assert not (tmp_path / "fresh").exists()


def test_run_on_a_fresh_home_points_to_the_demo_not_to_train(tmp_path, monkeypatch, capsys):
    code, _, err = _main(monkeypatch, capsys, tmp_path / "fresh", "run")
    assert code == 2 and "credit-batch demo" in err and err.count("\n") == 1
    assert not (tmp_path / "fresh" / "results.duckdb").exists()


def test_a_date_that_is_not_on_the_calendar_is_called_so(demo, monkeypatch, capsys):
    settings, _, _ = demo
    code, _, err = _main(monkeypatch, capsys, settings.home, "run", "--snapshot-date", "2026-09-31")
    assert code == 2 and "is on the calendar (day is out of range for month)" in err


def test_a_missing_snapshot_names_the_nearest_existing_ones(demo, monkeypatch, capsys):
    settings, _, _ = demo
    code, _, err = _main(monkeypatch, capsys, settings.home, "run", "--snapshot-date", "2026-10-15")
    assert code == 2
    assert "nearest: 2026-09-30, 2026-10-31 (4 snapshots, 2026-07-31 .. 2026-10-31)" in err


def test_an_unknown_model_version_names_the_command_that_lists_them(demo, monkeypatch, capsys):
    settings, _, _ = demo
    code, _, err = _main(monkeypatch, capsys, settings.home, "run", "--model-version", "logreg-1-x")
    assert code == 2 and "`credit-batch models` lists the registered ones" in err


def test_run_ends_with_the_band_table_top_features_and_the_command_to_look_further(
    demo, monkeypatch, capsys
):
    settings, _, _ = demo
    code, out, _ = _main(
        monkeypatch,
        capsys,
        settings.home,
        "run",
        "--as-of",
        "2026-10-01",
        "--importance-repeats",
        "1",
    )
    assert code == 0 and "snapshot 2026-09-30" in out
    bands = re.findall(r"^  ([A-E]) +([\d,]+) +0\.\d{4}$", out, re.M)
    want = expected_counts(settings, dt.date(2026, 9, 30))
    assert sum(int(n.replace(",", "")) for _, n in bands) == want["scored"]
    top = query(settings, "SELECT feature FROM shap_summary ORDER BY importance_rank LIMIT 3")
    assert f"top features (mean |SHAP|): {', '.join(r['feature'] for r in top)}" in out
    look = re.search(r"look further: (.*)$", out, re.M).group(1)
    assert look.startswith("credit-batch sql ")


def test_a_relative_duckdb_url_is_said_to_be_relative_in_the_summary(
    demo, monkeypatch, capsys, tmp_path
):
    import shutil

    settings, _, _ = demo
    (tmp_path / "scores").mkdir()
    shutil.copy(settings.home / "results.duckdb", tmp_path / "scores" / "results.duckdb")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CREDIT_BATCH_RESULTS_URL", "duckdb:///scores/results.duckdb")
    code, out, _ = _main(
        monkeypatch,
        capsys,
        settings.home,
        "run",
        "--snapshot-date",
        "2026-09-30",
        "--importance-repeats",
        "1",
    )
    assert code == 0
    where = tmp_path.resolve() / "scores" / "results.duckdb"
    assert (
        "results: duckdb:///scores/results.duckdb "
        f"(a path relative to the current folder: {where})" in out
    )


def test_runs_lists_status_start_and_origin_of_each_run(demo, monkeypatch, capsys):
    settings, _, _ = demo
    run_pipeline(settings, snapshot_date="2026-09-30", repeats=1)
    code, out, _ = _main(monkeypatch, capsys, settings.home, "runs")
    header, line = out.strip().splitlines()
    assert code == 0 and "status" in header and "started (UTC)" in header and "origin" in header
    assert " loaded " in line and line.rstrip().endswith("command line")
    assert re.search(r" \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} ", line)


@pytest.mark.parametrize("fmt", ["table", "--csv", "--json"])
def test_sql_runs_an_analyst_file_read_only_in_each_format(demo, monkeypatch, capsys, fmt):
    import json

    settings, _, _ = demo
    run_pipeline(settings, snapshot_date="2026-09-30", repeats=1)
    path = str(REPO / "sql" / "analyst" / "03_risk_bands_by_snapshot.sql")
    args = ["sql", path] + ([] if fmt == "table" else [fmt])
    code, out, _ = _main(monkeypatch, capsys, settings.home, *args)
    assert code == 0
    if fmt == "--json":
        rows = json.loads(out)
        assert [r["risk_band"] for r in rows] == list("ABCDE")
    elif fmt == "--csv":
        assert out.splitlines()[0].startswith('"snapshot_date"') and len(out.splitlines()) == 6
    else:
        assert out.strip().endswith("(5 rows)")


def test_sql_refuses_a_write_and_the_results_stay(demo, monkeypatch, capsys):
    settings, _, _ = demo
    run_pipeline(settings, snapshot_date="2026-09-30", repeats=1)
    before = query(settings, "SELECT COUNT(*) AS n FROM predictions")
    code, _, err = _main(monkeypatch, capsys, settings.home, "sql", "DELETE FROM predictions")
    assert code == 2 and "query on duckdb:///" in err and err.count("\n") == 1
    assert query(settings, "SELECT COUNT(*) AS n FROM predictions") == before


def _readme_flags() -> set[str]:
    text = (REPO / "docs" / "reference" / "cli.md").read_text()
    block = text[text.index("# Command line") :].split("```text\n", 1)[1].split("```", 1)[0]
    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", block)) | {
        f"credit-batch {c}" for c in re.findall(r"^credit-batch ([a-z][a-z-]*)", block, re.M)
    }


def _team_model(home, path):
    """A LightGBM model trained outside the platform on the home's rows, as a text file."""
    import lightgbm

    from credit_batch.config import Settings
    from credit_batch.features import default_spec
    from credit_batch.steps.encoding import model_frame
    from credit_batch.steps.training import read_training_rows

    spec = default_spec()
    rows = read_training_rows(Settings(home=home), spec, until="2026-08-31", max_rows=4000)
    model = lightgbm.LGBMClassifier(n_estimators=20, num_leaves=5, verbose=-1)
    model.fit(model_frame(rows, spec), rows[spec.target]).booster_.save_model(str(path))
    return path


def test_every_command_and_flag_of_the_cli_summary_runs(tmp_path, monkeypatch, capsys):
    """The CLI reference's summary block, command by command, on a small drifted home."""
    home = tmp_path / "home"
    seen: set[str] = set()

    def run(*args: str) -> tuple[int, str, str]:
        seen.add(f"credit-batch {args[0]}")
        seen.update(a.split("=")[0] for a in args if a.startswith("--"))
        return _main(monkeypatch, capsys, home, *args)

    code, out, _ = run("demo-data", "--rows", "2000", "--snapshots", "4", "--seed", "7", "--drift")
    assert code == 0 and out.count("snapshot 2026-") == 4 and "(no outcomes yet)" in out
    code, out, _ = run("spec", "check", "sql/specs/gmsc/spec.toml", "--date", "2026-09-30")
    assert code == 0 and "spec gmsc (sql/specs/gmsc/spec.toml): valid" in out
    code, out, _ = run(
        "train", "--until", "2026-08-31", "--since", "2026-07-31", "--algorithm", "logreg",
        "--max-rows", "4000", "--seed", "1", "--promote", "--spec", "sql/specs/gmsc/spec.toml",
        "--model-name", "gmsc",
    )  # fmt: skip
    version = re.search(r"registered (\S+):", out).group(1)
    code, _, err = run("train", "--until", "2026-08-31", "--segment", "online")
    assert code == 2 and "--segment" in err and "needs --model-file" in err
    gmsc_file = "sql/specs/gmsc/model.toml"  # GMSC: no categorical feature to segment by
    segmenting = ("--model-file", gmsc_file, "--each-segment")
    code, _, err = run("train", "--until", "2026-08-31", *segmenting)
    assert code == 2 and "needs a model file with segment_by" in err  # segmented: test_segments
    code, out, _ = run("promote", version, "--reason", "the README's model", "--by", "newcomer")
    assert code == 0 and out == f"champion: {version}\n"
    code, out, _ = run("models")
    assert code == 0 and out.split()[:3] == ["gmsc", version, "champion"]
    code, out, _ = run(
        "train-candidate", "--cutoff", "2026-10-31", "--since", "2026-07-31", "--algorithm",
        "hgb", "--max-rows", "4000", "--seed", "1", "--model-file", "sql/specs/gmsc/model.toml",
    )  # fmt: skip
    candidate = re.search(r"registered (\S+) \((candidate|challenger)\)", out).group(1)
    assert code == 0 and "out of time on 2026-09-30" in out and "model card:" in out
    team = _team_model(home, tmp_path / "team.txt")
    code, out, err = run(
        "register", str(team), "--trained-until", "2026-08-31", "--cutoff", "2026-10-31",
        "--spec", "sql/specs/gmsc/spec.toml", "--by", "team", "--model-name", "gmsc",
    )  # fmt: skip
    assert code == 0 and re.search(r"registered outside-lgbm-20260831-\w+ \(", out), out + err
    code, out, _ = run("promote", candidate, "--reason", "x", "--override-gates")
    assert code == 0 and out == f"champion: {candidate}\n"
    assert run("promote", version, "--reason", "back to logreg")[0] == 0
    code, out, _ = run("retire", candidate, "--reason", "not needed", "--by", "newcomer")
    assert code == 0 and out == f"retired: {candidate}\n"
    code, out, _ = run("events", version)
    assert code == 0 and "promoted      by newcomer: the README's model" in out
    code, out, _ = run("upgrade")
    assert code == 0 and out.endswith("schema version 5, nothing to migrate\n")
    code, out, _ = run("lineage", "gmsc")
    assert code == 0 and out == "no model reads another model's score\n"
    code, _, err = run(
        "run", "--snapshot-date", "2026-10-31", "--workers", "2", "--fail-on-drift",
        "--model-name", "gmsc",
    )  # fmt: skip
    assert code == 2 and "act band" in err  # the planted drift
    code, out, _ = run(
        "run", "--as-of", "2026-10-01", "--model-version", version, "--chunk-rows", "500",
        "--rows-per-partition", "700", "--max-quarantine-fraction", "0.05", "--run-id", "by-hand",
        "--importance-sample-rows", "500", "--importance-repeats", "1", "--workers", "2",
        "--no-challengers", "--skip-unchanged",
    )  # fmt: skip
    assert code == 0 and "run by-hand: snapshot 2026-09-30" in out
    code, out, _ = run("adverse-action", "--date", "2026-09-30", "--model-name", "gmsc", "--json")
    notices = json.loads(out)
    assert code == 0 and notices and all(1 <= len(n["reasons"]) <= 4 for n in notices)
    first = str(notices[0]["customer_id"])
    code, out, _ = run(
        "adverse-action", "--date", "2026-09-30", "--model", version, "--customer", first, "--csv"
    )
    assert code == 0 and len(out.splitlines()) == 1 + len(notices[0]["reasons"])
    code, out, _ = run(
        "fairness-search", "--cutoff", "2026-10-31", "--model-file", gmsc_file, "--algorithm",
        "logreg", "--top", "1",
    )  # fmt: skip
    assert code == 0 and re.search(r"^  baseline +13 +0\.\d{4} +\d\.\d{4}", out, re.M), out
    code, out, _ = run("fairness-search", "--cutoff", "2026-10-31", "--json")
    assert code == 0 and json.loads(out)["variants"][0]["variant"] == "baseline"
    code, out, _ = run("inventory")
    assert code == 0 and out.strip().endswith("reports/inventory/inventory.html")
    code, out, _ = run("runs", "--limit", "5")
    assert code == 0 and len(out.strip().splitlines()) == 2
    code, out, _ = run("report", "--date", "2026-09-30", "--model", version)
    assert code == 0 and out.strip().endswith("report.html")
    code, named, _ = run("report", "--date", "2026-09-30", "--model-name", "gmsc")
    assert code == 0 and named == out  # the champion of gmsc is that version
    code, out, _ = run("sql", "SELECT COUNT(*) AS n FROM predictions", "--json")
    assert code == 0 and '"n"' in out
    code, out, _ = run("lookup", "1", "--model-name", "gmsc")
    assert code == 0 and out.startswith("customer 1: score")
    code, out, _ = run("lookup", "1", "--as-of", "2026-10-31", "--history")
    assert code == 0 and "(1 row)" in out  # scored once so far: 2026-09-30
    code, out, _ = run("sql", "SELECT 1 AS one", "--csv")
    assert code == 0 and out.splitlines() == ['"one"', "1"]
    # 2026-09-30 was scored in other partitions: its input fingerprint differs.
    code, out, _ = run("backfill", "--from", "2026-08-01", "--to", "2026-09-30", "--model", version)
    assert code == 0 and out.count("scored in") == 2
    code, out, _ = run("backfill", "--from", "2026-09-30", "--to", "2026-09-30")
    assert code == 0 and "skipped: already loaded from the same input" in out
    code, out, _ = run("backfill", "--from", "2026-09-30", "--to", "2026-09-30", "--force")
    assert code == 0 and out.count("scored in") == 1
    code, out, _ = run("monitor", "--date", "2026-09-30")
    assert code == 0 and f"2026-09-30 {version}" in out
    code, out, _ = run("demo", "--rows", "1500", "--example", "gmsc")
    assert code == 0 and out.count("customers scored") == 2 and "realized performance" in out
    seen |= {"--version", "--verbose", "credit-batch load-csv", "--snapshot-date"}  # tested apart
    assert _readme_flags() - seen == set()
