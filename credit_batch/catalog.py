"""Read-only views of the results for the faces (the command line, later an API).

Nothing here writes, and nothing here creates a database: on a fresh home
(no DuckDB results file yet) the lists are empty and :func:`query` says
which command makes the first results.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from pathlib import Path

from credit_batch.checks import check_model_name, check_model_version, check_rows, parse_date
from credit_batch.config import Settings, safe_url
from credit_batch.errors import CreditBatchError, DataError, ParameterError
from credit_batch.stores import results
from credit_batch.stores.db import (
    first_line,
    read_sql,
    relative_path_note,
    table_columns,
)

__all__ = [
    "as_of_date",
    "change_stamp",
    "champion_models",
    "champion_scores",
    "require_champion",
    "customer_key",
    "scores_view",
    "describe_url",
    "history",
    "lookup",
    "lookups",
    "only_model",
    "models",
    "query",
    "rows",
    "run_summary",
    "runs",
    "champions_of",
    "loaded_model",
    "no_features_error",
    "champion_records",
    "indexed_features",
    "online_index",
    "stored_features",
    "stored_features_of",
    "version_record",
]

#: Rows ``credit-batch runs`` lists at most.
MAX_RUNS_LISTED = 10_000


def scores_view(settings: Settings, key_type: str) -> str:
    """The ``latest_predictions`` view of models keyed by ``key_type`` in the results
    (suffixed where the database was first keyed the other way)."""
    with results.open_results(settings, read_only=True) as db:
        return "latest_predictions" + results.key_suffix(db, settings, key_type)


def describe_url(url: str) -> str:
    """``url``, and where it resolves when it is a DuckDB path relative to the current folder."""
    note = relative_path_note(url)
    return url if note is None else f"{url} ({note})"


def models(settings: Settings) -> list[dict]:
    """Every registered model version, newest first (none on a fresh home)."""
    return _rows(settings, ["registry/list.sql"], {})[0]


def champions_as_of(settings: Settings, day) -> list[dict]:
    """Each model's (and segment's) champion at the end of ``day`` (UTC), from the audit
    trail (the ``champion_history`` view): version, since when, promoted by whom and why.
    None before the first promotion; a database from before the view: a clear error."""
    day = parse_date(day, name="as-of date")
    if not results.exists(settings):
        return []
    with results.open_results(settings, read_only=True) as db:
        if not table_columns(db, settings.sql_dir, "champion_history"):
            raise DataError(
                f"the results database {describe_url(settings.results_url)} predates the "
                "champion_history view: `credit-batch upgrade` (or any night) adds it",
            )
        sql = read_sql(settings.sql_dir, "registry/champions_as_of.sql")
        after = dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
        return db.fetch_arrow(sql, {"day_after": after}).to_pylist()


def lineage(settings: Settings, model_name: str | None = None) -> dict:
    """Which model reads which: ``{"edges": {model: models it reads}, "versions": rows}``;
    with ``model_name``, the rows of the versions that changing it affects (those reading
    it, directly or through others: :func:`credit_batch.stores.registry.lineage`)."""
    from credit_batch.stores import registry

    if not results.exists(settings):
        return {"edges": {}, "versions": []}
    with results.open_results(settings, read_only=True) as db:
        edges = registry.model_edges(db, settings)
        return {"edges": edges, "versions": registry.lineage(db, settings, model_name)}


def runs(settings: Settings, *, limit: int = 20) -> list[dict]:
    """The newest runs, with status, start, origin and seconds per step.

    ``origin`` is ``airflow <dag id>/<run id>`` for a DAG run, else ``command line``.
    """
    check_rows("limit", limit, maximum=MAX_RUNS_LISTED)
    [rows] = _rows(settings, ["registry/runs.sql"], {"limit": limit})
    for r in rows:
        r["origin"] = (
            f"airflow {r['airflow_dag_id']}/{r['airflow_run_id']}"
            if r["airflow_dag_id"]
            else "command line"
        )
    return rows


def run_summary(settings: Settings, snapshot_date: dt.date, model_version: str) -> dict:
    """The risk bands (customers, mean score) and top three features of a slice."""
    from credit_batch.stores import registry

    version = check_model_version(model_version)
    params = {"snapshot_date": snapshot_date, "model_version": version}
    if not results.exists(settings):
        return {"bands": [], "top_features": []}
    with results.open_results(settings, read_only=True) as db:
        suffix = registry.key_suffix_of(db, settings, version)
        bands, shap = (
            db.fetch_arrow(results.keyed_sql(read_sql(settings.sql_dir, name), suffix), params)
            for name in ("report/bands.sql", "report/shap_summary.sql")
        )
    return {"bands": bands.to_pylist(), "top_features": shap.to_pylist()[:3]}


#: The latest score at or before this date when no ``as_of`` is given.
_END_OF_TIME = dt.date(9999, 12, 31)
#: Longest customer id taken (a string key), before any database is asked.
MAX_CUSTOMER_ID_LENGTH = 64


def lookup(settings: Settings, customer_id, *, as_of=None, model_name=None) -> dict | None:
    """The champion's newest score of ``customer_id`` at or before ``as_of`` (default: any),
    with band, points, the three reasons (feature, text, log-odds), model, run and snapshot.

    ``model_name``: that model's champion; none named, the only model that
    scored the customer (refused, naming them, where several did). None where
    the customer has no such score. ``customer_id`` is checked against the
    results' key type (an integer or a string) before any query.
    """
    return only_model(lookups(settings, customer_id, as_of=as_of, model_name=model_name))


def only_model(found: list[dict]) -> dict | None:
    """The one score of ``found`` (a row per model), None for none; several are refused,
    naming their models (the caller must name one)."""
    if len(found) > 1:
        names = ", ".join(r["model_name"] for r in found)
        raise ParameterError("model name", None, f"must name one of the models: {names}")
    return found[0] if found else None


def lookups(settings: Settings, customer_id, *, as_of=None, model_name=None) -> list[dict]:
    """Each model's champion's newest score of ``customer_id`` at or before ``as_of`` (a
    row per model, by model name), or only ``model_name``'s; see :func:`lookup`."""
    date = as_of_date(as_of)
    name = None if model_name is None else check_model_name(model_name)
    found = _keyed_rows(settings, "serve/lookup.sql", customer_id, {"as_of": date}, order=_by_model)
    return [r for r in found if name is None or r["model_name"] == name]


def as_of_date(as_of) -> dt.date:
    """``as_of`` checked as a date; the end of time where none is given."""
    return _END_OF_TIME if as_of is None else parse_date(as_of, name="as-of date")


def history(settings: Settings, customer_id) -> list[dict]:
    """Every stored score of ``customer_id``, newest first (every model, with its role)."""
    return _keyed_rows(settings, "serve/history.sql", customer_id, {}, order=_newest_first)


def adverse_action(
    settings: Settings,
    snapshot_date,
    *,
    model_name: str | None = None,
    model_version: str | None = None,
    customer_id=None,
) -> list[dict]:
    """The adverse-action reasons of a snapshot (:mod:`credit_batch.steps.adverse_action`).

    One row per (declined customer, reason), from the version that decided (each
    model's or segment's champion run of the snapshot), or from ``model_version``;
    only ``model_name``'s, or ``customer_id``'s, where given. Sorted by model,
    version, customer and rank.
    """
    date = parse_date(snapshot_date, name="date")
    if model_name is not None:
        check_model_name(model_name)
    if model_version is not None:
        check_model_version(model_version)
    params = {"snapshot_date": date, "model_name": model_name, "model_version": model_version}
    params["customer_id"] = None if customer_id is None else str(customer_id)
    if not results.exists(settings):
        return []
    found = []
    with results.open_results(settings, read_only=True) as db:
        sql = read_sql(settings.sql_dir, "serve/adverse_action.sql")
        for suffix in results.key_suffixes(db, settings).values():
            found += db.fetch_arrow(results.keyed_sql(sql, suffix), params).to_pylist()
    return sorted(found, key=_by_notice)


#: The columns of :func:`adverse_action`'s rows (serve/adverse_action.sql).
ADVERSE_ACTION_COLUMNS = [
    "snapshot_date",
    "model_name",
    "segment",
    "model_version",
    "customer_id",
    "score",
    "cutoff",
    "reason_rank",
    "feature",
    "reason_text",
    "contribution",
    "value",
    "category",
]


def notices(rows: list[dict]) -> list[dict]:
    """:func:`adverse_action`'s rows grouped into one notice per (version, customer),
    its reasons in rank order."""
    out, by_key = [], {}
    for row in rows:
        key = (row["model_version"], row["customer_id"])
        if key not in by_key:
            head = {k: row[k] for k in ADVERSE_ACTION_COLUMNS[:7]}
            by_key[key] = {**head, "reasons": []}
            out.append(by_key[key])
        reason = {k: row[k] for k in ("feature", "reason_text", "contribution", "value")}
        reason["category"] = row["category"]
        by_key[key]["reasons"].append(reason)
    return out


def _by_notice(row: dict):
    key = row["customer_id"]
    name = row["model_name"] or ""
    return (name, row["model_version"], isinstance(key, str), key, row["reason_rank"])


def _by_model(row: dict):
    return row["model_name"]


def _newest_first(row: dict):
    return (-row["snapshot_date"].toordinal(), row["model_version"])


def _keyed_rows(settings: Settings, name: str, customer_id, params: dict, *, order) -> list[dict]:
    """The rows of the query ``name`` bound to ``customer_id``, from the keyed tables of
    each key type the results hold that the id can be (an integer id is asked of both),
    sorted by ``order`` (a row's sort key); refused where it can be none of them."""
    if not results.exists(settings):
        return []
    found, refused, asked = [], None, 0
    with results.open_results(settings, read_only=True) as db:
        sql = read_sql(settings.sql_dir, name)
        for key_type, suffix in results.key_suffixes(db, settings).items():
            try:
                key = customer_key(customer_id, string=key_type == "string")
            except ParameterError as exc:
                refused = exc
                continue
            asked += 1
            bound = {**params, "customer_id": key}
            found += db.fetch_arrow(results.keyed_sql(sql, suffix), bound).to_pylist()
    if refused is not None and not asked:
        raise refused
    return sorted(found, key=order)


#: An integer id as ASCII digits ("¹" and "٣" are digits to ``str.isdigit``, not to ``int``).
_INTEGER = re.compile(r"-?[0-9]+")


def customer_key(value, *, string: bool):
    """``value`` as the results' customer id type; ParameterError where it cannot be one."""
    text = str(value)
    if not text or len(text) > MAX_CUSTOMER_ID_LENGTH or not text.isprintable():
        raise ParameterError(
            "customer id", value, f"must be 1 to {MAX_CUSTOMER_ID_LENGTH} printable characters"
        )
    if string:
        return text
    if isinstance(value, bool) or not _INTEGER.fullmatch(text) or abs(int(text)) >= 2**63:
        raise ParameterError("customer id", value, "must be an integer (the results' key type)")
    return int(text)


def query(settings: Settings, sql_or_path: str):
    """Run one read-only query (text, or the path of a ``.sql`` file) on the results.

    Returns a ``pyarrow.Table``. The database is opened read-only: a statement
    that writes fails there, and a fresh home gets an error naming the command
    that makes the first results.
    """
    text = _sql_text(sql_or_path)
    require_results(settings)
    with results.open_results(settings, read_only=True) as db:
        try:
            return db.fetch_arrow(text)
        except CreditBatchError:
            raise
        except Exception as exc:  # the driver's own error (syntax, unknown table, a write)
            hint = _did_you_mean(db, str(exc))
            raise DataError(
                f"query on {db.url} failed: {first_line(exc)}{hint}", url=db.url
            ) from exc


def require_results(settings: Settings) -> None:
    """Refuse, naming the command that makes them, where no results exist yet (a fresh home)."""
    if not results.exists(settings):
        raise DataError(
            f"no results yet at {safe_url(settings.results_url)}: `credit-batch demo` (or "
            "`credit-batch run`) makes the first",
            url=safe_url(settings.results_url),
        )


_MISSING = re.compile(r'(?:Table with name |relation ")(\w+)"? does not exist', re.I)


def _did_you_mean(db, message: str) -> str:
    """``; tables and views like it: ...`` for a query naming a table that does not exist."""
    missing = _MISSING.search(message)
    if not missing:
        return ""
    names = (
        db.fetch_arrow(
            "SELECT DISTINCT table_name FROM information_schema.tables"
            " WHERE table_schema NOT IN ('information_schema', 'pg_catalog')"
        )
        .column(0)
        .to_pylist()
    )
    close = difflib.get_close_matches(missing.group(1).lower(), names, n=3, cutoff=0.6)
    return (
        f"; did you mean {', '.join(close)}?" if close else f"; tables: {', '.join(sorted(names))}"
    )


def _sql_text(sql_or_path: str) -> str:
    if not isinstance(sql_or_path, str) or not sql_or_path.strip():
        raise DataError(f"a query or a .sql file is needed; got {sql_or_path!r}")
    path = Path(sql_or_path)
    if sql_or_path.endswith(".sql"):
        if not path.is_file():
            raise DataError(f"SQL file {sql_or_path} does not exist", path=sql_or_path)
        return path.read_text(encoding="utf-8")
    return sql_or_path


def rows(settings: Settings, name: str, params: dict | None = None) -> list[dict]:
    """The rows of one ``sql/`` query on the results, read-only (none on a fresh home)."""
    return _rows(settings, [name], params or {})[0]


def _rows(settings: Settings, names: list[str], params: dict) -> list[list[dict]]:
    """The rows of each ``sql/`` query in ``names``, over one read-only connection."""
    if not results.exists(settings):
        return [[] for _ in names]
    with results.open_results(settings, read_only=True) as db:
        return [
            db.fetch_arrow(read_sql(settings.sql_dir, name), params).to_pylist() for name in names
        ]


def change_stamp(settings: Settings):
    """A cheap callable whose value changes when the results database may have (a file's
    modification time, or PostgreSQL's commit stamp): when to read again."""
    from credit_batch.stores.db import change_stamp as stamp

    return lambda: stamp(settings.results_url)


def champion_models(settings: Settings, known: dict | None = None) -> dict:
    """Every model's champions, loaded: ``{model name: [(record, fitted model), ...]}``, a
    segmented model's pooled one first (none on a fresh home). A champion of ``known``
    with the same version and sha256 is kept, not loaded again; every artifact loaded is
    verified against its registered sha256."""
    from credit_batch.stores import registry

    if not results.exists(settings):
        return {}
    with results.open_results(settings, read_only=True) as db:
        records = registry.champions(db, settings)
    had = {r.model_version: (r, m) for units in (known or {}).values() for r, m in units}
    kept: dict[str, list] = {}
    for record in records:
        found = had.get(record.model_version)
        if found is None or found[0].sha256 != record.sha256:
            found = (record, loaded_model(settings, record))
        kept.setdefault(record.model_name, []).append(found)
    return kept


def loaded_model(settings: Settings, record):
    """``record``'s fitted model, its artifact verified against the registered sha256."""
    from credit_batch.stores import registry

    return registry.load_model(
        settings, record.artifact_path, record.sha256, version=record.model_version
    )


def champion_records(settings: Settings, model_name: str | None = None) -> list:
    """``[(record, None), ...]``: the champions of ``model_name`` (of the only model with
    one when none is named), a segmented model's pooled one first; NoChampionError where
    it has none, saying what to run."""
    from credit_batch.stores import registry

    require_results(settings)
    with results.open_results(settings, read_only=True) as db:
        found = registry.champions(db, settings)
    by_name: dict[str, list] = {}
    for record in found:
        by_name.setdefault(record.model_name, []).append((record, None))
    units = champions_of(by_name, model_name)
    if not units:
        registry.resolve(settings, None, model_name=model_name)  # raises, saying why
    return units


def version_record(settings: Settings, version: str, *, model_name: str | None = None):
    """The record of ``version`` (ParameterError where it is another model's)."""
    from credit_batch.stores import registry

    return registry.resolve(settings, version, model_name=model_name)


def stored_features(settings: Settings, spec, customer_id) -> dict | None:
    """The customer's newest row of ``spec``'s feature set in the online store, or None
    (:func:`credit_batch.stores.online_store.features_of`)."""
    from credit_batch.stores import online_store

    return online_store.features_of(settings, spec, customer_id)


def stored_features_of(settings: Settings, spec, customer_ids) -> dict:
    """:func:`stored_features` of several customers over one connection: ``{id: row}``."""
    from credit_batch.stores import online_store

    return online_store.features_of_many(settings, spec, customer_ids)


def online_index(settings: Settings, kept: dict | None = None) -> dict:
    """The whole online store in memory (the service's lookups on DuckDB):
    ``{"sets": what it holds, "index": ...}``; ``kept`` is returned as it is while the
    store holds the same."""
    from credit_batch.stores import online_store

    sets = online_store.feature_sets(settings)
    if kept is not None and kept["sets"] == sets:
        return kept
    tables = online_store.feature_tables(settings) if sets else []
    return {"sets": sets, "index": online_store.index_of(tables)}


def indexed_features(index: dict, spec, customer_id) -> dict | None:
    """The customer's row in :func:`online_index`'s ``index``, as :func:`stored_features`."""
    from credit_batch.stores import online_store

    return online_store.indexed(index["index"], spec, customer_id)


def champions_of(loaded: dict, model_name: str | None) -> list:
    """The champions of ``model_name`` in ``loaded`` (:func:`champion_models`), or of the only
    model there when none is named (ParameterError naming them where there are several)."""
    if model_name is not None:
        return loaded.get(check_model_name(model_name), [])
    if len(loaded) > 1:
        names = ", ".join(sorted(loaded))
        raise ParameterError("model name", None, f"must name one of the models: {names}")
    return next(iter(loaded.values()), [])


def no_features_error(customer_id, spec) -> DataError:
    """The error of a customer the online store holds no features of."""
    return DataError(
        f"no stored features of customer {customer_id} in feature set {spec.feature_set}: "
        "a night that extracts it writes them",
        customer_id=customer_id,
        feature_set=spec.feature_set,
    )


def require_champion(settings: Settings) -> None:
    """Raise the error that says why there is no champion, and what to run."""
    from credit_batch.stores import registry

    registry.resolve(settings, None)


def champion_scores(settings: Settings):
    """Every champion's stored scores (``sql/serve/champion_scores.sql``), an Arrow table per
    key type held, and the reason texts by feature, over one read-only connection:
    ``([Arrow table, ...], {feature: text})``."""
    with results.open_results(settings, read_only=True) as db:
        sql = read_sql(settings.sql_dir, "serve/champion_scores.sql")
        tables = [
            db.fetch_arrow(results.keyed_sql(sql, suffix))
            for suffix in results.key_suffixes(db, settings).values()
        ]
        texts = db.fetch_arrow(read_sql(settings.sql_dir, "serve/reason_texts.sql"))
    return tables, dict(zip(*texts.to_pydict().values(), strict=True))
