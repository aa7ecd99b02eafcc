"""Hostile and wrong parameters, empty and broken inputs: a clear error, nothing lost.

Each case runs against a results database that already holds one complete
slice of ``DATE`` (DuckDB and PostgreSQL); afterwards that slice, the
quarantine and the run records must be exactly as they were.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from credit_batch import demo, errors, pipeline
from credit_batch.config import Settings
from credit_batch.run import RunOptions
from credit_batch.stores import db, registry, results
from tests.conftest import PG_HOST, PG_PORT, PG_USER, REPO, build_demo, query, run_pipeline
from tests.reliability.conftest import DATE, assert_whole_slice

pytestmark = pytest.mark.services

OLD_RUN = "old-run"
PG_ADMIN = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}"


def _loaded(settings):
    """A demo with a complete slice of ``DATE`` by ``OLD_RUN``: ``(settings, champion)``."""
    _, record = build_demo(settings)
    run_pipeline(
        settings,
        snapshot_date=DATE.isoformat(),
        run_id=OLD_RUN,
        sample_rows=500,
        repeats=1,
        rows_per_partition=1_000,
    )
    return settings, record


@pytest.fixture(scope="module")
def loaded_duckdb(tmp_path_factory):
    return _loaded(Settings(home=tmp_path_factory.mktemp("bad-duckdb")))


@pytest.fixture(scope="module")
def loaded_postgresql(tmp_path_factory, pg_module_url):
    home = tmp_path_factory.mktemp("bad-postgresql")
    return _loaded(Settings(home=home, warehouse_url=pg_module_url, results_url=pg_module_url))


@pytest.fixture
def loaded(request):
    """The module's loaded demo of the test's backend (built once per backend)."""
    return request.getfixturevalue(f"loaded_{request.param}")


@pytest.fixture(scope="module")
def pg_module_url(pg_admin):
    import uuid

    name = f"credit_batch_bad_{uuid.uuid4().hex[:10]}"
    pg_admin.execute(f'CREATE DATABASE "{name}"')
    yield f"{PG_ADMIN}/{name}"
    pg_admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _extract(**kw):
    return lambda s, r: pipeline.extract(s, RunOptions(**({"snapshot_date": DATE} | kw)))


def _settings(**kw):
    return lambda s, r: db.connect(kw["url"])


PARAMETER_CASES = [
    (
        "date_month_13",
        _extract(snapshot_date="2026-13-01"),
        errors.ParameterError,
        "snapshot date must be a date",
    ),
    (
        "date_word",
        _extract(snapshot_date="yesterday"),
        errors.ParameterError,
        "snapshot date must be a date",
    ),
    (
        "date_integer",
        _extract(snapshot_date=20260930),
        errors.ParameterError,
        "snapshot date must be a date",
    ),
    (
        "date_between_snapshots",
        _extract(snapshot_date="2026-10-15"),
        errors.SnapshotNotFoundError,
        "snapshot 2026-10-15 has no rows",
    ),
    (
        "date_before_warehouse",
        _extract(snapshot_date="1999-12-31"),
        errors.SnapshotNotFoundError,
        "snapshot 1999-12-31 has no rows",
    ),
    (
        "as_of_before_warehouse",
        lambda s, r: pipeline.extract(s, RunOptions(as_of="1999-01-01")),
        errors.SnapshotNotFoundError,
        "no snapshot at or before 1999-01-01",
    ),
    (
        "as_of_word",
        lambda s, r: pipeline.extract(s, RunOptions(as_of="soon")),
        errors.ParameterError,
        "as-of date must be a date",
    ),
    (
        "version_path_traversal",
        _extract(model_version="../etc/passwd"),
        errors.ParameterError,
        "model version must match",
    ),
    (
        "version_path_separator",
        _extract(model_version="a/b"),
        errors.ParameterError,
        "model version must match",
    ),
    (
        "version_sql_injection",
        _extract(model_version="x'; DROP TABLE predictions;--"),
        errors.ParameterError,
        "model version must match",
    ),
    (
        "version_empty",
        _extract(model_version=""),
        errors.ParameterError,
        "model version must match",
    ),
    (
        "version_unknown",
        _extract(model_version="logreg-19990101-0000000000"),
        errors.ModelNotFoundError,
        "'logreg-19990101-0000000000' is not registered",
    ),
    (
        "workers_zero",
        lambda s, r: pipeline.score_partitions(s, {}, [], workers=0),
        errors.ParameterError,
        "workers must be between 1 and 64",
    ),
    (
        "workers_string",
        lambda s, r: pipeline.score_partitions(s, {}, [], workers="2"),
        errors.ParameterError,
        "workers must be an integer",
    ),
    (
        "chunk_negative",
        _extract(chunk_rows=-5),
        errors.ParameterError,
        "chunk_rows must be between",
    ),
    (
        "chunk_huge",
        _extract(chunk_rows=10**12),
        errors.ParameterError,
        "chunk_rows must be between",
    ),
    (
        "chunk_string",
        _extract(chunk_rows="100"),
        errors.ParameterError,
        "chunk_rows must be an integer",
    ),
    (
        "chunk_bool",
        _extract(chunk_rows=True),
        errors.ParameterError,
        "chunk_rows must be an integer",
    ),
    (
        "partition_tiny",
        _extract(rows_per_partition=10),
        errors.ParameterError,
        "rows_per_partition must be between",
    ),
    (
        "partition_huge",
        _extract(rows_per_partition=10**12),
        errors.ParameterError,
        "rows_per_partition must be between",
    ),
    (
        "budget_above_one",
        _extract(max_quarantine_fraction=1.5),
        errors.ParameterError,
        "max_quarantine_fraction must be a number between 0 and 1",
    ),
    (
        "budget_negative",
        _extract(max_quarantine_fraction=-0.1),
        errors.ParameterError,
        "max_quarantine_fraction must be a number between 0 and 1",
    ),
    (
        "budget_word",
        _extract(max_quarantine_fraction="lots"),
        errors.ParameterError,
        "max_quarantine_fraction must be a number",
    ),
    ("run_id_path", _extract(run_id="../x"), errors.ParameterError, "run id must match"),
    (
        "importance_sample_zero",
        _extract(importance_sample_rows=0),
        errors.ParameterError,
        "importance sample rows must be between",
    ),
    (
        "importance_repeats_huge",
        _extract(importance_repeats=10**6),
        errors.ParameterError,
        "importance repeats must be between",
    ),
    (
        "results_url_mysql",
        _settings(url="mysql://root@localhost/db"),
        errors.UnsupportedDatabaseError,
        "must use duckdb:/// or postgresql://",
    ),
    (
        "results_url_sqlite",
        _settings(url="sqlite:///x.db"),
        errors.UnsupportedDatabaseError,
        "must use duckdb:/// or postgresql://",
    ),
    (
        "warehouse_url_garbage",
        _settings(url="not a url"),
        errors.UnsupportedDatabaseError,
        "must be a SQLAlchemy URL",
    ),
    (
        "warehouse_url_unreachable",
        _settings(url="postgresql://nobody@127.0.0.1:1/none"),
        errors.ServiceUnavailableError,
        "cannot connect to postgresql://nobody@127.0.0.1:1/none",
    ),
    (
        "table_injection",
        lambda s, r: _bulk(s, "predictions; DROP TABLE x"),
        errors.ParameterError,
        "identifier",
    ),
    (
        "table_not_allowed",
        lambda s, r: _bulk(s, "pg_user"),
        errors.ParameterError,
        "table must be one of",
    ),
    (
        "env_chunk_word",
        lambda s, r: Settings.from_env({"CREDIT_BATCH_CHUNK_ROWS": "lots"}),
        errors.ParameterError,
        "CREDIT_BATCH_CHUNK_ROWS must be an integer",
    ),
    (
        "train_until_word",
        lambda s, r: pipeline.train(s, until="someday"),
        errors.ParameterError,
        "train until date must be a date",
    ),
    (
        "train_algorithm_unknown",
        lambda s, r: pipeline.train(s, until=DATE, algorithm="xgb"),
        errors.ParameterError,
        "algorithm must be one of",
    ),
    (
        "promote_path",
        lambda s, r: _promote(s, "../../x"),
        errors.ParameterError,
        "model version must match",
    ),
]


def _plan(settings):
    return pipeline.extract(settings, RunOptions(snapshot_date=DATE))


def _bulk(settings, table):
    with results.open_results(settings) as con:
        return con.bulk_insert(table, pa.table({"x": [1]}))


def _promote(settings, version):
    with results.open_results(settings) as con:
        return registry.promote(con, settings, version)


def _check_nothing_changed(settings) -> None:
    assert_whole_slice(settings, OLD_RUN)
    assert [r["run_id"] for r in query(settings, "SELECT run_id FROM scoring_runs")] == [OLD_RUN]


#: Cases refused before any warehouse or results database is opened: they run
#: once (on DuckDB), and a guard proves they open none.
NO_DATABASE = {
    "date_month_13",
    "date_word",
    "date_integer",
    "as_of_word",
    "version_path_traversal",
    "version_path_separator",
    "version_sql_injection",
    "version_empty",
    "workers_zero",
    "workers_string",
    "chunk_negative",
    "chunk_huge",
    "chunk_string",
    "chunk_bool",
    "partition_tiny",
    "partition_huge",
    "budget_above_one",
    "budget_negative",
    "budget_word",
    "run_id_path",
    "importance_sample_zero",
    "importance_repeats_huge",
    "results_url_mysql",
    "results_url_sqlite",
    "warehouse_url_garbage",
    "env_chunk_word",
    "train_until_word",
    "train_algorithm_unknown",
    "csv_missing_file",
    "csv_missing_columns",
}


#: Cases that try to reach a database the case itself names (not the backend's): once.
OWN_DATABASE = {"warehouse_url_unreachable"}


def _on_backends(cases: list) -> list:
    """Each case on DuckDB, and on PostgreSQL too where it touches the backend's database."""
    params = []
    for case in cases:
        once = case[0] in NO_DATABASE | OWN_DATABASE
        backends = ["duckdb"] if once else ["duckdb", "postgresql"]
        params += [pytest.param(b, *case, id=f"{case[0]}-{b}") for b in backends]
    return params


def _guard_databases(monkeypatch, case: str) -> None:
    """For a NO_DATABASE case: opening any database fails the test, at the lowest layer
    (the package's two connection classes and the drivers under them), whichever
    function of the package reaches for one."""
    if case not in NO_DATABASE:
        return
    import duckdb
    import psycopg

    from credit_batch.stores import db

    def refuse(*args, **kwargs):
        raise AssertionError(f"case {case} opened a database")

    for owner, name in (
        (db.DuckDBDatabase, "__init__"),
        (db.PostgresDatabase, "__init__"),
        (duckdb, "connect"),
        (psycopg, "connect"),
    ):
        monkeypatch.setattr(owner, name, refuse)


@pytest.mark.parametrize(
    ("loaded", "case", "call", "error", "needle"),
    _on_backends(PARAMETER_CASES),
    indirect=["loaded"],
)
def test_bad_parameter_is_refused_naming_it_and_nothing_changes(
    loaded, outcome, monkeypatch, case, call, error, needle
):
    settings, record = loaded
    with monkeypatch.context() as guarded:
        _guard_databases(guarded, case)
        with pytest.raises(error) as info:
            call(settings, record)
    message = str(info.value)
    assert needle in message and "\n" not in message, message
    _check_nothing_changed(settings)
    outcome(f"{error.__name__}, nothing written", message[:70])


# ----------------------------------------------------------------- broken inputs


def _scored_first_partition(settings):
    plan = _plan(settings)
    return plan, lambda: pipeline.score_partition(settings, plan.run, plan.partitions[0])


def _rewrite_partition(settings, change):
    plan, score = _scored_first_partition(settings)
    path = plan.partitions[0]["path"]
    change(path)
    return score


def _garbage(path):
    with open(path, "wb") as fh:
        fh.write(b"PAR1 this is not parquet at all")


def _truncate(path):
    with open(path, "rb") as fh:
        data = fh.read()
    with open(path, "wb") as fh:
        fh.write(data[: len(data) // 2])


def _drop_age(path):
    pq.write_table(pq.read_table(path).drop_columns(["age"]), path)


def _age_as_text(path):
    table = pq.read_table(path)
    i = table.schema.get_field_index("age")
    pq.write_table(table.set_column(i, "age", table.column("age").cast(pa.string())), path)


_BAD_PG_DATABASES: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def _drop_bad_pg_warehouses():
    yield
    if _BAD_PG_DATABASES:
        import psycopg

        with psycopg.connect(f"{PG_ADMIN}/postgres", autocommit=True) as con:
            for name in _BAD_PG_DATABASES:
                con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _bad_warehouse(settings, tmp_path, ddl: str, mutate: str | None = None):
    """A warehouse of the settings' backend (DuckDB file or a new PostgreSQL database)
    with the given ``features`` DDL and demo rows of ``DATE``."""
    if settings.warehouse_url.startswith("postgresql"):
        import uuid

        import psycopg

        name = f"credit_batch_badwh_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(f"{PG_ADMIN}/postgres", autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        _BAD_PG_DATABASES.append(name)
        url = f"{PG_ADMIN}/{name}"
        ddl = ddl.replace("DOUBLE", "DOUBLE PRECISION")
    else:
        url = f"duckdb:///{tmp_path / 'bad-warehouse.duckdb'}"
    bad = replace(settings, warehouse_url=url)
    _, features, outcomes = next(
        demo.generate(rows=1_000, snapshots=1, last_snapshot=DATE, unlabeled_snapshots=0, seed=3)
    )
    with db.connect(url) as con:
        con.run_script(ddl)
        con.run_script(
            "CREATE TABLE outcomes (snapshot_date DATE, customer_id BIGINT, delinquency SMALLINT)"
        )
        con.bulk_insert("features", features)
        con.bulk_insert("outcomes", outcomes)
        if mutate:
            con.run_script(mutate)
    return bad


_FEATURES_NO_KEY = (
    "CREATE TABLE features (snapshot_date DATE, customer_id BIGINT, "
    "revolving_unsecured_line_utilization DOUBLE, age DOUBLE, num_30_59_days_late DOUBLE, "
    "debt_ratio DOUBLE, monthly_income DOUBLE, num_open_credit_loans DOUBLE, "
    "num_90_days_late DOUBLE, num_real_estate_loans DOUBLE, num_60_89_days_late DOUBLE, "
    "num_dependents DOUBLE, demo_group VARCHAR)"  # the spec's fairness attribute
)

BROKEN_CASES = [
    (
        "partition_garbage_bytes",
        lambda s, t: _rewrite_partition(s, _garbage)(),
        errors.DataError,
        "cannot read partition",
    ),
    (
        "partition_truncated",
        lambda s, t: _rewrite_partition(s, _truncate)(),
        errors.DataError,
        "cannot read partition",
    ),
    (
        "partition_missing_column",
        lambda s, t: _rewrite_partition(s, _drop_age)(),
        errors.SchemaMismatchError,
        "lacks the columns ['age']",
    ),
    (
        "partition_column_wrong_type",
        lambda s, t: _rewrite_partition(s, _age_as_text)(),
        errors.SchemaMismatchError,
        "age",
    ),
    (
        "warehouse_empty_snapshot",
        lambda s, t: pipeline.extract(
            _bad_warehouse(s, t, _FEATURES_NO_KEY, "DELETE FROM features"), RunOptions(as_of=DATE)
        ),
        errors.SnapshotNotFoundError,
        "no snapshot at or before 2026-09-30",
    ),
    (
        "warehouse_missing_column",
        lambda s, t: pipeline.extract(
            _bad_warehouse(s, t, _FEATURES_NO_KEY, "ALTER TABLE features DROP COLUMN debt_ratio"),
            RunOptions(snapshot_date=DATE),
        ),
        errors.DataError,
        "debt_ratio",
    ),
    (
        "warehouse_column_wrong_type",
        lambda s, t: pipeline.extract(
            _bad_warehouse(
                s,
                t,
                _FEATURES_NO_KEY.replace("age DOUBLE", "age VARCHAR"),
                "UPDATE features SET age = 'forty' WHERE customer_id % 2 = 0",
            ),
            RunOptions(snapshot_date=DATE),
        ),
        errors.DataError,
        "age",
    ),
    (
        "warehouse_duplicate_ids_over_budget",
        lambda s, t: pipeline.extract(
            _bad_warehouse(
                s,
                t,
                _FEATURES_NO_KEY,
                "INSERT INTO features SELECT * FROM features WHERE customer_id % 10 = 0",
            ),
            RunOptions(snapshot_date=DATE),
        ),
        errors.QuarantineBudgetError,
        "repeats 100 customer ids",
    ),
    (
        "warehouse_invalid_rows_over_budget",
        lambda s, t: run_pipeline(
            _bad_warehouse(
                s, t, _FEATURES_NO_KEY, "UPDATE features SET age = 0 WHERE customer_id % 20 = 0"
            ),
            snapshot_date=DATE,
        ),
        errors.QuarantineBudgetError,
        "more than the error budget",
    ),
    (
        "model_needs_unknown_feature",
        lambda s, t: _model_with_extra_feature(s),
        errors.SchemaMismatchError,
        "needs features ['shoe_size']",
    ),
    (
        "csv_missing_file",
        lambda s, t: _load_csv(s, t / "absent.csv"),
        errors.DataError,
        "cannot read CSV",
    ),
    (
        "csv_missing_columns",
        lambda s, t: _load_csv(s, _write(t / "x.csv", "a,b\n1,2\n")),
        errors.DataError,
        "lacks the Give Me Some Credit columns",
    ),
]


def _model_with_extra_feature(settings):

    with results.open_results(settings) as con:
        champ = registry.champion(con, settings)
        fake = replace(
            champ,
            model_version="logreg-fake-features",
            status="candidate",
            features=(*champ.features, "shoe_size"),
        )
        con.bulk_insert("model_registry", pa.Table.from_pylist([fake.row()]))
    try:
        return pipeline.extract(
            settings, RunOptions(snapshot_date=DATE, model_version=fake.model_version)
        )
    finally:
        with results.open_results(settings) as con:
            con.execute(
                "DELETE FROM model_registry WHERE model_version = :v", {"v": fake.model_version}
            )


def _write(path, text):
    path.write_text(text)
    return path


def _load_csv(settings, path):
    url = f"duckdb:///{path.parent / 'csv-warehouse.duckdb'}"
    return pipeline.load_csv(replace(settings, warehouse_url=url), str(path), snapshot_date=DATE)


@pytest.mark.parametrize(
    ("loaded", "case", "call", "error", "needle"),
    _on_backends(BROKEN_CASES),
    indirect=["loaded"],
)
def test_broken_input_stops_with_a_clear_error_and_loses_nothing(
    loaded, outcome, monkeypatch, tmp_path, case, call, error, needle
):
    settings, _ = loaded
    with monkeypatch.context() as guarded:
        _guard_databases(guarded, case)
        with pytest.raises(error) as info:
            call(settings, tmp_path)
    message = str(info.value)
    assert needle in message and "\n" not in message, message
    _check_nothing_changed(settings)
    shutil.rmtree(Path(settings.lake_url) / "features", ignore_errors=True)
    outcome(f"{error.__name__}, old slice intact", message[:70])


def test_the_concepts_page_counts_these_cases():
    names = [c[0] for c in PARAMETER_CASES + BROKEN_CASES]
    once = sum(n in NO_DATABASE for n in names)
    own = sum(n in OWN_DATABASE for n in names)
    text = " ".join((REPO / "docs" / "concepts.md").read_text().split())
    assert len(set(names)) == len(names) and set(names) >= NO_DATABASE | OWN_DATABASE
    assert (
        f"{len(names)} bad inputs: the {len(names) - once - own} that touch a database on "
        f"DuckDB and on PostgreSQL, the {own} that tries the unreachable database it names "
        f"once, the {once} refused before any database opens once" in text
    )
