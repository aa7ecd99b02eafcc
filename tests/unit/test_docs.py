"""The documentation site: generated references complete, and a strict build."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from credit_batch import errors, reference
from credit_batch.config import ENVIRONMENT, RUN_OPTIONS
from tests.conftest import REPO


@pytest.mark.unit
def test_every_variable_the_package_reads_is_in_the_configuration_reference():
    read = set()
    for path in (REPO / "credit_batch").rglob("*.py"):
        read |= set(re.findall(r"CREDIT_BATCH_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
    families = {"CREDIT_BATCH_GATE", "CREDIT_BATCH_POINTS"}  # f-strings: GATE_{name}, POINTS_{v}
    documented = {name for name, _, _ in ENVIRONMENT}
    old = {o.old_variable for o in RUN_OPTIONS if o.old_variable}  # still read, with a notice
    assert read - families - old - documented == set()
    assert all(f"`{name}`" in reference.configuration() for name in documented)


@pytest.mark.unit
def test_the_cli_reference_has_every_command_and_option_of_the_parser():
    from credit_batch.cli import _parser

    page = reference.cli()
    commands = re.findall(r"^## `credit-batch ([\w-]+)`", page, re.M)
    sub = next(a for a in _parser()._actions if hasattr(a, "choices") and a.choices)
    assert commands == list(sub.choices)
    assert "--rows-per-partition" in page and "--override-gates" in page
    assert "--partition-rows" not in page  # old names work, but are not taught


@pytest.mark.unit
def test_the_tables_reference_lists_every_table_of_the_schema_with_its_comments():
    schema = "\n".join(p.read_text() for p in (REPO / "sql" / "schema").glob("*.sql"))
    created = set(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", schema))
    page = reference.tables()
    assert set(re.findall(r"^## `(\w+)`", page, re.M)) == created
    assert "| `rows_quarantined` | BIGINT |" in page
    assert (
        "| `gate_status` | VARCHAR | passed \\| failed: <gate>; ... \\| NULL: not gated |" in page
    )


@pytest.mark.unit
def test_every_error_has_its_own_remedy_on_the_troubleshooting_page():
    page = reference.errors()
    classes = [n for n in errors.__all__ if isinstance(getattr(errors, n), type)]
    assert len(classes) == len(errors.__all__) - 2  # to_record, from_record
    for name in classes:
        cls = getattr(errors, name)
        assert "remedy" in vars(cls), f"{name} inherits its remedy"
        assert f"## `{name}`" in page and cls.remedy in page


@pytest.mark.unit
def test_an_unknown_generated_section_is_refused_by_name():
    with pytest.raises(KeyError, match="no generated section 'nope'"):
        reference.render("nope")


@pytest.mark.services
def test_the_site_builds_strictly_with_the_generated_pages(tmp_path):
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    cli = (site / "reference" / "cli" / "index.html").read_text()
    assert "credit-batch backfill" in cli and "<!-- generated" not in cli
    assert Path(site / "troubleshooting" / "index.html").is_file()
