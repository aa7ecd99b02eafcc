"""CI's rule: with CREDIT_BATCH_REQUIRE_SERVICES=1 a skip is a failure (pytester, a real run)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.unit

pytest_plugins = ["pytester"]

_SKIPPING = """
import pytest

def test_needs_a_missing_service():
    pytest.importorskip("a_module_that_is_not_installed_anywhere")

def test_skips_by_marker_reason():
    pytest.skip("chromium is not installed")

@pytest.fixture
def service():
    pytest.skip("PostgreSQL is not reachable")

def test_skipped_by_its_fixture(service):
    pass

@pytest.mark.skipif(True, reason="a marker's condition")
def test_skipped_by_a_marker():
    pass
"""

_SKIPPING_MODULE = """
import pytest

pytest.importorskip("a_module_that_is_not_installed_anywhere")

def test_never_collected():
    pass
"""


@pytest.mark.parametrize(
    ("required", "outcome"), [("1", {"failed": 2, "errors": 3}), ("", {"skipped": 5})]
)
def test_a_skip_fails_the_run_when_services_are_required(pytester, monkeypatch, required, outcome):
    from tests import conftest

    monkeypatch.setenv("CREDIT_BATCH_REQUIRE_SERVICES", required)
    pytester.makeconftest(
        "from tests.conftest import pytest_make_collect_report, pytest_runtest_makereport"
        "  # noqa: F401\n"
    )
    pytester.makepyfile(test_skipping=_SKIPPING, test_skipping_module=_SKIPPING_MODULE)
    monkeypatch.syspath_prepend(str(conftest.REPO))
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--continue-on-collection-errors"
    )
    result.assert_outcomes(**outcome)
    if required:
        result.stdout.fnmatch_lines(["*CREDIT_BATCH_REQUIRE_SERVICES=1 forbids skips*"])
        result.stdout.fnmatch_lines(["*skipped at collection, but*forbids skips*"])
