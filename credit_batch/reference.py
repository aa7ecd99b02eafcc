"""Reference pages of the documentation, generated from the code they describe.

The documentation site (``mkdocs.yml``, ``docs/hooks.py``) replaces a marker
``<!-- generated: NAME -->`` in a page with :func:`render` ``(NAME)``, so the
configuration, the command line, the tables and the errors are documented
from the settings, the parser, the SQL schema's comments and the exception
classes themselves, and cannot drift from them.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

__all__ = ["GENERATED", "render"]

_CREATE = re.compile(
    r"((?:^--[^\n]*\n)*)CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\n\);", re.S | re.M
)
_COLUMN = re.compile(
    r"^\s{4}(\w+)\s+([A-Z][A-Z ]*?(?:\(\d+\))?|\{key_type\})"  # name, type (or the key's)
    r"(?:\s+(?:NOT NULL|PRIMARY KEY|CHECK.*?|DEFAULT \S+))*,?\s*(?:--\s*(.*))?$"  # -- comment
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def configuration() -> str:
    """The table of every environment variable (:data:`credit_batch.config.ENVIRONMENT`)."""
    from credit_batch.config import ENVIRONMENT

    rows = [
        f"| `{name}` | `{default}` | {_cell(meaning)} |" for name, default, meaning in ENVIRONMENT
    ]
    return "\n".join(["| variable | default | meaning |", "|---|---|---|", *rows])


def cli() -> str:
    """Every command of ``credit-batch`` with its options, from the parser itself."""
    from credit_batch.cli import _parser

    parser = _parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    out = []
    for name, command in sub.choices.items():
        help_text = next((a.help for a in sub._choices_actions if a.dest == name), "")
        out += [f"## `credit-batch {name}`", "", f"{help_text}.", ""]
        out += ["```text", command.format_help().rstrip(), "```", ""]
    return "\n".join(out)


#: How the reference shows the type of a keyed table's ``customer_id``.
_KEY_TYPE = "BIGINT or VARCHAR (the key type)"


def tables(sql_dir: Path | None = None) -> str:
    """Each results table with its columns, types and comments, from ``sql/schema/``."""
    from credit_batch.config import _PACKAGE_SQL_DIR

    folder = Path(sql_dir or _PACKAGE_SQL_DIR) / "schema"
    text = "\n".join(
        (folder / name).read_text()
        for name in (
            "results.sql",
            "predictions.duckdb.sql",
            "quarantine.sql",
            "adverse_action.sql",
            "online_features.duckdb.sql",
        )
        if (folder / name).is_file()
    )
    out = []
    for comment, table, body in _CREATE.findall(text):
        about = " ".join(line.lstrip("- ").strip() for line in comment.splitlines())
        out += [
            f"## `{table}`",
            "",
            about or "",
            "",
            "| column | type | meaning |",
            "|---|---|---|",
        ]
        for line in body.splitlines():
            column = _COLUMN.match(line)
            if column and column.group(1).upper() not in ("PRIMARY", "UNIQUE", "CHECK"):
                name, kind, note = column.groups()
                kind = _KEY_TYPE if kind == "{key_type}" else kind.strip()
                out.append(f"| `{name}` | {kind} | {_cell(note or '')} |")
        out.append("")
    return "\n".join(out)


def errors() -> str:
    """Every error a user can meet: what it means, whether a retry helps, what to do."""
    from credit_batch import errors as module

    out = []
    classes = [n for n in module.__all__ if isinstance(getattr(module, n), type)]
    for name in sorted(classes, key=lambda n: _depth(getattr(module, n))):
        cls = getattr(module, name)
        doc = (cls.__doc__ or "").strip().splitlines()[0].rstrip(".")
        retry = "yes: Airflow retries it" if cls.retryable else "no: the task fails at once"
        parent = cls.__mro__[1].__name__
        out += [f"## `{name}`", "", f"{doc} (a kind of `{parent}`; retried: {retry}).", ""]
        out += [f"**What to do**: {cls.remedy}", ""]
    return "\n".join(out)


def _depth(cls: type) -> tuple:
    return (len(cls.__mro__), cls.__name__)


#: The generated sections, by the name their marker gives.
GENERATED = {"configuration": configuration, "cli": cli, "tables": tables, "errors": errors}


def render(name: str) -> str:
    """The Markdown of the generated section ``name`` (one of :data:`GENERATED`)."""
    if name not in GENERATED:
        raise KeyError(f"no generated section {name!r} (known: {', '.join(GENERATED)})")
    return GENERATED[name]()
