"""Connections to the warehouse and the results database, by SQLAlchemy URL.

Two backends, each driven by its own native client because bulk data must
move as Arrow, not row by row:

* ``duckdb:///path/to/file.duckdb``: the embedded default (``duckdb``);
  bulk inserts scan Arrow tables, readers or Parquet datasets in place.
* ``postgresql://user@host:port/db`` (``+psycopg`` allowed): production
  (``psycopg`` 3); bulk inserts go as binary ``COPY`` encoded from Arrow (``pgpq``),
  reads come back as binary ``COPY`` decoded into Arrow (ADBC's PostgreSQL
  driver; CSV through ``COPY`` where it is not installed).

SQL is read from ``sql/`` files with ``:name`` placeholders; values are
always bound parameters. Table names pass an allow-list.
"""

from __future__ import annotations

import io
import logging
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from credit_batch.checks import check_identifier_name
from credit_batch.errors import (
    DataError,
    ParameterError,
    SchemaMismatchError,
    ServiceUnavailableError,
    UnsupportedDatabaseError,
)

__all__ = [
    "first_line",
    "ALLOWED_TABLES",
    "Database",
    "DuckDBDatabase",
    "PostgresDatabase",
    "check_identifier",
    "connect",
    "database_exists",
    "read_sql",
    "relative_path_note",
    "table_columns",
    "type_fits",
]

logger = logging.getLogger(__name__)

#: Tables credit-batch may name in composed SQL (bulk inserts).
ALLOWED_TABLES = frozenset(
    {
        "features",
        "events",  # the streaming example's event history
        "outcomes",
        "predictions",
        "predictions_integer_keys",
        "predictions_string_keys",
        "scoring_runs",
        "feature_importance",
        "model_registry",
        "quarantine",
        "quarantine_integer_keys",
        "quarantine_string_keys",
        "fairness",
        "adverse_action",
        "adverse_action_integer_keys",
        "adverse_action_string_keys",
        "online_features",
        "online_features_integer_keys",
        "online_features_string_keys",
        "online_staged",  # a materialization's rows before the merge (a temporary table)
        "stream_predictions",
        "stream_staged",  # a micro-batch's scores before the insert (a temporary table)
        "shap_summary",
        "drift",
        "partial_dependence",
        "feature_reasons",
        "model_events",
        "model_lineage",
        "schema_migrations",
        "api_keys",
        "challenger_comparison",
        "realized_performance",
        "calibration",
        "loan_book",  # the second example's warehouse (credit_batch.demo_lender)
        "loan_outcomes",
        "portfolio_book",  # the third example's (credit_batch.demo_portfolio)
        "portfolio_outcomes",
    }
)
_PLACEHOLDER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_LOCK_RETRIES = 6
_LOCK_FIRST_WAIT_S = 0.25


def read_sql(sql_dir: Path, name: str) -> str:
    """Return the text of ``sql_dir/name`` (e.g. ``"extract/features.sql"``)."""
    path = Path(sql_dir) / name
    if not path.is_file():
        raise ParameterError("SQL file", str(path), "must exist")
    return path.read_text(encoding="utf-8")


_NUMBER = re.compile(
    r"^(double|real|float|decimal|numeric|integer|int|bigint|smallint|tinyint|hugeint|u?int\d*)"
)
_STRING = re.compile(r"^(varchar|text|character|char|string|bpchar)")
#: Which SQL types (DuckDB's or PostgreSQL's names) can hold each kind of value.
_FITS = {
    "numeric": _NUMBER,
    "integer": _NUMBER,
    "boolean": re.compile(r"^(boolean|bool|integer|int|bigint|smallint|tinyint)"),
    "key:integer": re.compile(r"^(integer|int|bigint|smallint|hugeint|u?int\d*)"),
    "key:string": _STRING,
    "date": re.compile(r"^(date|timestamp)"),
    "categorical": re.compile(r"^(varchar|text|character|char|string|bpchar|enum)"),
}


def type_fits(kind: str, data_type: str) -> bool:
    """Whether a column of SQL type ``data_type`` can hold a ``kind`` value
    (a feature type, ``date``, or ``key:integer`` / ``key:string``)."""
    return bool(_FITS[kind].match(data_type.strip().lower()))


def table_columns(db: Database, sql_dir: Path, table: str) -> dict[str, str]:
    """The columns of ``table`` and their SQL types, in order; empty if there is no table."""
    rows = db.fetch_arrow(read_sql(sql_dir, "schema/columns.sql"), {"table_name": table})
    names, types = rows.column("column_name").to_pylist(), rows.column("data_type").to_pylist()
    return dict(zip(names, types, strict=True))


def check_identifier(name: str, *, tables: bool = False) -> str:
    """Return ``name`` if it is a plain identifier (and, for tables, allow-listed)."""
    check_identifier_name("identifier", name)
    if tables and name not in ALLOWED_TABLES:
        raise ParameterError("table", name, f"must be one of {sorted(ALLOWED_TABLES)}")
    return name


def connect(
    url: str,
    *,
    read_only: bool = False,
    schema: str | None = None,
    memory_limit: str | None = None,
) -> Database:
    """Open the database at ``url``.

    Parameters
    ----------
    url : str
        SQLAlchemy URL, ``duckdb:///file`` or ``postgresql://...``.
    read_only : bool
        Open for reading only. A DuckDB file must then already exist.
    schema : str, optional
        PostgreSQL: the schema to work in (the connection's ``search_path``;
        ``public`` stays behind it). DuckDB: ignored.
    memory_limit : str, optional
        DuckDB: the most memory its queries take before they spill to disk
        (default: DuckDB's own, 80% of the machine's memory; every connection
        of a process to one file must give the same).
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UnsupportedDatabaseError("database URL", url, "must be a SQLAlchemy URL") from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "duckdb":
        path = parsed.database or ":memory:"
        return DuckDBDatabase(path, read_only=read_only, memory_limit=memory_limit)
    if backend in ("postgresql", "postgres") and driver in ("", "psycopg"):
        return PostgresDatabase(parsed, read_only=read_only, schema=schema)
    shown = parsed.render_as_string(hide_password=True)
    raise UnsupportedDatabaseError(
        "database URL", shown, "must use duckdb:/// or postgresql:// (psycopg)"
    )


def database_exists(url: str) -> bool:
    """False only for a DuckDB file that does not exist yet (opening it would create it)."""
    path = _duckdb_path(url)
    return path is None or path == ":memory:" or Path(path).exists()


def change_stamp(url: str) -> tuple | None:
    """What any commit to a DuckDB file changes (the file's and its WAL's size and mtime).

    None for a server database (PostgreSQL), whose changes only a query tells.
    A stat costs microseconds where opening a DuckDB file costs about 17 ms
    of CPU, so a reader that keeps data in memory opens the file only when
    this changed.
    """
    path = _duckdb_path(url)
    if path is None or path == ":memory:":
        return None
    stamp = []
    for file in (Path(path), Path(f"{path}.wal")):
        try:
            found = file.stat()
            stamp.append((found.st_size, found.st_mtime_ns))
        except FileNotFoundError:
            stamp.append(None)
    return tuple(stamp)


def relative_path_note(url: str) -> str | None:
    """For a DuckDB URL whose path is relative, where it resolves from here; else None.

    ``duckdb:///scores/r.duckdb`` (three slashes) is ``scores/r.duckdb`` under
    the current folder; an absolute path takes four: ``duckdb:////srv/r.duckdb``.
    """
    path = _duckdb_path(url)
    if path is None or path == ":memory:" or Path(path).is_absolute():
        return None
    return f"a path relative to the current folder: {Path(path).resolve()}"


def _duckdb_path(url: str) -> str | None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.drivername.partition("+")[0] != "duckdb":
        return None
    return parsed.database or ":memory:"


class Database:
    """What the pipeline needs of a database; see the two backends below."""

    dialect = ""
    url = ""

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run_script(self, sql: str) -> None:
        """Run several ``;``-separated statements without parameters."""
        raise NotImplementedError

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        """Run one statement; return the affected row count where known."""
        raise NotImplementedError

    def fetch_arrow(self, sql: str, params: Mapping[str, Any] | None = None):
        """Run a query and return a small result as a ``pyarrow.Table``."""
        raise NotImplementedError

    def stream_arrow(
        self, sql: str, params: Mapping[str, Any] | None, *, schema, batch_rows: int
    ) -> Iterator:
        """Run a query and yield ``pyarrow.RecordBatch`` es cast to ``schema``."""
        raise NotImplementedError

    def bulk_insert(self, table: str, source) -> int:
        """Append an Arrow table, reader or dataset to ``table``; return rows written."""
        raise NotImplementedError

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Commit the block's statements together, or none of them."""
        raise NotImplementedError
        yield

    def close(self) -> None:
        """Release the connection."""


def _check_columns(got: list[str], schema, source: str) -> None:
    want = list(schema.names)
    if got != want:
        missing = [c for c in want if c not in got]
        extra = [c for c in got if c not in want]
        raise SchemaMismatchError(
            f"{source} returned columns that do not match the feature spec: "
            f"missing {missing}, unexpected {extra}",
            missing=missing,
            unexpected=extra,
        )


class DuckDBDatabase(Database):
    """A DuckDB file, opened through the ``duckdb`` client."""

    dialect = "duckdb"

    def __init__(
        self, path: str, *, read_only: bool = False, memory_limit: str | None = None
    ) -> None:
        import duckdb

        self.url = f"duckdb:///{path}"
        if path != ":memory:":
            if read_only and not Path(path).exists():
                raise DataError(
                    f"database {path} does not exist yet (a fresh home?): `credit-batch demo` "
                    "builds the demo warehouse, model and scores; `credit-batch demo-data` "
                    "only the warehouse; or set CREDIT_BATCH_WAREHOUSE_URL / _RESULTS_URL",
                    path=path,
                )
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._con = _open_duckdb(duckdb, path, read_only, memory_limit)

    def run_script(self, sql: str) -> None:
        self._con.execute(sql)

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        result = self._con.execute(_PLACEHOLDER.sub(r"$\1", sql), dict(params or {}))
        try:
            row = result.fetchone()
        except Exception:  # noqa: BLE001 - statements without a result set
            return -1
        return int(row[0]) if row and isinstance(row[0], int) else -1

    def fetch_arrow(self, sql: str, params: Mapping[str, Any] | None = None):
        return self._con.sql(
            _PLACEHOLDER.sub(r"$\1", sql), params=dict(params or {})
        ).to_arrow_table()

    def stream_arrow(self, sql, params, *, schema, batch_rows):
        import duckdb

        try:
            rel = self._con.sql(_PLACEHOLDER.sub(r"$\1", sql), params=dict(params or {}))
            reader = rel.to_arrow_reader(batch_rows)
        except duckdb.Error as exc:
            raise DataError(f"query on {self.url} failed: {first_line(exc)}") from exc
        _check_columns(reader.schema.names, schema, "query")
        for batch in reader:
            yield _cast(batch, schema)

    def bulk_insert(self, table: str, source) -> int:
        check_identifier(table, tables=True)
        names = [check_identifier(n) for n in source.schema.names]
        cols = ", ".join(names)
        statement = "INSERT INTO " + table + " (" + cols + ") SELECT " + cols
        # Rows need no order in a table (readers sort); without it DuckDB inserts
        # in parallel: 2M predictions in 0.56 s instead of 0.94 s.
        self._con.execute("SET preserve_insertion_order = false")
        try:
            return self._insert(statement, source)
        finally:
            self._con.execute("RESET preserve_insertion_order")

    def _insert(self, statement: str, source) -> int:
        files = getattr(source, "files", None) if _on_local_disk(source) else None
        if files:  # local Parquet: DuckDB's own parallel reader, ~25 % faster than Arrow's
            row = self._con.execute(statement + " FROM read_parquet($files)", {"files": files})
            return int(row.fetchone()[0])
        self._con.register("_credit_batch_source", source)
        try:
            row = self._con.execute(statement + " FROM _credit_batch_source").fetchone()
        finally:
            self._con.unregister("_credit_batch_source")
        return int(row[0])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._con.begin()
        try:
            yield
        except BaseException:
            self._con.rollback()
            raise
        self._con.commit()

    def close(self) -> None:
        self._con.close()


def _on_local_disk(source) -> bool:
    """Whether ``source`` is a dataset of local files (S3 ones are read through Arrow)."""
    import pyarrow.fs as pafs

    return isinstance(getattr(source, "filesystem", None), pafs.LocalFileSystem)


def _open_duckdb(duckdb, path: str, read_only: bool, memory_limit: str | None):
    wait = _LOCK_FIRST_WAIT_S
    for attempt in range(_LOCK_RETRIES):
        try:
            config = {} if memory_limit is None else {"memory_limit": memory_limit}
            return duckdb.connect(path, read_only=read_only, config=config)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or attempt == _LOCK_RETRIES - 1:
                error = ServiceUnavailableError if "lock" in str(exc).lower() else DataError
                raise error(
                    f"cannot open DuckDB file {path}: {str(exc).splitlines()[0]}", path=path
                ) from exc
            logger.warning("DuckDB file %s is locked; retrying in %.2fs", path, wait)
            time.sleep(wait)
            wait *= 2
    raise AssertionError("unreachable")


# The PostgreSQL types (by OID) that binary COPY writes from Arrow, and the Arrow
# type a column is cast to first.
def _binary_types() -> dict:
    import pyarrow as pa

    return {
        16: pa.bool_,
        21: pa.int16,
        23: pa.int32,
        20: pa.int64,
        700: pa.float32,
        701: pa.float64,
        25: pa.string,
        1043: pa.string,
        1082: pa.date32,
        1114: lambda: pa.timestamp("us"),
        1184: lambda: pa.timestamp("us", tz="UTC"),
    }


def _cast(batch, schema):
    try:
        return batch.cast(schema)
    except Exception as exc:  # pyarrow raises ArrowInvalid / ArrowNotImplementedError
        raise _cast_error(batch, schema, exc) from exc


def _cast_error(batch, schema, exc: BaseException) -> Exception:
    """The error for a batch that cannot be cast to ``schema``, naming the first bad column."""
    for have, want in zip(batch.schema, schema, strict=True):
        try:
            batch.column(have.name).cast(want.type)
        except Exception as bad:  # noqa: BLE001 - pyarrow's cast errors have no common base
            return SchemaMismatchError(
                f"query column {want.name} ({have.type}) cannot be read as the spec's type "
                f"{want.type}: {first_line(bad)}",
                column=want.name,
            )
    got = {f.name: str(f.type) for f in batch.schema}
    return SchemaMismatchError(
        f"query columns cannot be read as the spec's types: got {got}: {first_line(exc)}", got=got
    )


def _adbc_postgresql():
    """ADBC's PostgreSQL driver (``adbc_driver_postgresql.dbapi``), or None if not installed."""
    try:
        import adbc_driver_postgresql.dbapi
    except ImportError:
        return None
    return adbc_driver_postgresql.dbapi


def _conninfo(kwargs: dict, *, read_only: bool) -> str:
    """A libpq connection string of psycopg's connection arguments (read-only if asked)."""
    from psycopg.conninfo import make_conninfo

    options = [kwargs["options"]] if kwargs.get("options") else []
    if read_only:
        options.append("-c default_transaction_read_only=on")
    return make_conninfo(**{**kwargs, "options": " ".join(options) or None})


class PostgresDatabase(Database):
    """A PostgreSQL database, through ``psycopg`` 3 with ``COPY`` for bulk data."""

    dialect = "postgresql"

    def __init__(self, url, *, read_only: bool = False, schema: str | None = None) -> None:
        try:
            import psycopg
        except ImportError:
            raise ParameterError(
                "database URL",
                url.render_as_string(hide_password=True),
                "needs psycopg: pip install 'credit-batch[postgres]'",
            ) from None
        self.url = url.render_as_string(hide_password=True)
        kwargs = {
            "host": url.host or "127.0.0.1",
            "port": url.port or 5432,
            "user": url.username,
            "password": url.password,
            "dbname": url.database,
            "options": None if schema is None else f"-c search_path={check_identifier(schema)}",
        }
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        try:
            self._con = psycopg.connect(**kwargs, autocommit=True)
        except psycopg.OperationalError as exc:
            first = str(exc).strip().splitlines()[0]
            raise ServiceUnavailableError(
                f"cannot connect to {self.url}: {first}", url=self.url
            ) from exc
        self._con.read_only = read_only or None
        self._conninfo = _conninfo(kwargs, read_only=read_only)  # for binary reads (ADBC)

    @staticmethod
    def _bind(sql: str) -> str:
        return _PLACEHOLDER.sub(r"%(\1)s", sql.replace("%", "%%"))

    def run_script(self, sql: str) -> None:
        self._con.execute(sql)

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        cur = self._con.execute(self._bind(sql), dict(params or {}))
        return cur.rowcount

    def fetch_arrow(self, sql: str, params: Mapping[str, Any] | None = None):
        import pyarrow as pa

        cur = self._con.execute(self._bind(sql), dict(params or {}))
        names = [d.name for d in cur.description]
        rows = cur.fetchall()
        return pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)})

    def stream_arrow(self, sql, params, *, schema, batch_rows):
        """Binary ``COPY`` decoded into Arrow by ADBC's PostgreSQL driver, where installed
        (1.6x the CSV path on 2M rows: the server formats no double as text, Arrow
        parses none); else ``COPY ... TO STDOUT`` as CSV, parsed by Arrow."""
        import psycopg

        query, driver = sql.strip().rstrip(";"), _adbc_postgresql()
        try:
            if driver is not None:
                yield from self._binary_out(driver, query, params, schema, batch_rows)
                return
            statement = "COPY (" + query + ") TO STDOUT (FORMAT CSV, HEADER)"
            yield from self._copy_out(statement, params, schema)
        except psycopg.Error as exc:
            raise DataError(f"query on {self.url} failed: {first_line(exc)}") from exc

    def _binary_out(self, driver, query: str, params, schema, batch_rows: int):
        """The query's rows through ADBC, on a connection of its own.

        The parameters are bound into the text by psycopg on the client, as
        psycopg binds them for ``COPY``: ADBC sends a statement without
        parameters as binary ``COPY (query) TO STDOUT`` (with them it would
        not use ``COPY``, and reads at the CSV path's rate).
        """
        import adbc_driver_manager
        import psycopg

        if params:
            query = psycopg.ClientCursor(self._con).mogrify(self._bind(query), dict(params))
        try:
            con = driver.connect(self._conninfo, autocommit=True)
        except adbc_driver_manager.Error as exc:
            raise ServiceUnavailableError(
                f"cannot connect to {self.url}: {first_line(exc)}", url=self.url
            ) from exc
        try:
            with con, con.cursor() as cur:
                cur.execute(query)
                reader = cur.fetch_record_batch()
                _check_columns(reader.schema.names, schema, "query")
                for batch in reader:
                    for start in range(0, batch.num_rows, batch_rows):
                        yield _cast(batch.slice(start, batch_rows), schema)
        except adbc_driver_manager.Error as exc:
            raise DataError(f"query on {self.url} failed: {first_line(exc)}") from exc

    def _copy_out(self, statement: str, params, schema):
        import pyarrow as pa
        import pyarrow.csv as pacsv

        with self._con.cursor() as cur, cur.copy(self._bind(statement), dict(params or {})) as cp:
            stream = _CopyStream(cp)
            header = stream.peek_header()
            _check_columns(header, schema, "query")
            try:
                reader = pacsv.open_csv(
                    stream,
                    read_options=pacsv.ReadOptions(block_size=1 << 22),
                    # COPY writes NULL unquoted-empty and '' quoted: keep them apart
                    convert_options=pacsv.ConvertOptions(
                        column_types=schema,
                        strings_can_be_null=True,
                        quoted_strings_can_be_null=False,
                        true_values=["t"],  # PostgreSQL's text form of a boolean
                        false_values=["f"],
                    ),
                )
                for batch in reader:
                    yield _cast(batch, schema)
            except pa.ArrowInvalid as exc:
                raise _column_type_error(exc, schema) from exc

    def bulk_insert(self, table: str, source) -> int:
        import psycopg
        from psycopg import sql

        check_identifier(table, tables=True)
        names = [check_identifier(n) for n in source.schema.names]
        columns = sql.SQL("{} ({})").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, names))
        )
        target = self._binary_schema(table, source.schema)
        fmt = sql.SQL("CSV" if target is None else "BINARY")
        statement = sql.SQL("COPY {} FROM STDIN (FORMAT {})").format(columns, fmt)
        try:
            with self._con.cursor() as cur, cur.copy(statement) as cp:
                if target is None:
                    return _copy_csv(cp, source)
                return _copy_binary(cp, source, target, table)
        except psycopg.errors.IntegrityError as exc:
            raise DataError(
                f"bulk insert into {table} broke a constraint: {first_line(exc)}", table=table
            ) from exc

    def _binary_schema(self, table: str, schema):
        """The Arrow schema binary ``COPY`` into ``table`` needs, or None (then CSV).

        Binary ``COPY`` takes each value in its column's exact wire type, so the
        batches are cast to the table's own types first; a column of a type
        outside :func:`_binary_types` (or a source that cannot be cast) goes as CSV,
        which the server parses whatever the type.
        """
        import pyarrow as pa
        from psycopg import sql

        probe = sql.SQL("SELECT * FROM {} WHERE false").format(sql.Identifier(table))
        with self._con.cursor() as cur:
            cur.execute(probe)
            oids = {d.name: d.type_code for d in cur.description}
        types = _binary_types()
        kinds = [types.get(oids.get(name)) for name in schema.names]
        if None in kinds or any(getattr(t, "unit", None) == "ns" for t in schema.types):
            return None  # (nanoseconds: PostgreSQL rounds them from text, a cast would refuse)
        fields = zip(schema.names, kinds, strict=True)
        target = pa.schema([pa.field(name, kind()) for name, kind in fields])
        try:
            schema.empty_table().cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
        return target

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._con.transaction():
            yield

    def close(self) -> None:
        self._con.close()


def _column_type_error(exc: BaseException, schema) -> Exception:
    """The error for a CSV value of the wrong type, naming the column (Arrow gives its number)."""
    found = re.search(r"column #(\d+)", str(exc))
    index = int(found.group(1)) if found else None
    column = schema.field(index) if index is not None and index < len(schema) else None
    where = f"column {column.name} ({column.type})" if column else "columns"
    return SchemaMismatchError(
        f"query {where} cannot be read as the spec's type: {first_line(exc)}",
        column=None if column is None else column.name,
    )


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name if it has none)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _copy_csv(cp, source) -> int:
    import pyarrow.csv as pacsv

    options, rows = pacsv.WriteOptions(include_header=False), 0
    for batch in _batches(source):
        buf = io.BytesIO()
        pacsv.write_csv(batch, buf, options)
        cp.write(buf.getbuffer())
        rows += batch.num_rows
    return rows


def _copy_binary(cp, source, target, table: str) -> int:
    """Encode Arrow batches as PostgreSQL's binary ``COPY`` (pgpq): no text to parse."""
    import pgpq
    import pyarrow as pa

    encoder, rows = pgpq.ArrowToPostgresBinaryEncoder(target), 0
    cp.write(encoder.write_header())
    for batch in _batches(source):
        try:
            batch = batch.cast(target)
        except pa.ArrowInvalid as exc:
            raise DataError(
                f"bulk insert into {table}: a value does not fit its column's type: "
                f"{first_line(exc)}; nothing was written",
                table=table,
            ) from exc
        cp.write(encoder.write_batch(batch))
        rows += batch.num_rows
    cp.write(encoder.finish())
    return rows


def _batches(source) -> Iterable:
    if hasattr(source, "to_batches"):
        return source.to_batches()
    return source


class _CopyStream(io.RawIOBase):
    """A readable file over the blocks of a psycopg ``COPY ... TO STDOUT``."""

    def __init__(self, copy) -> None:
        self._copy = copy
        self._buf = b""

    def readable(self) -> bool:
        return True

    def peek_header(self) -> list[str]:
        while b"\n" not in self._buf:
            block = bytes(self._copy.read())
            if not block:
                break
            self._buf += block
        return self._buf.split(b"\n", 1)[0].decode().strip().split(",")

    def readinto(self, target) -> int:
        """Fill ``target`` (COPY hands out one row a block; Arrow's CSV reader makes a
        batch of each read, so a short read would give one-row batches, and one-row
        Parquet row groups: a 20,000-row part of 62 MB instead of 1 MB)."""
        view, filled = memoryview(target).cast("B"), 0
        while filled < len(view):
            if not self._buf:
                self._buf = bytes(self._copy.read())
                if not self._buf:
                    break
            n = min(len(view) - filled, len(self._buf))
            view[filled : filled + n] = self._buf[:n]
            self._buf = self._buf[n:]
            filled += n
        return filled
