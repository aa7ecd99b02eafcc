"""The lanes hold: an unmarked test is refused, the unit lane starts no subprocess, a hang fails."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.unit

pytest_plugins = ["pytester"]

_CONFTEST = (
    "from tests.conftest import (  # noqa: F401\n"
    "    _font_cache, _unit_lane_guard, pytest_collection_modifyitems, SLOW_FIRST, SPREAD)\n"
)
_INI = """[pytest]
markers =
    unit: u
    services: s
    airflow: a
    e2e: e
    postgres: p
"""


@pytest.fixture
def suite(pytester, monkeypatch):
    from tests import conftest

    monkeypatch.syspath_prepend(str(conftest.REPO))
    pytester.makeconftest(_CONFTEST)
    pytester.makeini(_INI)
    return pytester


def test_a_test_without_a_lane_stops_the_collection_naming_it(suite):
    suite.makepyfile(test_x="def test_nobody_marked_me():\n    pass\n")
    result = suite.runpytest_inprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_nobody_marked_me: lanes none*"])


def test_a_test_with_two_lanes_is_refused_too(suite):
    suite.makepyfile(
        test_x="import pytest\n\n@pytest.mark.unit\n@pytest.mark.e2e\ndef test_both():\n    pass\n"
    )
    result = suite.runpytest_inprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "test_both: lanes ['e2e', 'unit']" in result.stderr.str()


def test_the_unit_lane_refuses_a_subprocess_and_a_tcp_connection(suite):
    suite.makepyfile(
        test_x="""
import socket, subprocess, pytest

pytestmark = pytest.mark.unit

def test_starts_a_process():
    subprocess.run(["true"])

def test_opens_a_connection():
    socket.create_connection(("127.0.0.1", 5432), timeout=1)
"""
    )
    result = suite.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*is in the unit lane but starts a subprocess*"])
    result.stdout.fnmatch_lines(["*is in the unit lane but opens a TCP connection*"])


def test_a_hanging_test_fails_at_its_timeout(suite):
    suite.makepyfile(
        test_x="import time, pytest\n\n@pytest.mark.unit\n@pytest.mark.timeout(1)\n"
        "def test_hangs():\n    time.sleep(30)\n"
    )
    result = suite.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Timeout*"])


def test_scheduling_keeps_a_file_on_one_worker_and_spreads_the_kill_points():
    from tests.conftest import SLOW_FIRST, scope_of

    celery = "tests/e2e/test_celery_deployment.py"
    readme = "tests/newcomer/test_readme.py"
    assert scope_of(f"{celery}::test_a") == celery and scope_of(f"{readme}::test_b") == readme
    assert SLOW_FIRST[:2] == (readme, celery)  # the two deployments start on the two workers
    dags = "tests/dags/test_dag_integrity.py"
    assert scope_of(f"{dags}::test_x") == scope_of(f"{dags}::test_y[p]") == dags
    kill = "tests/reliability/test_kill_points.py::test_k[duckdb-a]"
    assert scope_of(kill) == kill  # spread one by one
