"""The newcomer tests' wheelhouse: fetched once per test run, shared by the workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.newcomer.blocks import build_wheelhouse


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory, worker_id) -> Path:
    base = tmp_path_factory.getbasetemp()
    return build_wheelhouse(base.parent if worker_id != "master" else base)
