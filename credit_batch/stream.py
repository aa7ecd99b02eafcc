"""Streaming prediction: events scored as they arrive, joined to the customer's batch features.

``credit-batch stream-score`` runs :func:`consume`: it reads events from a
Redis stream in a consumer group (:class:`credit_batch.stores.streams.RedisStreams`),
in micro-batches (up to ``batch_size`` events, or what arrived within
``block_ms``). Each event is ``{"event_id", "customer_id", "at", "features"}``:
``features`` holds values of the spec's request-time features (the amount
asked for), which replace the stored ones. Each event is joined to the
customer's newest batch features in the online store and scored by the
model's champion (of the customer's segment) through the same function as
the night and the online routes, so the three give one score to the bit.

Per micro-batch, in this order: the scores are inserted into
``stream_predictions`` keyed by event id (one transaction; a redelivered
event inserts nothing), published to the output stream, the bad events
dead-lettered with their reason (``column: rule``, as the quarantine), and
only then every entry acknowledged. A consumer that dies before its ``XACK``
leaves its entries pending; another claims them after ``claim_idle_ms``. So
delivery is at least once, the table holds each event once, and the output
stream may carry an event twice, with the same event id and score.

Where the champion's spec has streaming features (``Feature.stream``), each
event also carries its ``kind`` and its ``values`` (a JSON object of the event's
fields: ``{"amount": 120.5}``) and must carry ``at`` (event time). The
micro-batch's events go, in stream order, to the customers' windows in Redis
(:class:`credit_batch.stores.stream_state.RedisWindows`); an event older than its
customer's newest by more than the spec's grace is dead-lettered as late. The
events of a trigger kind (``events.triggers``; every kind where none is named)
are then scored with the streaming features as of their own time; the others
only update the windows (counted as ``updated``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import threading
import time

from credit_batch import catalog
from credit_batch.checks import utcnow
from credit_batch.config import Settings
from credit_batch.errors import CreditBatchError, NoChampionError, ParameterError
from credit_batch.faults import fault_point
from credit_batch.steps import online
from credit_batch.stores import online_store, results
from credit_batch.stores.db import read_sql
from credit_batch.windows import MICROS, micros

__all__ = [
    "CHAMPION_SECONDS",
    "StreamMetrics",
    "consume",
    "open_transport",
    "process",
    "run_demo",
    "warm",
]

logger = logging.getLogger(__name__)

#: Seconds between two reads of the champion: a promotion is scored within them.
CHAMPION_SECONDS = 5.0
_EVENT_FIELDS = {"event_id", "customer_id", "at", "features", "kind", "values"}


def open_transport(url: str, stream: str, *, group: str, consumer: str):
    """The Redis Streams transport of ``stream`` for ``consumer`` of ``group``
    (:class:`credit_batch.stores.streams.RedisStreams`)."""
    from credit_batch.stores.streams import RedisStreams

    return RedisStreams(url, stream, group=group, consumer=consumer)


def consume(
    settings: Settings,
    transport,
    *,
    model_name: str | None = None,
    batch_size: int = 500,
    block_ms: int = 200,
    claim_idle_ms: int = 30_000,
    max_events: int | None = None,
    idle_seconds: float | None = None,
    stop: threading.Event | None = None,
    state_url: str | None = None,
    metrics: StreamMetrics | None = None,
) -> dict:
    """Score the events of ``transport`` until ``stop`` is set, ``max_events`` are done or
    nothing arrived for ``idle_seconds``; return the counts (``events``, ``scored``,
    ``updated``, ``dead``, ``batches``). ``state_url`` is the Redis of the streaming
    features' windows (default: the transport's); ``metrics`` counts into a
    :class:`StreamMetrics`."""
    if batch_size < 1 or block_ms < 1 or claim_idle_ms < 1:
        raise ParameterError("batch size", batch_size, "must be positive, as the waits")
    counts = {"events": 0, "scored": 0, "updated": 0, "dead": 0, "batches": 0}
    champions, quiet_since = _Champions(settings, model_name), time.monotonic()
    windows = _Windows(state_url or transport.url, f"{transport.stream}:windows")
    held = _held_results(settings)
    try:
        while not (stop is not None and stop.is_set()):
            units, entries = champions.ready(), []
            if units is not None:  # no champion yet: read nothing
                entries = transport.claim(batch_size, min_idle_ms=claim_idle_ms)
                entries = entries or transport.read(batch_size, block_ms=block_ms)
            if not entries:
                if idle_seconds is not None and time.monotonic() - quiet_since > idle_seconds:
                    break
                if units is None:
                    time.sleep(min(1.0, block_ms / 1000))
                continue
            began = time.monotonic()
            spec = units[0][0].feature_spec
            done = process(settings, transport, entries, units, windows.of(spec), results_db=held)
            if metrics is not None:
                metrics.observe(done, time.monotonic() - began, units, transport)
            _add(counts, done)
            quiet_since = time.monotonic()
            if max_events is not None and counts["events"] >= max_events:
                break
    finally:
        windows.close()
        if held is not None:
            held.close()
    logger.info("stream consumer %s: %s", getattr(transport, "consumer", "?"), counts)
    return counts


def _add(counts: dict, done: dict) -> None:
    for name in counts:
        counts[name] += done.get(name, 1 if name == "batches" else 0)


def _held_results(settings: Settings):
    """A writer connection to PostgreSQL results held for the consumer's life (its schema
    applied once), or None: a DuckDB file is opened per micro-batch, so the night's load
    (another process) can take it between two."""
    if not settings.results_url.startswith("postgresql"):
        return None
    return results.open_results(settings)


def warm(settings: Settings, url: str, stream: str, *, until: dt.datetime, model_name=None) -> dict:
    """Fill the online windows of ``stream``'s consumers from the warehouse's event history
    up to ``until`` (the events of the champion spec's longest window and grace before it),
    so the first live events are scored with the history training saw. Idempotent: an
    event already kept is not added twice. Return ``{"events", "customers"}``."""
    from credit_batch.stores import warehouse
    from credit_batch.stores.stream_state import RedisWindows
    from credit_batch.windows import history_sql

    spec = _Champions(settings, model_name).get()[0][0].feature_spec
    if not spec.streaming:
        raise ParameterError("model", spec.name, "has no streaming feature to warm")
    windows = RedisWindows(url, f"{stream}:windows", spec)
    since = until - dt.timedelta(seconds=windows.keep)
    params, n, customers = {"since": since, "until": until}, 0, set()
    try:
        with warehouse.open_warehouse(settings) as wh:
            sql, schema = history_sql(spec), _history_schema(spec)
            for batch in wh.stream_arrow(sql, params, schema=schema, batch_rows=50_000):
                rows = batch.to_pylist()
                windows.add([_kept(r, spec) for r in rows])
                n += len(rows)
                customers.update(r["customer_id"] for r in rows)
    finally:
        windows.close()
    logger.info("warmed %s:windows with %d events of %d customers", stream, n, len(customers))
    return {"events": n, "customers": len(customers)}


def run_demo(settings: Settings, url: str, *, rate: float, seconds: float) -> dict:
    """The streaming demo's live part: warm the windows to the newest night, send
    synthetic payment and card events of 20 customers at ``rate`` per second for
    ``seconds`` (:func:`credit_batch.demo_stream.produce`), score them as they come;
    return the counts and each customer's night score and newest streamed score."""
    import hashlib

    from credit_batch.demo_stream import produce

    # the demo's own stream, one per home: never another home's (nor a test's)
    key = "credit-batch-demo-" + hashlib.sha256(str(settings.home).encode()).hexdigest()[:10]
    newest = _newest_night(settings)
    transport = open_transport(url, key, group="credit-batch", consumer="demo")
    transport.reset()
    warm(settings, url, key, until=newest["at"])
    customers = [row["customer_id"] for row in newest["rows"]]
    options = {"rate": rate, "seconds": seconds, "start": newest["at"]}
    sender = threading.Thread(target=produce, args=(url, key, customers), kwargs=options)
    sender.start()
    try:
        counts = consume(settings, transport, idle_seconds=2.0, block_ms=100)
    finally:
        sender.join()
        transport.close()
    moved = _moved(settings, newest["rows"])
    return {"counts": counts, "customers": moved}


def _newest_night(settings: Settings) -> dict:
    """The newest scored snapshot's instant and its first 20 customers' scores."""
    rows = catalog.rows(settings, "serve/newest_scores.sql")
    if not rows:
        raise NoChampionError("no scored night to stream after: run the nightly scoring first")
    return {"at": dt.datetime.combine(rows[0]["snapshot_date"], dt.time()), "rows": rows}


def _moved(settings: Settings, night: list[dict]) -> list[dict]:
    """Each customer's night score, newest streamed score and events scored."""
    streamed = catalog.rows(settings, "serve/stream_scores_of_demo.sql")
    newest, counted = {}, {}
    for row in streamed:
        newest[row["customer_id"]] = row["score"]  # ordered by event time
        counted[row["customer_id"]] = counted.get(row["customer_id"], 0) + 1
    out = []
    for row in night:
        key = str(row["customer_id"])
        out.append({"customer_id": row["customer_id"], "night": row["score"],
                    "now": newest.get(key), "events": counted.get(key, 0)})  # fmt: skip
    return out


def _history_schema(spec):
    import pyarrow as pa

    fields = sorted({f.stream.field for f in spec.streaming if f.stream.field})
    columns = [("customer_id", spec.key_arrow), ("event_id", pa.string()),
               ("kind", pa.string()), ("at", pa.timestamp("us"))]  # fmt: skip
    return pa.schema(columns + [(name, pa.float64()) for name in fields])


def _kept(row: dict, spec) -> tuple:
    fields = {f.stream.field: row[f.stream.field] for f in spec.streaming if f.stream.field}
    fields = {name: value for name, value in fields.items() if value is not None}
    return str(row["customer_id"]), row["kind"], micros(row["at"]), row["event_id"], fields


class StreamMetrics:
    """The consumer's Prometheus metrics, in a registry of its own (``/metrics`` of
    ``credit-batch stream-score --metrics-port``): events by outcome, micro-batch
    latency, the group's lag and pending entries, the champion's version."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.events = Counter("credit_batch_stream_events", "Events read, by outcome",
                              ["outcome"], registry=self.registry)  # fmt: skip
        self.latency = Histogram(
            "credit_batch_stream_batch_seconds", "Micro-batch time, read to acknowledged",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5), registry=self.registry,
        )  # fmt: skip
        self.lag = Gauge("credit_batch_stream_lag", "Entries not yet read by the group",
                         registry=self.registry)  # fmt: skip
        self.pending = Gauge(
            "credit_batch_stream_pending", "Entries read, not acknowledged", registry=self.registry
        )
        self.model = Gauge("credit_batch_stream_model", "1 for the champion version scoring",
                           ["model_name", "model_version"], registry=self.registry)  # fmt: skip

    def observe(self, done: dict, seconds: float, units: list, transport) -> None:
        for outcome in ("scored", "updated", "dead"):
            self.events.labels(outcome).inc(done[outcome])
        self.latency.observe(seconds)
        backlog = transport.backlog()
        self.lag.set(backlog["lag"])
        self.pending.set(backlog["pending"])
        self.model.clear()
        for record, _ in units:
            self.model.labels(record.model_name, record.model_version).set(1)

    def serve(self, port: int, host: str = "127.0.0.1"):
        """Serve ``/metrics`` on ``host:port`` from a thread; return the server."""
        from prometheus_client import start_http_server

        server, _ = start_http_server(port, addr=host, registry=self.registry)
        return server


class _Windows:
    """The windows of the champion's spec (opened again when a promotion changes the spec)."""

    def __init__(self, url: str, prefix: str) -> None:
        self._url, self._prefix, self._open = url, prefix, None

    def of(self, spec):
        if not spec.streaming:
            return None
        if self._open is None or self._open.spec.digest != spec.digest:
            from credit_batch.stores.stream_state import RedisWindows

            self.close()
            self._open = RedisWindows(self._url, self._prefix, spec)
        return self._open

    def close(self) -> None:
        if self._open is not None:
            self._open.close()
            self._open = None


class _Champions:
    """The model's champions, loaded, read again every :data:`CHAMPION_SECONDS`."""

    def __init__(self, settings: Settings, model_name: str | None) -> None:
        self._settings, self._name = settings, model_name
        self._loaded, self._at, self._waiting = None, -CHAMPION_SECONDS, False

    def get(self) -> list:
        if time.monotonic() - self._at >= CHAMPION_SECONDS:
            known = catalog.champion_models(self._settings, self._loaded)
            self._loaded, self._at = known, time.monotonic()
        units = catalog.champions_of(self._loaded, self._name)
        if not units:
            which = f"model {self._name!r}" if self._name else "any model"
            raise NoChampionError(f"no champion of {which}", model_name=self._name)
        return units

    def ready(self) -> list | None:
        """:meth:`get`, or None while the model has no champion (nothing is read then:
        a consumer started before the first promotion waits for it)."""
        try:
            return self.get()
        except NoChampionError as exc:
            if not self._waiting:
                logger.warning("%s: waiting for a champion before reading events", exc)
            self._waiting = True
            return None


def process(
    settings: Settings, transport, entries: list, units: list, windows=None, *, results_db=None
) -> dict:
    """Score one micro-batch of ``entries`` with ``units`` (a model's ``(record, model)``
    champions) and ``windows`` (the streaming features' state, where the spec has any):
    store, publish, dead-letter, acknowledge; return the counts. ``results_db``: an open
    writer connection to the results (else one is opened for the batch)."""
    spec = units[0][0].feature_spec
    parsed, dead = [], []
    for entry in entries:
        try:
            parsed.append((entry, _event(entry, spec)))
        except CreditBatchError as exc:
            dead.append((entry, _reason(exc)))
    streamed = {}
    if spec.streaming:
        parsed, late, streamed = _windowed(windows, spec, parsed)
        dead += late
    triggered = [(e, event) for e, event in parsed if _triggers(spec, event)]
    keys = sorted({event["key"] for _, event in triggered}, key=str)
    features = online_store.features_of_many(settings, spec, keys, db=results_db)
    rows = _scored_rows(settings, _by_champion(triggered, units, features, dead), streamed, dead)
    stored = _insert(settings, rows, db=results_db) if rows else []
    fault_point("stream.after_write")  # committed, not yet acknowledged
    transport.publish(stored)
    order = {e.entry_id: i for i, e in enumerate(entries)}
    for entry, reason in sorted(dead, key=lambda d: order[d[0].entry_id]):
        transport.dead_letter(entry, reason)
    transport.ack([e.entry_id for e in entries])
    updated = len(parsed) - len(triggered)
    return {"events": len(entries), "scored": len(rows), "updated": updated, "dead": len(dead)}


def _scored_rows(settings: Settings, scoring: dict, streamed: dict, dead: list) -> list[dict]:
    """The ``stream_predictions`` rows of the events, scored in one batch per champion;
    an event whose features break a rule goes to ``dead`` with the rule."""
    rows = []
    for (record, model), items in scoring.values():
        asked = [
            {"customer_id": event["key"], "stored": stored, "overrides": event["features"],
             "streamed": streamed.get(entry.entry_id)}
            for entry, event, stored in items
        ]  # fmt: skip
        answers = online.score_customers(settings, model, record, asked)
        for (entry, event, _), one, answer in zip(items, asked, answers, strict=True):
            if isinstance(answer, CreditBatchError):
                dead.append((entry, _reason(answer)))
                continue
            taken = (event["features"] or {}) | (one["streamed"] or {})
            rows.append(_row(entry, event, record, answer, taken))
    return rows


def _triggers(spec, event: dict) -> bool:
    triggers = spec.events.triggers if spec.events is not None else ()
    return not triggers or event["kind"] in triggers


def _windowed(windows, spec, parsed: list) -> tuple[list, list, dict]:
    """Keep the events in their customers' windows, in stream order; return those kept,
    the late ones (dead letters) and the streaming features of each kept entry as of its
    event's time."""
    grace = spec.events.grace
    newest = windows.newest(sorted({str(event["key"]) for _, event in parsed}))
    kept, late = [], []
    for entry, event in parsed:
        customer, at = str(event["key"]), micros(event["at"])
        seen = newest.get(customer)
        if seen is not None and at < seen - grace * MICROS:
            reached = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=seen)
            rule = (f"is later than the grace of {grace} s "
                    f"(the customer's events reached {reached.isoformat()})")  # fmt: skip
            late.append((entry, _reason(ParameterError("at", entry.fields["at"], rule))))
            continue
        newest[customer] = max(at, seen if seen is not None else at)
        kept.append((entry, event, customer, at))
    windows.add([(c, ev["kind"], at, ev["event_id"], ev["values"]) for _, ev, c, at in kept])
    asked = [(e, c, at) for e, ev, c, at in kept if _triggers(spec, ev)]
    values = windows.values([(c, at) for _, c, at in asked])
    streamed = {e.entry_id: v for (e, _, _), v in zip(asked, values, strict=True)}
    return [(e, ev) for e, ev, _, _ in kept], late, streamed


def _key(value, spec):
    return catalog.customer_key(value, string=spec.key_type == "string")


def _by_champion(triggered: list, units: list, features: dict, dead: list) -> dict:
    """The triggered events with their stored features, by the champion that scores them
    (one per segment); an event without features or champion goes to ``dead``."""
    spec, name = units[0][0].feature_spec, units[0][0].model_name
    found: dict = {}
    for entry, event in triggered:
        stored = features.get(event["key"])
        try:
            if stored is None:
                rule = f"has no batch features in feature set {spec.feature_set}"
                raise ParameterError("customer_id", event["customer_id"], rule)
            unit = online.champion_for(units, stored["features"], model_name=name)
        except CreditBatchError as exc:
            dead.append((entry, _reason(exc)))
            continue
        found.setdefault(id(unit), (unit, []))[1].append((entry, event, stored))
    return found


def _event(entry, spec) -> dict:
    """The entry's fields as an event of ``spec``; ParameterError naming the first broken
    field (with streaming features, ``at`` and a known ``kind`` are required, and the
    ``values`` their sums read)."""
    fields = entry.fields
    unknown = sorted(set(fields) - _EVENT_FIELDS)
    if unknown:
        raise ParameterError(unknown[0], fields[unknown[0]], "is not a field of an event")
    for name in ("event_id", "customer_id", *(("at", "kind") if spec.streaming else ())):
        if not fields.get(name):
            raise ParameterError(name, fields.get(name), "is required")
    event = {
        "event_id": fields["event_id"],
        "customer_id": fields["customer_id"],
        "key": _key(fields["customer_id"], spec),
        "at": _when(fields.get("at")),
        "kind": fields.get("kind"),
        "features": _object("features", fields.get("features")),
        "values": _object("values", fields.get("values")) or {},
    }
    if spec.streaming:
        _check_kind(event, spec)
    return event


def _check_kind(event: dict, spec) -> None:
    """The event's kind is the spec's, and it holds a finite number for each sum of it."""
    kinds = {f.stream.kind for f in spec.streaming} | set(spec.events.triggers)
    if event["kind"] not in kinds:
        rule = f"is not an event kind of the spec ({', '.join(sorted(kinds))})"
        raise ParameterError("kind", event["kind"], rule)
    for feature in spec.streaming:
        window = feature.stream
        if window.kind == event["kind"] and window.field is not None:
            value = event["values"].get(window.field)
            if not _finite(value):
                rule = f"must be a finite number in the values of a {window.kind} event"
                raise ParameterError(window.field, value, rule)


def _finite(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _when(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ParameterError("at", text, "must be an ISO 8601 time") from None
    return at.astimezone(dt.UTC).replace(tzinfo=None) if at.tzinfo else at


def _object(name: str, text: str | None) -> dict | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise ParameterError(name, text, "must be a JSON object") from None
    if not isinstance(value, dict):
        raise ParameterError(name, text, "must be a JSON object")
    return value


def _row(entry, event: dict, record, answer: dict, taken: dict) -> dict:
    reasons = answer["reasons"] + [{"feature": None, "value": None}] * 3
    row = {
        "event_id": event["event_id"],
        "stream_entry": entry.entry_id,
        "model_name": record.model_name,
        "model_version": answer["model_version"],
        "customer_id": str(answer["customer_id"]),
        "event_at": event["at"],
        "features_snapshot_date": answer["features_snapshot_date"],
        "overridden": json.dumps(taken, sort_keys=True),
        "score": answer["score"],
        "risk_band": answer["risk_band"],
        "points": answer["points"],
    }
    for i, reason in enumerate(reasons[:3], start=1):
        row[f"reason_{i}"], row[f"reason_{i}_value"] = reason["feature"], reason["value"]
    row["scored_at"] = utcnow()
    return row


def _reason(exc: CreditBatchError) -> str:
    """A dead letter's reason in the quarantine's ``column: rule`` form."""
    name, rule = getattr(exc, "name", None), getattr(exc, "rule", None)
    if name is not None and rule is not None:
        return f"{name}: {rule}; got {getattr(exc, 'value', None)!r}"
    return str(exc)  # a segment without a champion: the quarantine's own "column: ..." text


def _insert(settings: Settings, rows: list[dict], *, db=None) -> list[dict]:
    """Insert the rows once each (one transaction); return the stored rows of their events
    (a redelivered event's as first stored)."""
    import pyarrow as pa

    if db is None:
        with results.open_results(settings) as opened:
            return _insert(settings, rows, db=opened)
    with db.transaction():
        db.execute(read_sql(settings.sql_dir, "load/stage_stream.sql"))
        db.bulk_insert("stream_staged", pa.Table.from_pylist(rows))
        db.execute(read_sql(settings.sql_dir, "load/insert_stream.sql"))
        stored = db.fetch_arrow(read_sql(settings.sql_dir, "serve/stream_scores.sql")).to_pylist()
        db.execute("DROP TABLE stream_staged")
    return stored
