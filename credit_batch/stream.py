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

Not built yet (issue 27): windowed streaming features kept in Redis, their
offline twins, and the Prometheus metrics of the consumer.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time

from credit_batch import catalog
from credit_batch.checks import utcnow
from credit_batch.config import Settings
from credit_batch.errors import CreditBatchError, NoChampionError, ParameterError
from credit_batch.faults import fault_point
from credit_batch.steps import online
from credit_batch.stores import results
from credit_batch.stores.db import read_sql

__all__ = ["CHAMPION_SECONDS", "consume", "open_transport", "process"]

logger = logging.getLogger(__name__)

#: Seconds between two reads of the champion: a promotion is scored within them.
CHAMPION_SECONDS = 5.0
_EVENT_FIELDS = {"event_id", "customer_id", "at", "features"}


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
) -> dict:
    """Score the events of ``transport`` until ``stop`` is set, ``max_events`` are done or
    nothing arrived for ``idle_seconds``; return the counts (``events``, ``scored``,
    ``dead``, ``batches``)."""
    if batch_size < 1 or block_ms < 1 or claim_idle_ms < 1:
        raise ParameterError("batch size", batch_size, "must be positive, as the waits")
    counts = {"events": 0, "scored": 0, "dead": 0, "batches": 0}
    champions, quiet_since = _Champions(settings, model_name), time.monotonic()
    while not (stop is not None and stop.is_set()):
        entries = transport.claim(batch_size, min_idle_ms=claim_idle_ms)
        entries = entries or transport.read(batch_size, block_ms=block_ms)
        if not entries:
            if idle_seconds is not None and time.monotonic() - quiet_since > idle_seconds:
                break
            continue
        done = process(settings, transport, entries, champions.get())
        for name in counts:
            counts[name] += done.get(name, 1 if name == "batches" else 0)
        quiet_since = time.monotonic()
        if max_events is not None and counts["events"] >= max_events:
            break
    logger.info("stream consumer %s: %s", getattr(transport, "consumer", "?"), counts)
    return counts


class _Champions:
    """The model's champions, loaded, read again every :data:`CHAMPION_SECONDS`."""

    def __init__(self, settings: Settings, model_name: str | None) -> None:
        self._settings, self._name = settings, model_name
        self._loaded, self._at = None, -CHAMPION_SECONDS

    def get(self) -> list:
        if time.monotonic() - self._at >= CHAMPION_SECONDS:
            known = catalog.champion_models(self._settings, self._loaded)
            self._loaded, self._at = known, time.monotonic()
        units = catalog.champions_of(self._loaded, self._name)
        if not units:
            raise NoChampionError(f"no champion of model {self._name!r}", model_name=self._name)
        return units


def process(settings: Settings, transport, entries: list, units: list) -> dict:
    """Score one micro-batch of ``entries`` with ``units`` (a model's ``(record, model)``
    champions), store, publish, dead-letter, acknowledge; return the counts."""
    rows, dead = [], []
    features = _stored(settings, units[0][0].feature_spec, entries)
    for entry in entries:
        try:
            rows.append(_scored(settings, entry, units, features))
        except CreditBatchError as exc:
            dead.append((entry, _reason(exc)))
    stored = _insert(settings, rows) if rows else []
    fault_point("stream.after_write")  # committed, not yet acknowledged
    transport.publish(stored)
    for entry, reason in dead:
        transport.dead_letter(entry, reason)
    transport.ack([e.entry_id for e in entries])
    return {"events": len(entries), "scored": len(rows), "dead": len(dead)}


def _stored(settings: Settings, spec, entries: list) -> dict:
    """The newest stored features of the entries' customers: ``{key: row}`` (one
    connection for the micro-batch; an id that cannot be a key is left out)."""
    keys = set()
    for entry in entries:
        try:
            keys.add(_key(entry.fields.get("customer_id"), spec))
        except ParameterError:
            continue
    return catalog.stored_features_of(settings, spec, sorted(keys, key=str))


def _key(value, spec):
    return catalog.customer_key(value, string=spec.key_type == "string")


def _scored(settings: Settings, entry, units: list, features: dict) -> dict:
    event = _event(entry)
    spec = units[0][0].feature_spec
    key = _key(event["customer_id"], spec)
    stored = features.get(key)
    if stored is None:
        rule = f"has no batch features in feature set {spec.feature_set}"
        raise ParameterError("customer_id", event["customer_id"], rule)
    name = units[0][0].model_name
    record, model = online.champion_for(units, stored["features"], model_name=name)
    answer = online.score_customer(
        settings, model, record, key, stored, overrides=event["features"]
    )
    return _row(entry, event, record, answer)


def _event(entry) -> dict:
    """The entry's fields as an event; ParameterError naming the first broken field."""
    fields = entry.fields
    unknown = sorted(set(fields) - _EVENT_FIELDS)
    if unknown:
        raise ParameterError(unknown[0], fields[unknown[0]], "is not a field of an event")
    for name in ("event_id", "customer_id"):
        if not fields.get(name):
            raise ParameterError(name, fields.get(name), "is required")
    return {
        "event_id": fields["event_id"],
        "customer_id": fields["customer_id"],
        "at": _when(fields.get("at")),
        "features": _overrides(fields.get("features")),
    }


def _when(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ParameterError("at", text, "must be an ISO 8601 time") from None
    return at.astimezone(dt.UTC).replace(tzinfo=None) if at.tzinfo else at


def _overrides(text: str | None) -> dict | None:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise ParameterError("features", text, "must be a JSON object") from None


def _row(entry, event: dict, record, answer: dict) -> dict:
    reasons = answer["reasons"] + [{"feature": None, "value": None}] * 3
    row = {
        "event_id": event["event_id"],
        "stream_entry": entry.entry_id,
        "model_name": record.model_name,
        "model_version": answer["model_version"],
        "customer_id": str(answer["customer_id"]),
        "event_at": event["at"],
        "features_snapshot_date": answer["features_snapshot_date"],
        "overridden": json.dumps(answer["overridden"]),
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


def _insert(settings: Settings, rows: list[dict]) -> list[dict]:
    """Insert the rows once each (one transaction); return the stored rows of their events
    (a redelivered event's as first stored)."""
    import pyarrow as pa

    with results.open_results(settings) as db, db.transaction():
        db.execute(read_sql(settings.sql_dir, "load/stage_stream.sql"))
        db.bulk_insert("stream_staged", pa.Table.from_pylist(rows))
        db.execute(read_sql(settings.sql_dir, "load/insert_stream.sql"))
        stored = db.fetch_arrow(read_sql(settings.sql_dir, "serve/stream_scores.sql")).to_pylist()
        db.execute("DROP TABLE stream_staged")
    return stored
