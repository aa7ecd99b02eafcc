"""The HTTP service: lookups of the stored scores, and online scoring of applicants.

``credit-batch serve`` runs :func:`create_app` with uvicorn. Routes:

- ``GET /v1/customers/{customer_id}/score[?as_of=D]``, ``GET
  /v1/customers/{customer_id}/history``: the stored scores (404: none);
- ``POST /v1/score``: one applicant's features -> score, band, points and
  reason codes by the champion, with the batch's rules (422 naming the field,
  the rule and the value);
- ``POST /v1/models/{model}/customers/{customer_id}/score[?version=V]``: online
  prediction from batch features: the customer's newest features from the
  online store (body: request-time features to use instead), scored now by
  the model's champion (404: no stored features);
- ``GET /healthz`` (alive), ``GET /readyz`` (results reachable, champion
  loaded and its sha256 verified), ``GET /metrics`` (Prometheus),
  ``GET /openapi.json``.

Every ``/v1`` route needs ``Authorization: Bearer KEY`` (``credit-batch
api-key create``): 401 without a known key, 403 for a revoked one. The keys'
statuses, the champion and (on DuckDB) the score index are kept in memory and
read again every :data:`CACHE_SECONDS` in the background: no request waits
for the store, except a lookup on PostgreSQL (one indexed query).

Reads only, and never for long. On PostgreSQL (the production store) each
lookup is one indexed query, and MVCC gives it a consistent snapshot: the
old slice or the new one, never half. On DuckDB, which lets one process
write a file or many read it but not both, lookups are answered from an
in-memory index of the champion's scores (:class:`_ScoreIndex`), rebuilt
from one read-only read after each committed load; the nightly load's
connect retries past the short reads.
"""

import atexit
import functools
import gc
import logging
import threading
import time
import weakref
from types import SimpleNamespace

from credit_batch import access, catalog
from credit_batch.access import create_api_key, revoke_api_key
from credit_batch.checks import check_model_name
from credit_batch.config import Settings
from credit_batch.errors import (
    CreditBatchError,
    DataError,
    ModelError,
    ModelNotFoundError,
    NoChampionError,
    ParameterError,
    ServiceUnavailableError,
)
from credit_batch.steps import online

__all__ = [
    "CACHE_SECONDS",
    "MAX_BODY_BYTES",
    "create_api_key",
    "create_app",
    "revoke_api_key",
    "score_now",
]

logger = logging.getLogger(__name__)

#: The largest request body taken (one applicant's features are well under 2 KiB).
MAX_BODY_BYTES = 16_384


#: Seconds between two reads of what the service keeps in memory (the champion,
#: the API keys' statuses, the newest load): a promotion, a revocation or a load
#: takes effect within them. No request waits for those reads.
CACHE_SECONDS = 5.0


_STOPPING, _THREADS = threading.Event(), []


@atexit.register
def _stop_refreshing() -> None:
    """End the refresh threads before the interpreter does (not inside a database call)."""
    _STOPPING.set()
    for thread in _THREADS:
        thread.join(timeout=30)


class _Kept:
    """The value of ``read()``, read again every :data:`CACHE_SECONDS` by a daemon thread.

    Only the first :meth:`get` waits for the store. After that a request takes
    the kept value and a thread re-reads it in the background: a request that
    waited for a refresh (a database connection, a query, a model load) was
    the whole tail of the online route's latency. A failed re-read keeps the
    old value and logs; ``read`` gets the kept value to return it unchanged
    when nothing changed. ``stamp()`` tells cheaply whether the store may
    have changed (:func:`credit_batch.stores.db.change_stamp`): while it
    stays the same, nothing is read.
    """

    def __init__(self, read, *, name: str, stamp=lambda: None) -> None:
        self._read, self._name, self._lock = read, name, threading.Lock()
        self._stamp, self._seen = stamp, None
        self._value, self._at, self._thread = None, 0.0, None

    def get(self):
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._seen = self._stamp()
                    self._set(self._read(None))
                    self._thread = threading.Thread(  # holds no reference to the app
                        target=_refresh_loop,
                        args=(weakref.ref(self),),
                        name=f"credit-batch-{self._name}",
                        daemon=True,
                    )
                    self._thread.start()
                    _THREADS[:] = [t for t in _THREADS if t.is_alive()] + [self._thread]
        return self._value

    def refresh(self, *, older_than: float = 0.0):
        """Read now (where the kept value is older than ``older_than`` seconds)."""
        with self._lock:
            if time.monotonic() - self._at >= older_than:
                self._set(self._read(self._value))
        return self._value

    def _set(self, value) -> None:
        self._value, self._at = value, time.monotonic()

    def tick(self) -> None:
        """Read again if the store may have changed since the last read."""
        stamp = self._stamp()  # before the read: a commit during it is seen next time
        if stamp is None or stamp != self._seen:
            self.refresh()
            self._seen = stamp


def _refresh_loop(ref) -> None:
    """Every :data:`CACHE_SECONDS`, :meth:`_Kept.tick` while the app that keeps it lives.

    A failure (the store is away) is logged once until a read works again; the
    requests meanwhile answer from the kept value.
    """
    failing = False
    while not _STOPPING.wait(CACHE_SECONDS):
        kept = ref()
        if kept is None:
            return  # the app is gone
        try:
            kept.tick()
            failing = False
        except Exception:
            if not failing:
                logger.warning("could not refresh the service's %s", kept._name, exc_info=True)
            failing = True
        del kept


@functools.cache
def _models() -> SimpleNamespace:
    """The response bodies, as pydantic models (the OpenAPI document's schemas)."""
    import datetime as dt
    from typing import Any

    from pydantic import BaseModel, ConfigDict

    class Score(BaseModel):
        """A model's champion's score of a customer at a snapshot, with its three reasons."""

        model_config = ConfigDict(protected_namespaces=())
        model_name: str | None = None
        customer_id: int | str
        snapshot_date: dt.date
        model_version: str
        run_id: str
        score: float
        risk_band: str
        points: float | None
        reason_1: str | None
        reason_1_text: str | None
        reason_1_value: float | None
        reason_2: str | None
        reason_2_text: str | None
        reason_2_value: float | None
        reason_3: str | None
        reason_3_text: str | None
        reason_3_value: float | None

    class StoredScore(BaseModel):
        """One stored score of a customer, by any model, with the model's role now."""

        snapshot_date: dt.date
        model_version: str
        role: str | None
        run_id: str
        score: float
        risk_band: str
        points: float | None
        reason_1: str | None
        reason_2: str | None
        reason_3: str | None

    class Reason(BaseModel):
        feature: str
        text: str | None
        value: float

    class OnlineScore(BaseModel):
        """An applicant's score by the champion, with the batch's rules and reasons."""

        score: float
        risk_band: str
        points: float
        reasons: list[Reason]
        model_version: str

    class CustomerScore(OnlineScore):
        """A customer's score now, from the stored batch features of ``feature_set`` as of
        ``features_snapshot_date`` (``overridden``: the features the request gave)."""

        customer_id: int | str
        feature_set: str
        features_snapshot_date: dt.date
        overridden: list[str]

    class NoticeReason(BaseModel):
        feature: str
        reason_text: str
        contribution: float
        value: float | None  # a number's value scored (None: missing, or categorical)
        category: str | None  # a categorical feature's level

    class AdverseAction(BaseModel):
        """A decline's principal reasons (at most four, the principal first), for its notice."""

        model_config = ConfigDict(protected_namespaces=())
        snapshot_date: dt.date
        model_name: str | None
        segment: str | None
        model_version: str
        customer_id: int | str
        score: float
        cutoff: float
        reasons: list[NoticeReason]

    class Problem(BaseModel):
        """What was wrong: ``detail``, and for a broken field its name, rule and value."""

        model_config = ConfigDict(extra="allow")
        detail: str | list[Any]

    class Health(BaseModel):
        status: str
        champion: str | None = None
        reason: str | None = None

    return SimpleNamespace(
        **{
            m.__name__: m
            for m in (Score, StoredScore, OnlineScore, CustomerScore, AdverseAction)
            + (Problem, Health)
        }
    )


def _problems(*statuses: int) -> dict:
    """The ``responses`` of a route: each status answered with a :class:`Problem`."""
    return {status: {"model": _models().Problem} for status in statuses}


def _stamp(settings: Settings):
    return catalog.change_stamp(settings)


class _Champion:
    """Every model's champions, loaded once per version and sha256 (verified on load)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._kept = _Kept(self._read, name="champion", stamp=_stamp(settings))

    def get(self, model_name: str | None = None, *, fields: object = None):
        """``(record, model)`` of ``model_name``'s champion (of a segmented model: of the
        segment ``fields`` fall in, else the pooled one); none named: of the only model."""
        units = self.units(model_name)
        if not isinstance(fields, dict):
            return units[0]
        return online.champion_for(units, fields, model_name=units[0][0].model_name)

    def units(self, model_name: str | None = None) -> list:
        """``[(record, model), ...]``: the champions of ``model_name`` (a segmented model's
        pooled one first), or of the only model with one; NoChampionError where none has,
        ParameterError naming the models where several have and none is named."""
        units = catalog.champions_of(self._kept.get(), model_name)
        if units:
            return units
        if model_name is not None:
            raise NoChampionError(f"no champion of model {model_name!r}", model_name=model_name)
        catalog.require_champion(self._settings)  # raises, saying what to run
        raise NoChampionError("no champion", model_name=None)  # (not reached)

    def versions(self) -> str:
        """Each model's (pooled) champion's version, comma-separated (readiness, metrics)."""
        return ",".join(units[0][0].model_version for units in self._kept.get().values())

    def _read(self, loaded):
        return catalog.champion_models(self._settings, loaded)


class _Versions:
    """Named versions asked for by online prediction, loaded once per version and sha256."""

    KEEP = 8  # the versions kept loaded at most (the least recently asked for goes first)

    def __init__(self, settings: Settings) -> None:
        import collections

        self._settings, self._lock = settings, threading.Lock()
        self._loaded: collections.OrderedDict = collections.OrderedDict()

    def get(self, model_name: str, version: str) -> tuple:
        """``(record, model)`` of ``version``, which must be one of ``model_name``'s."""
        record = catalog.version_record(self._settings, version, model_name=model_name)
        with self._lock:
            found = self._loaded.get(version)
            if found is None or found[0].sha256 != record.sha256:
                found = (record, catalog.loaded_model(self._settings, record))
            self._loaded[version] = found
            self._loaded.move_to_end(version)
            while len(self._loaded) > self.KEEP:
                self._loaded.popitem(last=False)
        return found


class _OnlineFeatures:
    """The online store's rows: in Redis or on PostgreSQL one lookup per request; on DuckDB
    an in-memory index, rebuilt (as :class:`_ScoreIndex`) when the store changed."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._postgres = settings.results_url.startswith("postgresql") or bool(settings.online_url)
        self._kept = _Kept(self._read, name="online store", stamp=_stamp(settings))

    def of(self, spec, customer_id) -> dict | None:
        """The customer's newest stored features of ``spec``'s feature set, or None."""
        if self._postgres:
            return catalog.stored_features(self._settings, spec, customer_id)
        return catalog.indexed_features(self._kept.get(), spec, customer_id)

    def warm(self) -> None:
        if not self._postgres:
            self._kept.get()

    def _read(self, kept):
        return catalog.online_index(self._settings, kept)


def score_now(
    settings: Settings, customer_id, *, model_name=None, version=None, overrides=None
) -> dict:
    """Score a customer now from their newest stored batch features (the online store)
    with ``model_name``'s champion (of the customer's segment), or ``version``, reading
    the registry now; see :func:`credit_batch.steps.online.score_customer` (the CLI's
    ``score-now``). DataError where the online store holds no features of the customer."""
    if version is not None:
        units = [(catalog.version_record(settings, version, model_name=model_name), None)]
    else:
        units = catalog.champion_records(settings, model_name)
    spec = units[0][0].feature_spec
    key = catalog.customer_key(customer_id, string=spec.key_type == "string")
    stored = catalog.stored_features(settings, spec, key)
    if stored is None:
        raise catalog.no_features_error(customer_id, spec)
    name = units[0][0].model_name
    record, _ = online.champion_for(units, stored["features"], model_name=name)
    model = catalog.loaded_model(settings, record)
    return online.score_customer(settings, model, record, key, stored, overrides=overrides)


class _ScoreIndex:
    """DuckDB: every champion score held in memory, sorted by customer and snapshot.

    DuckDB's ``predictions`` has no index (it would make the nightly load 13x
    slower), so a lookup there scans the table. The service instead reads the
    champion's scores once per committed load (through one read-only
    connection: a consistent snapshot) and answers from memory with two
    binary searches. Every :data:`CACHE_SECONDS` a background thread's short
    read checks whether a load committed or a model was promoted since, and
    builds the new index while requests answer from the old one; the new one
    replaces it whole, so a lookup gets the old slice or the new, never half. PostgreSQL needs none
    of this: its ``predictions_customer_idx`` answers each lookup.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._kept = _Kept(self._read, name="score index", stamp=_stamp(settings))

    def lookup(self, customer_id: str, as_of, *, model_name: str | None = None) -> dict | None:
        """The newest score of ``model_name``'s champion (none named: of the only model
        that scored the customer; several: refused, naming them)."""
        return catalog.only_model(self.lookups(customer_id, as_of, model_name=model_name))

    def lookups(self, customer_id: str, as_of, *, model_name: str | None = None) -> list[dict]:
        """Each model's champion's newest score of the customer (or ``model_name``'s)."""
        index = self._current()
        if index is None:
            return catalog.lookups(self._settings, customer_id, as_of=as_of, model_name=model_name)
        name = None if model_name is None else check_model_name(model_name)
        keys = {model: _key_of(customer_id, part) for model, part in index["models"].items()}
        if keys and not any(key is not None for key in keys.values()):
            catalog.customer_key(customer_id, string=False)  # refused, as the catalog would
        date, found = catalog.as_of_date(as_of), []
        for model, part in index["models"].items():
            if (name is None or model == name) and keys[model] is not None:
                row = _newest(part, keys[model], date)
                found += [] if row is None else [{**row, "model_name": model}]
        for row in found:
            for i in (1, 2, 3):
                row[f"reason_{i}_text"] = index["texts"].get(row[f"reason_{i}"])
        return found

    def warm(self) -> None:
        """Build the index now (readiness), rather than on the first lookup."""
        self._current()

    def _current(self):
        return self._kept.get()

    def _read(self, index):
        if self._settings.results_url.startswith("postgresql"):
            return None
        found = catalog.rows(self._settings, "serve/last_load.sql")  # none: a fresh home
        if not found:
            return None
        version = found[0]
        if index is not None and index["version"] == version:
            return index
        return self._build(version)

    def _build(self, version: dict) -> dict:

        tables, texts = catalog.champion_scores(self._settings)
        models = {}
        for table in tables:
            models.update(_model_parts(table))
        logger.info("score index: %d champion scores", sum(t.num_rows for t in tables))
        return {"version": version, "models": models, "texts": texts}


def _model_parts(table) -> dict:
    """Each model's scores in ``table`` (one key type), sorted by customer and snapshot."""
    import pyarrow as pa
    import pyarrow.compute as pc

    order = pc.sort_indices(table, [("customer_id", "ascending"), ("snapshot_date", "ascending")])
    table = table.take(order)
    string = pa.types.is_string(table.schema.field("customer_id").type)
    names, models = table.column("model_name"), {}
    for model in sorted(pc.unique(names).to_pylist()):
        part = table.filter(pc.equal(names, model)).drop_columns(["model_name"])
        models[model] = {
            "table": part,
            "string": string,
            "keys": part.column("customer_id").to_numpy(zero_copy_only=False),
            "dates": part.column("snapshot_date").to_numpy(zero_copy_only=False).astype("M8[D]"),
        }
    return models


def _key_of(customer_id, part: dict):
    """``customer_id`` as the key type of one model's index; None where it cannot be one."""
    try:
        return catalog.customer_key(customer_id, string=part["string"])
    except ParameterError:
        return None


def _newest(part: dict, key, as_of) -> dict | None:
    """The row of ``key``'s newest snapshot at or before ``as_of`` in one model's index."""
    import numpy as np

    date = np.datetime64(as_of, "D")
    lo = int(np.searchsorted(part["keys"], key, side="left"))
    hi = int(np.searchsorted(part["keys"], key, side="right"))
    at = lo + int(np.searchsorted(part["dates"][lo:hi], date, side="right")) - 1
    return None if at < lo else part["table"].slice(at, 1).to_pylist()[0]


def create_app(settings: Settings | None = None):
    """The FastAPI application over ``settings`` (default: from the environment).

    On start (each uvicorn worker runs it) the app loads the champion, the
    API keys and the score index, so no first request pays for them.
    """
    from contextlib import asynccontextmanager

    from fastapi import FastAPI

    settings = settings or Settings.from_env()
    metrics, champion = _Metrics(), _Champion(settings)
    index, statuses = _ScoreIndex(settings), _key_statuses(settings)
    online_features = _OnlineFeatures(settings)

    @asynccontextmanager
    async def warm(app):
        try:
            statuses.get()
            index.warm()
            online_features.warm()
            champion.get()  # the only champion, or the reason there is none (readiness)
            metrics.champion = champion.versions()
        except CreditBatchError as exc:  # /readyz says so, and says why
            logger.warning("the service is not ready yet: %s", exc)
        gc.collect()
        gc.freeze()  # the loaded model and libraries: no full collection scans them again
        yield

    app = FastAPI(
        title="credit-batch",
        summary="Stored credit-risk scores, and online scoring of applicants",
        version="1",
        lifespan=warm,
    )
    _errors(app, metrics)
    _middleware(app, metrics)
    _health_routes(app, settings, champion, index, metrics)
    _score_routes(app, settings, champion, index, statuses)
    _online_routes(app, settings, champion, online_features, statuses)
    _applicant_body(app, champion)
    return app


def _unknown_query(app, request) -> list[str]:
    """The query parameters of ``request`` its route does not declare (a typo such as
    ``?asof=`` would otherwise be ignored, and answer for another date)."""
    from fastapi.dependencies.utils import get_flat_dependant
    from starlette.routing import Match

    for route in app.routes:
        if route.matches(request.scope)[0] is Match.FULL:
            dependant = getattr(route, "dependant", None)
            if dependant is None:
                return []
            allowed = {p.alias for p in get_flat_dependant(dependant).query_params}
            return sorted(set(request.query_params) - allowed)
    return []


def _key_statuses(settings: Settings) -> _Kept:
    return _Kept(lambda _: access.key_statuses(settings), name="API keys", stamp=_stamp(settings))


def _authorized(kept: _Kept):
    """A FastAPI dependency: the request's bearer key must be known and not revoked.

    The keys' statuses are kept in memory (:class:`_Kept`); a key not among
    them reads them again at once (at most once a second), so a key made a
    moment ago works on its first request.
    """
    from typing import Annotated

    from fastapi import Depends, HTTPException
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

    bearer = HTTPBearer(auto_error=False, description="an API key: credit-batch api-key create")
    challenge = {"WWW-Authenticate": "Bearer"}

    def check(given: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> str:
        if given is None or not given.credentials:
            raise HTTPException(
                401,
                "an API key is needed: Authorization: Bearer KEY"
                " (`credit-batch api-key create --name NAME` makes one)",
                challenge,
            )
        key = given.credentials.strip()
        status = access.key_status(key, kept.get())
        if status == "unknown":
            status = access.key_status(key, kept.refresh(older_than=1.0))
        if status == "unknown":
            raise HTTPException(
                401,
                "unknown API key (`credit-batch api-key create --name NAME` makes one)",
                challenge,
            )
        if status == "revoked":
            raise HTTPException(403, "this API key is revoked")
        return key

    return check


def _score_routes(app, settings: Settings, champion: _Champion, index, statuses) -> None:
    from typing import Annotated, Any

    from fastapi import Body, Depends, HTTPException, Path, Query

    auth, models = [Depends(_authorized(statuses))], _models()
    customer = Path(min_length=1, max_length=catalog.MAX_CUSTOMER_ID_LENGTH)
    as_of_query = Query(description="the newest score at or before, YYYY-MM-DD")
    problems = _problems(400, 401, 403, 404, 413, 422, 503)  # 400, 413: a body's length
    lookup = {"dependencies": auth, "tags": ["lookups"], "responses": problems}

    @app.get("/v1/customers/{customer_id}/score", response_model=models.Score, **lookup)
    def score(
        customer_id: Annotated[str, customer], as_of: Annotated[str | None, as_of_query] = None
    ):
        """The champion's newest score of a customer (at or before ``as_of``) and its reasons:
        of the only model that scored the customer (where several did: 422, naming them)."""
        found = index.lookup(customer_id, as_of)
        if found is None:
            raise HTTPException(404, f"no score of customer {customer_id}")
        return found

    @app.get("/v1/customers/{customer_id}/scores", response_model=list[models.Score], **lookup)
    def scores(
        customer_id: Annotated[str, customer], as_of: Annotated[str | None, as_of_query] = None
    ):
        """Each model's champion's newest score of a customer, by model name."""
        found = index.lookups(customer_id, as_of)
        if not found:
            raise HTTPException(404, f"no score of customer {customer_id}")
        return found

    @app.get(
        "/v1/models/{model_name}/customers/{customer_id}/score",
        response_model=models.Score,
        **lookup,
    )
    def model_score(
        model_name: Annotated[str, Path(min_length=1, max_length=64)],
        customer_id: Annotated[str, customer],
        as_of: Annotated[str | None, as_of_query] = None,
    ):
        """One model's champion's newest score of a customer (at or before ``as_of``)."""
        found = index.lookup(customer_id, as_of, model_name=model_name)
        if found is None:
            raise HTTPException(404, f"no score of customer {customer_id} by model {model_name}")
        return found

    @app.get(
        "/v1/customers/{customer_id}/history", response_model=list[models.StoredScore], **lookup
    )
    def history(customer_id: Annotated[str, customer]):
        """Every stored score of a customer, newest first, with each model's role."""
        found = catalog.history(settings, customer_id)
        if not found:
            raise HTTPException(404, f"no score of customer {customer_id}")
        return found

    @app.get(
        "/v1/models/{model_name}/customers/{customer_id}/adverse-action",
        response_model=models.AdverseAction,
        **lookup,
    )
    def adverse_action(
        model_name: Annotated[str, Path(min_length=1, max_length=64)],
        customer_id: Annotated[str, customer],
        date: Annotated[str, Query(description="the snapshot, YYYY-MM-DD")],
        model_version: Annotated[str | None, Query(description="default: the champion's")] = None,
    ):
        """Why the model declined a customer at a snapshot: its principal reasons, from
        the version that decided (or ``model_version``); 404 where it did not decline."""
        found = catalog.notices(
            catalog.adverse_action(
                settings,
                date,
                model_name=model_name,
                model_version=model_version,
                customer_id=customer_id,
            )
        )
        if not found:
            what = f"no decline of customer {customer_id} by {model_name} on {date}"
            raise HTTPException(404, what)
        return found[0]

    @app.post(
        "/v1/score",
        dependencies=auth,
        tags=["online"],
        response_model=models.OnlineScore,
        responses=_problems(400, 401, 403, 413, 422, 503),
    )
    def score_applicant(features: Annotated[dict[str, Any], Body()]):
        """Score one applicant with the champion: the spec's features, null where unknown
        (where several models have champions: 422, naming them)."""
        record, model = champion.get(fields=features)
        return online.score_applicant(settings, model, record, features)

    @app.post(
        "/v1/models/{model_name}/score",
        dependencies=auth,
        tags=["online"],
        response_model=models.OnlineScore,
        responses=_problems(400, 401, 403, 404, 413, 422, 503),
    )
    def score_applicant_by(
        model_name: Annotated[str, Path(min_length=1, max_length=64)],
        features: Annotated[dict[str, Any], Body()],
    ):
        """Score one applicant with one model's champion (its spec's features)."""
        try:
            record, model = champion.get(model_name, fields=features)
        except NoChampionError as exc:
            raise HTTPException(404, str(exc)) from None
        return online.score_applicant(settings, model, record, features)


def _online_routes(app, settings: Settings, champion: _Champion, stored, statuses) -> None:
    from typing import Annotated, Any

    from fastapi import Body, Depends, HTTPException, Path, Query

    versions = _Versions(settings)
    model_path = Path(min_length=1, max_length=64)
    customer = Path(min_length=1, max_length=catalog.MAX_CUSTOMER_ID_LENGTH)
    version_query = Query(description="a version of the model (default: its champion)")

    @app.post(
        "/v1/models/{model_name}/customers/{customer_id}/score",
        dependencies=[Depends(_authorized(statuses))],
        tags=["online"],
        response_model=_models().CustomerScore,
        responses=_problems(400, 401, 403, 404, 413, 422, 503),
    )
    def score_customer(
        model_name: Annotated[str, model_path],
        customer_id: Annotated[str, customer],
        version: Annotated[str | None, version_query] = None,
        overrides: Annotated[dict[str, Any] | None, Body()] = None,
    ):
        """Score a customer now from their newest stored batch features (the online store),
        with the model's champion of their segment (or ``version``); the body may give the
        spec's request-time features. The answer names the features' snapshot."""
        try:
            units = [versions.get(model_name, version)] if version else champion.units(model_name)
        except (NoChampionError, ModelNotFoundError) as exc:
            raise HTTPException(404, str(exc)) from None
        spec = units[0][0].feature_spec
        key = catalog.customer_key(customer_id, string=spec.key_type == "string")
        found = stored.of(spec, key)
        if found is None:
            raise HTTPException(404, str(catalog.no_features_error(customer_id, spec)))
        try:
            record, model = online.champion_for(units, found["features"], model_name=model_name)
        except NoChampionError as exc:
            raise HTTPException(404, str(exc)) from None
        return online.score_customer(settings, model, record, key, found, overrides=overrides)


def _applicant_body(app, champion: _Champion) -> None:
    """The OpenAPI document's applicant body: the current champion's features and rules."""
    import copy

    plain = app.openapi

    def openapi() -> dict:
        document = copy.deepcopy(plain())
        try:
            record, _ = champion.get()
        except CreditBatchError:  # no champion yet: any object (and a 503 on scoring)
            return document
        body = document["paths"]["/v1/score"]["post"]["requestBody"]["content"]
        body["application/json"]["schema"] = online.applicant_schema(record.feature_spec)
        return document

    app.openapi = openapi


def _health_routes(app, settings: Settings, champion: _Champion, index, metrics) -> None:
    from fastapi.responses import JSONResponse, PlainTextResponse

    health = _models().Health

    @app.get("/healthz", tags=["health"], response_model=health, response_model_exclude_none=True)
    def healthz():
        """Alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], response_model=health, responses={503: {"model": health}})
    def readyz():
        """Ready: the results are reachable, the champion is loaded and verified, and (on
        DuckDB) the score index is built."""
        try:
            index.warm()
            versions = champion.versions()
            if not versions:
                champion.get()  # raises: no champion yet, and what to run
        except CreditBatchError as exc:
            return JSONResponse({"status": "not ready", "reason": str(exc)}, status_code=503)
        metrics.champion = versions
        return {"status": "ready", "champion": versions}

    @app.get("/metrics", tags=["health"], response_class=PlainTextResponse)
    def prometheus():
        """Requests, latency and the champion's version, in Prometheus' text format."""
        return PlainTextResponse(metrics.render(), media_type=metrics.content_type)


def _middleware(app, metrics) -> None:
    from fastapi.responses import JSONResponse

    @app.middleware("http")
    async def measure_and_limit(request, call_next):
        t0 = time.perf_counter()
        length = request.headers.get("content-length", "0")
        if not length.isascii() or not length.isdigit():  # not a length: a bad request
            detail = f"content-length must be a number of bytes; got {length[:40]!r}"
            response = JSONResponse({"detail": detail}, status_code=400)
        elif int(length) > MAX_BODY_BYTES or len(await request.body()) > MAX_BODY_BYTES:
            detail = f"request body must be at most {MAX_BODY_BYTES} bytes"  # chunked: no length
            response = JSONResponse({"detail": detail}, status_code=413)
        elif unknown := _unknown_query(app, request):
            detail = f"query parameter {unknown[0]!r} is not one this route takes"
            response = JSONResponse({"detail": detail, "name": unknown[0]}, status_code=422)
        else:
            response = await call_next(request)
        route = request.scope.get("route")
        metrics.observe(getattr(route, "path", "unmatched"), response.status_code, t0)
        return response


def _errors(app, metrics) -> None:
    """Bad input is a 4xx naming what was wrong; a store that cannot answer now, a 503."""
    from fastapi.responses import JSONResponse

    def answer(status: int, exc: CreditBatchError, **headers):
        context = {k: str(v) for k, v in vars(exc).items() if k != "message"}
        return JSONResponse({"detail": str(exc), **context}, status_code=status, headers=headers)

    @app.exception_handler(ParameterError)
    async def bad_parameter(request, exc):
        return answer(422, exc)

    @app.exception_handler(DataError)
    async def bad_data(request, exc):
        return answer(422, exc)

    @app.exception_handler(ModelError)
    async def no_model(request, exc):
        return answer(503, exc)

    @app.exception_handler(ServiceUnavailableError)
    async def unavailable(request, exc):
        return answer(503, exc, **{"Retry-After": "5"})


class _Metrics:
    """Prometheus metrics of this app (a registry of its own: two apps never share one)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
        from prometheus_client.exposition import CONTENT_TYPE_LATEST

        self.registry, self.content_type = CollectorRegistry(), CONTENT_TYPE_LATEST
        self.requests = Counter(
            "credit_batch_requests", "HTTP requests", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "credit_batch_request_seconds",
            "HTTP request latency",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )
        self.info = Gauge(
            "credit_batch_champion", "The champion model (1)", ["version"], registry=self.registry
        )
        self.champion: str | None = None

    def observe(self, route: str, status: int, t0: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(time.perf_counter() - t0)

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        if self.champion:
            self.info.clear()
            self.info.labels(self.champion).set(1)
        return generate_latest(self.registry)
