"""The documented command blocks, and a fresh clone to run them in as a newcomer would.

Each block runs verbatim in its own ``bash -e`` (as a reader pastes it), in a copy
of the tracked files with no virtual environment and no ``data/`` yet, with an
environment scrubbed of this test run's Airflow and credit-batch settings and of
this suite's virtual environment. Its ``pip install`` commands are served from a
wheelhouse of the pinned distributions, fetched once per test run (``PIP_NO_INDEX``
and ``PIP_FIND_LINKS``, as a team's pip configuration would say): the commands and
the packages they install are the same; only the index look-ups (over a minute of
each install here) are done once instead of once per block.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

BLOCK = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)
#: The bash blocks of each page, in order, by what they do. A block whose text
#: is another page's block (the demo in getting-started.md) is that block, run once.
PAGES = {
    "README.md": ["demo", "tests", "quick", "query"],
    "docs/getting-started.md": ["demo", "query"],
    "docs/airflow.md": ["dags_test", "standalone"],
    "docs/production.md": ["postgresql", "production"],
    "docs/own-data.md": ["own_data"],
    "docs/lifecycle.md": ["lifecycle"],
    "docs/serving.md": ["serving"],
    "docs/streaming.md": ["streaming"],
    "docs/model-risk.md": ["adverse_action", "fairness_search", "inventory"],
}
#: Every extra a documented block installs (``-e .`` and ``-e '.[EXTRA]'``).
EXTRAS = "airflow,postgres,deploy,serve,stream"
#: The wheelhouse the blocks' installs read, once :func:`build_wheelhouse` made it.
WHEELHOUSE: list[Path] = []


def page_blocks(page: str) -> list[str]:
    return BLOCK.findall((REPO / page).read_text())


def readme_blocks() -> dict[str, str]:
    """Every documented block by its name (the first page that names it gives its text)."""
    found: dict[str, str] = {}
    for page, names in PAGES.items():
        for name, text in zip(names, page_blocks(page), strict=False):
            found.setdefault(name, text)
    return found


def build_wheelhouse(shared: Path) -> Path:
    """The pinned distributions of every documented install, fetched once per test run.

    ``shared`` is a folder every xdist worker sees; the first worker fetches under
    a lock, the others find the finished wheelhouse.
    """
    house = shared / "newcomer-wheelhouse"
    with open(shared / "newcomer-wheelhouse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (house / ".complete").exists():
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "-q",
                    "-d",
                    str(house),
                    "-c",
                    str(REPO / "constraints.txt"),
                    f"{REPO}[{EXTRAS}]",
                    "setuptools>=68",
                    "wheel",
                ],  # fmt: skip
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            assert done.returncode == 0, done.stderr[-3000:]
            (house / ".complete").touch()
    WHEELHOUSE[:] = [house]
    return house


def fresh_clone(tmp_path_factory) -> Path:
    """The tracked files of this checkout, copied to a new folder (a fresh clone)."""
    root = tmp_path_factory.mktemp("newcomer") / "credit-batch"
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        source, target = REPO / name.decode(), root / name.decode()
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():  # sql/ and dags/ point into the package
            target.symlink_to(source.readlink())
        elif source.is_file():
            shutil.copy2(source, target)
    return root


def newcomer_env() -> dict[str, str]:
    """This machine's environment without this test run's settings or virtual environment,
    pip pointed at the wheelhouse."""
    venv_bin = str(Path(sys.executable).parent)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "CREDIT_BATCH_", "PG", "VIRTUAL_ENV", "PYTHON"))
    }
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    if WHEELHOUSE:
        env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(WHEELHOUSE[0]))
    return env


def run_block(clone: Path, name: str, *, timeout: int = 900) -> str:
    """Run one documented block with ``bash -e`` in the clone; return its output; fail on error."""
    done = subprocess.run(
        ["bash", "-e", "-c", readme_blocks()[name]],
        cwd=clone,
        env=newcomer_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"README block {name!r} failed:\n{output[-5000:]}"
    return output
