"""The package's layers, as docs/architecture.md draws them, read from the imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from credit_batch.config import DAGS_FOLDER
from tests.conftest import REPO

pytestmark = pytest.mark.unit

PACKAGE = REPO / "credit_batch"
CORE = {
    "config",
    "errors",
    "checks",
    "features",
    "run",
    "faults",
    "storage",
    "sampling",
    "model_file",
    "graph",  # which model reads which: the standard library's graphlib only
    "windows",  # streaming features: their SQL twin and their value over events
}
FACES = {"pipeline", "portfolio", "lifecycle", "catalog", "access", "serve", "stream", "cli"}
HEAVY = {"pandas", "pyarrow", "sklearn", "shap", "duckdb", "psycopg", "numpy", "skops", "pandera"}
HEAVY |= {"fairlearn"}


def _part(module: str) -> str:
    """``core``, ``stores``, ``steps``, ``demo`` or the face's name, of a dotted module."""
    parts = module.split(".")[1:]
    if parts and parts[0] in ("stores", "steps"):
        return parts[0]
    if parts and parts[0].startswith("demo"):
        return "demo"  # demo, demo_lender: the generated examples
    return "core" if not parts or parts[0] in CORE else parts[0]


def _imports(path: Path, *, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def _first_party(path: Path) -> set[str]:
    modules = {m for m in _imports(path) if m.startswith("credit_batch.")}
    real = {m for m in modules if (REPO / (m.replace(".", "/") + ".py")).is_file()}
    return {_part(m) for m in real}


def _module(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts)


ALLOWED = {
    "core": {"core"},
    "stores": {"core", "stores"},
    "steps": {"core", "stores", "steps"},
    "demo": {"core", "stores", "demo"},  # demo dispatches to demo_lender
    "catalog": {"core", "stores"},
    "pipeline": {"core", "stores", "steps", "demo"},
    "portfolio": {"core", "stores", "steps", "pipeline"},  # a night: every model
    "lifecycle": {"core", "stores", "steps", "pipeline", "portfolio", "demo"},  # demos: nights
    "access": {"core", "stores"},  # the service's API keys
    "serve": {"core", "steps", "catalog", "access"},  # through the use cases, not the stores
    "stream": {"core", "stores", "steps", "catalog", "demo"},  # transport: a store; demo producer
    "cli": {"core", "pipeline", "portfolio", "lifecycle", "catalog", "access", "serve", "stream"},
    "dags": {"core", "pipeline", "portfolio", "lifecycle", "dags"},  # tasks call the faces; _tasks
    "reference": {"core", "cli"},  # the documentation's generated pages
}


def test_each_part_imports_only_the_parts_beneath_it():
    wrong = {}
    for path in PACKAGE.rglob("*.py"):
        if path.name == "__init__.py":
            continue
        part = _part(_module(path))
        extra = _first_party(path) - ALLOWED[part]
        if extra:
            wrong[_module(path)] = sorted(extra)
    assert wrong == {}


def test_only_the_dags_import_airflow():
    users = [
        _module(p)
        for p in PACKAGE.rglob("*.py")
        if any(m.startswith("airflow") for m in _imports(p))
    ]
    assert users and all(u.startswith("credit_batch.dags.") for u in users), users


def test_heavy_libraries_are_imported_inside_functions_not_by_core_or_the_dag_file():
    for path in [*(PACKAGE / f"{m}.py" for m in CORE), *DAGS_FOLDER.glob("credit_batch_*.py")]:
        top = {m.split(".")[0] for m in _imports(path, top_level_only=True)}
        assert not top & HEAVY, (path.name, top & HEAVY)


#: What a module that only sequences steps never does itself: run SQL, read or write
#: files or frames, open a database.
_WORK = {
    "execute",
    "fetch_arrow",
    "bulk_insert",
    "read_text",
    "write_text",
    "read_bytes",
    "write_bytes",
    "read_sql",
    "connect",
    "to_parquet",
    "read_parquet",
    "transaction",
}
_SQL = ("SELECT ", "INSERT ", "DELETE ", "UPDATE ", "CREATE ")


def _own_work(path: Path) -> list[str]:
    """The calls of :data:`_WORK` and the SQL literals in ``path``, with their lines."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if name in _WORK:
                found.append(f"{node.lineno}: calls {name}")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and any(word in node.value.upper() for word in _SQL)
        ):
            found.append(f"{node.lineno}: SQL {node.value[:30]!r}")
    return found


def test_pipeline_only_sequences_steps_and_does_no_work_itself(tmp_path):
    assert _own_work(PACKAGE / "pipeline.py") == []
    planted = "def f(db):\n    db.execute('SELECT 1')\n"
    tmp = tmp_path / "planted_pipeline.py"
    tmp.write_text(planted)
    assert _own_work(tmp) == ["2: calls execute", "2: SQL 'SELECT 1'"]  # the check can fail
