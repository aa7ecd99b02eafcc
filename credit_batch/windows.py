"""Streaming features, both ways: over a customer's events online, and in SQL offline.

A streaming feature (``Feature.stream``, a :class:`~credit_batch.features.Window`)
is an aggregate of a customer's events of one kind over a window of event
time. Its value as of an instant ``T`` is over the events with
``T - window < at <= T``:

- ``count``: how many;
- ``sum``: the sum of the event field ``field`` (0 where none), added as
  decimals of 6 places, so the sum is exact and alike in any order, on every
  database and in Python (a value with more decimals is rounded to 6);
- ``minutes_since_last``: minutes from the newest of them to ``T``, in whole
  seconds (the window's length where none).

This module holds the one definition twice: :func:`values_at` computes it
from the events themselves (what the stream consumer reads back from Redis,
:mod:`credit_batch.stores.windows`), and :func:`with_streaming` wraps a
spec's extract or training query so the warehouse computes it from its event
history as of each row's snapshot (``T`` = the snapshot date at 00:00, so an
event of that day counts from the next snapshot on). The parity test holds
the two equal, customer by customer and instant by instant.
"""

from __future__ import annotations

import datetime as dt
import decimal

__all__ = [
    "MICROS",
    "history_sql",
    "instant_sql",
    "longest_window",
    "micros",
    "parse_window",
    "values_at",
    "with_streaming",
]

#: Microseconds per second: event times are kept as integer microseconds since the epoch.
MICROS = 1_000_000
_MICRO_UNIT = decimal.Decimal("0.000001")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_EPOCH = dt.datetime(1970, 1, 1)


def parse_window(text: object) -> int | None:
    """Seconds of a window written ``"30d"``, ``"24h"``, ``"90m"`` or ``"45s"`` (None if not)."""
    if not isinstance(text, str) or len(text) < 2 or text[-1] not in _UNITS:
        return None
    number = text[:-1]
    if not number.isdigit() or int(number) == 0:
        return None
    return int(number) * _UNITS[text[-1]]


def micros(at: dt.datetime) -> int:
    """Integer microseconds since the epoch of a naive UTC time."""
    delta = at - _EPOCH
    return (delta.days * 86400 + delta.seconds) * MICROS + delta.microseconds


def longest_window(spec) -> int:
    """Seconds of the spec's longest window (what the online state must keep)."""
    return max((f.stream.window for f in spec.streaming), default=0)


def values_at(spec, events: dict[str, list[tuple[int, dict]]], at: int) -> dict[str, float]:
    """The spec's streaming features as of ``at`` (microseconds) from a customer's events.

    ``events`` maps an event kind to ``(at_micros, fields)`` pairs, in any order;
    those after ``at`` or before a window are left out.
    """
    out = {}
    for feature in spec.streaming:
        window = feature.stream
        start = at - window.window * MICROS
        inside = [(t, fields) for t, fields in events.get(window.kind, ()) if start < t <= at]
        times = sorted(inside, key=lambda pair: pair[0])  # events of one instant: any order
        out[feature.name] = _aggregate(window, times, at)
    return out


def _aggregate(window, times: list, at: int) -> float:
    if window.aggregate == "count":
        return float(len(times))
    if window.aggregate == "sum":
        with decimal.localcontext(prec=60):
            total = sum((_decimal(fields[window.field]) for _, fields in times), decimal.Decimal(0))
            return float(total)
    if not times:
        return window.window / 60
    return ((at - times[-1][0]) // MICROS) / 60


def _decimal(value) -> decimal.Decimal:
    """``value`` at 6 decimal places, as the SQL twin's ``DECIMAL(38, 6)`` holds it."""
    return decimal.Decimal(repr(float(value))).quantize(_MICRO_UNIT, decimal.ROUND_HALF_EVEN)


def with_streaming(spec, base: str, *, labeled: bool) -> str:
    """``base`` (the spec's features or labeled query, without its streaming features)
    with each streaming feature computed from the warehouse's events as of the row's
    snapshot date at 00:00, the columns in the spec's order.

    Every name in the SQL passed the spec's identifier rule; the windows are integers.
    """
    columns = ["b.snapshot_date", "b.customer_id"]
    for f in spec.features:
        columns.append(f"s.{f.name}" if f.stream is not None else f"b.{f.name}")
    if labeled:
        columns.append(f"b.{spec.target}")
    collate = ' COLLATE "C"' if spec.key_type == "string" else ""
    order = f"\nORDER BY b.snapshot_date, b.customer_id{collate}" if labeled else ""
    base = base.strip().rstrip(";")
    return f"SELECT {', '.join(columns)}\nFROM (\n{base}\n) AS b\n{_lateral(spec)}{order}"


def instant_sql(spec) -> str:
    """SQL of the streaming features of one customer as of one instant, from the
    warehouse's events (bound to ``:customer_id`` and ``:at``): the offline twin of
    :func:`values_at`, for backfills and the parity test."""
    key = "VARCHAR" if spec.key_type == "string" else "BIGINT"
    names = ", ".join(f"s.{f.name}" for f in spec.streaming)
    base = (
        "SELECT CAST(:at AS TIMESTAMP) AS snapshot_date, "
        f"CAST(:customer_id AS {key}) AS customer_id"
    )
    return f"SELECT {names}\nFROM ({base}) AS b\n{_lateral(spec)}"


def history_sql(spec) -> str:
    """SQL of the warehouse's events that the streaming features read, with event time in
    ``(:since, :until]``, oldest first: what warms the online windows at a consumer's start."""
    source = spec.events
    kinds = ", ".join(f"'{k}'" for k in sorted({f.stream.kind for f in spec.streaming}))
    fields = sorted({f.stream.field for f in spec.streaming if f.stream.field})
    values = "".join(f", e.{name} AS {name}" for name in fields)
    return (
        f"SELECT e.{source.key} AS customer_id, e.{source.id_column} AS event_id, "
        f"e.{source.kind_column} AS kind, e.{source.time_column} AS at{values}\n"
        f"FROM {source.table} AS e\n"
        f"WHERE e.{source.kind_column} IN ({kinds})\n"
        f"  AND e.{source.time_column} > :since AND e.{source.time_column} <= :until\n"
        f"ORDER BY e.{source.time_column}"
    )


def _lateral(spec) -> str:
    source, when = spec.events, "CAST(b.snapshot_date AS TIMESTAMP)"
    aggregates = ",\n        ".join(
        f"{_sql_aggregate(f.stream, source, when)} AS {f.name}" for f in spec.streaming
    )
    return (
        f"CROSS JOIN LATERAL (\n    SELECT\n        {aggregates}\n"
        f"    FROM {source.table} AS e\n"
        f"    WHERE e.{source.key} = b.customer_id\n"
        f"      AND e.{source.time_column} <= {when}\n"
        f"      AND e.{source.time_column} > {when} - INTERVAL '{longest_window(spec)} seconds'\n"
        ") AS s"
    )


def _sql_aggregate(window, source, when: str) -> str:
    at = f"e.{source.time_column}"
    start = f"{when} - INTERVAL '{window.window} seconds'"
    inside = f"e.{source.kind_column} = '{window.kind}' AND {at} > {start}"
    if window.aggregate == "count":
        return f"CAST(COUNT(*) FILTER (WHERE {inside}) AS DOUBLE PRECISION)"
    if window.aggregate == "sum":
        value = f"CAST(e.{window.field} AS DECIMAL(38, 6))"  # exact: any order, any database
        return f"CAST(COALESCE(SUM({value}) FILTER (WHERE {inside}), 0) AS DOUBLE PRECISION)"
    gap = f"{when} - MAX({at}) FILTER (WHERE {inside})"
    # whole seconds, then minutes: one exact rounding on every database and in Python
    minutes = f"FLOOR(CAST(EXTRACT(EPOCH FROM ({gap})) AS DOUBLE PRECISION)) / 60.0"
    return f"COALESCE({minutes}, {window.window / 60!r})"
