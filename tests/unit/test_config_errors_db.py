"""Settings, the exception tree, and the database layer's guards."""

from __future__ import annotations

import pickle

import pytest

from credit_batch import errors
from credit_batch.config import Settings
from credit_batch.stores.db import check_identifier, connect, read_sql

pytestmark = pytest.mark.unit


def test_settings_default_to_duckdb_files_under_home(tmp_path):
    s = Settings.from_env({"CREDIT_BATCH_HOME": str(tmp_path)})
    assert s.warehouse_url == f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    assert s.results_url == f"duckdb:///{tmp_path / 'results.duckdb'}"
    assert s.lake_url == str(tmp_path / "lake")


def test_settings_read_urls_and_sizes_from_environment(tmp_path):
    s = Settings.from_env(
        {
            "CREDIT_BATCH_HOME": str(tmp_path),
            "CREDIT_BATCH_RESULTS_URL": "postgresql://u@h/db",
            "CREDIT_BATCH_CHUNK_ROWS": "5000",
        }
    )
    assert (s.results_url, s.chunk_rows) == ("postgresql://u@h/db", 5000)


@pytest.mark.parametrize("raw", ["0", "-5", "99999999999", "lots"])
def test_bad_chunk_rows_in_environment_is_refused_with_name_and_value(raw):
    with pytest.raises(errors.ParameterError) as info:
        Settings.from_env({"CREDIT_BATCH_CHUNK_ROWS": raw})
    assert "CREDIT_BATCH_CHUNK_ROWS" in str(info.value) or "chunk_rows" in str(info.value)
    assert raw in str(info.value)


@pytest.mark.parametrize(
    "exc",
    [
        errors.ParameterError("chunk_rows", -1, "must be positive"),
        errors.SnapshotNotFoundError("no snapshot 2026-01-01", snapshot_date="2026-01-01"),
        errors.ArtifactIntegrityError("sha differs", version="v1", expected="a", actual="b"),
    ],
)
def test_errors_survive_pickling_with_their_context(exc):
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc)
    assert str(back) == str(exc)
    assert back.__dict__ == exc.__dict__


def test_error_tree_lets_callers_catch_by_family():
    assert issubclass(errors.ArtifactIntegrityError, errors.ModelError)
    assert issubclass(errors.SnapshotNotFoundError, errors.DataError)
    assert issubclass(errors.UnsupportedDatabaseError, errors.ParameterError)
    assert issubclass(errors.ParameterError, ValueError)


@pytest.mark.parametrize("url", ["mysql://root@localhost/db", "sqlite:///x.db", "not a url"])
def test_unsupported_database_url_is_refused(url):
    with pytest.raises(errors.UnsupportedDatabaseError, match="database URL"):
        connect(url)


@pytest.mark.parametrize("name", ["predictions; DROP TABLE x", "Predictions", "pg_user", ""])
def test_table_names_outside_the_allow_list_are_refused(name):
    with pytest.raises(errors.ParameterError):
        check_identifier(name, tables=True)


def test_bound_parameters_keep_sql_injection_as_data(tmp_path):
    with connect(f"duckdb:///{tmp_path / 'x.duckdb'}") as db:
        db.run_script("CREATE TABLE t (v VARCHAR); INSERT INTO t VALUES ('a')")
        hostile = "a' OR '1'='1"
        assert db.fetch_arrow("SELECT * FROM t WHERE v = :v", {"v": hostile}).num_rows == 0
        assert db.fetch_arrow("SELECT * FROM t WHERE v = :v", {"v": "a"}).num_rows == 1


def test_read_only_open_of_a_missing_duckdb_file_fails_without_creating_it(tmp_path):
    path = tmp_path / "absent.duckdb"
    with pytest.raises(errors.DataError, match="does not exist"):
        connect(f"duckdb:///{path}", read_only=True)
    assert not path.exists()


def test_missing_sql_file_is_named():
    with pytest.raises(errors.ParameterError, match="nope.sql"):
        read_sql(Settings().sql_dir, "extract/nope.sql")
