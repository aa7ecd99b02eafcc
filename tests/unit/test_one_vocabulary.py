"""A run option has one name: DAG Param, CLI flag, environment variable, RunOptions field."""

from __future__ import annotations

import dataclasses

import pytest

from credit_batch import cli
from credit_batch.config import RUN_OPTIONS, RUN_PARAMS, Settings
from credit_batch.run import RunOptions

pytestmark = pytest.mark.unit


def _run_parser():
    parser = cli._parser()
    sub = next(a for a in parser._actions if hasattr(a, "choices") and a.choices)
    return sub.choices["run"]


def test_each_option_is_a_param_a_field_and_a_flag_of_the_same_name():
    fields = {f.name: f.default for f in dataclasses.fields(RunOptions)}
    flags = {s for a in _run_parser()._actions for s in a.option_strings}
    for option in RUN_OPTIONS:
        assert RUN_PARAMS[option.name]["default"] == fields[option.name] == option.schema["default"]
        assert option.flag == "--" + option.name.replace("_", "-") and option.flag in flags
    assert list(RUN_PARAMS) == [o.name for o in RUN_OPTIONS]


def test_the_flags_give_the_options_their_own_names():
    args = _run_parser().parse_args(
        ["--rows-per-partition", "700", "--max-quarantine-fraction", "0.05",
         "--importance-sample-rows", "500", "--importance-repeats", "2", "--no-challengers"]
    )  # fmt: skip
    given = {o.name: getattr(args, o.name) for o in RUN_OPTIONS}
    options = RunOptions(**given)
    assert (options.rows_per_partition, options.max_quarantine_fraction) == (700, 0.05)
    assert (options.importance_sample_rows, options.importance_repeats) == (500, 2)
    assert options.challengers is False


@pytest.mark.parametrize(
    ("old", "new", "value", "name"),
    [
        ("--partition-rows", "--rows-per-partition", "700", "rows_per_partition"),
        ("--max-quarantine", "--max-quarantine-fraction", "0.05", "max_quarantine_fraction"),
        ("--sample-rows", "--importance-sample-rows", "500", "importance_sample_rows"),
        ("--repeats", "--importance-repeats", "2", "importance_repeats"),
        ("--date", "--snapshot-date", "2026-09-30", "snapshot_date"),
        ("--model", "--model-version", "logreg-1-a", "model_version"),
    ],
)
def test_an_old_flag_still_works_with_a_one_line_notice(capsys, old, new, value, name):
    args = _run_parser().parse_args([old, value])
    assert str(getattr(args, name)) == value
    err = capsys.readouterr().err
    assert err == f"credit-batch: {old} is deprecated; use {new}\n"
    _run_parser().parse_args([new, value])
    assert capsys.readouterr().err == ""


def test_the_variable_of_an_option_is_its_name_and_the_old_one_is_still_read(caplog):
    (option,) = [o for o in RUN_OPTIONS if o.name == "rows_per_partition"]
    assert option.variable == "CREDIT_BATCH_ROWS_PER_PARTITION"
    assert Settings.from_env({option.variable: "7000"}).partition_rows == 7000
    assert Settings.from_env({"CREDIT_BATCH_PARTITION_ROWS": "8000"}).partition_rows == 8000
    assert "CREDIT_BATCH_PARTITION_ROWS is deprecated" in caplog.text
    both = {option.variable: "7000", "CREDIT_BATCH_PARTITION_ROWS": "8000"}
    assert Settings.from_env(both).partition_rows == 7000


def test_a_bad_value_is_refused_naming_the_option_by_its_one_name():
    from credit_batch.errors import ParameterError

    with pytest.raises(ParameterError, match="max_quarantine_fraction"):
        RunOptions(max_quarantine_fraction=2)
