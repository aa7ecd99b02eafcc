"""The streaming example: the GMSC warehouse with each customer's payment and card events.

:func:`write_warehouse` writes the generated GMSC tables (:mod:`credit_batch.demo`)
and, for each snapshot, the events of the 30 days up to it
(``sql/specs/streaming/warehouse.sql``): a monthly payment, missed far more
often by the customers who go on to default, and card transactions, in bursts
before a default. The spec ``sql/specs/streaming/spec.toml`` computes its
streaming features from them for training and the nights; :func:`produce` sends
live events of the same kinds to a Redis stream for ``credit-batch
stream-score``, at a fixed rate for a bounded time.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time

import numpy as np

from credit_batch.config import DEFAULT_DEMO_ROWS, DEFAULT_DEMO_SNAPSHOTS, Settings
from credit_batch.stores import warehouse
from credit_batch.stores.db import read_sql

__all__ = ["events_of_month", "produce", "write_warehouse"]

logger = logging.getLogger(__name__)

_DAY = 86_400


def write_warehouse(
    settings: Settings,
    *,
    rows: int = DEFAULT_DEMO_ROWS,
    snapshots: int = DEFAULT_DEMO_SNAPSHOTS,
    seed: int = 0,
    unlabeled_snapshots: int = 1,
) -> list[dict]:
    """Write the GMSC tables and each snapshot's month of events; return rows per snapshot."""
    from credit_batch.demo import generate

    written, rng = [], np.random.default_rng(seed + 1)
    with warehouse.open_warehouse(settings, read_only=False) as wh:
        warehouse.apply_schema(wh, settings)
        wh.run_script(read_sql(settings.sql_dir, "specs/streaming/warehouse.sql"))
        made = generate(rows=rows, snapshots=snapshots, seed=seed,
                        unlabeled_snapshots=unlabeled_snapshots)  # fmt: skip
        for date, features, outcomes in made:
            n = warehouse.replace_snapshot(wh, settings, date, features, outcomes)
            label = None if outcomes is None else outcomes.column("delinquency").to_numpy()
            ids = features.column("customer_id").to_numpy()
            events = events_of_month(rng, ids, label, date)
            with wh.transaction():
                sql = read_sql(settings.sql_dir, "specs/streaming/delete_events.sql")
                wh.execute(sql, {"snapshot_date": date})
                wh.bulk_insert("events", events)
            written.append({"snapshot_date": date, "rows": n, "labeled": outcomes is not None,
                            "events": events.num_rows})  # fmt: skip
    return written


def events_of_month(rng: np.random.Generator, ids: np.ndarray, label, date: dt.date):
    """The payment and card events of the 30 days up to ``date`` (00:00) of customers
    ``ids``; ``label`` (1 = defaults) raises the missed payments and the card bursts."""
    import pyarrow as pa

    n = ids.size
    risky = np.zeros(n, bool) if label is None else label.astype(bool)
    start = dt.datetime.combine(date, dt.time()) - dt.timedelta(days=30)
    pay_at = rng.uniform(1, 30 * _DAY - 1, n)
    missed = (rng.random(n) < np.where(risky, 0.25, 0.06)).astype(np.int32)
    cards = rng.poisson(np.where(risky, 3.0, 2.0))
    owner = np.repeat(np.arange(n), cards)
    burst = risky[owner] & (rng.random(owner.size) < 0.3)
    card_at = np.where(burst, 30 * _DAY - rng.uniform(1, _DAY, owner.size),
                       rng.uniform(1, 30 * _DAY - 1, owner.size))  # fmt: skip
    amount = np.round(rng.lognormal(3.5, 1.0, owner.size) * np.where(burst, 4, 1), 2)
    seconds = np.concatenate([pay_at, card_at]).round(3)
    customer = np.concatenate([ids, ids[owner]])
    kind = np.array(["payment"] * n + ["card"] * owner.size, dtype=object)
    tag = f"{date:%Y%m}"
    return pa.table(
        {
            "event_id": [f"{tag}-{i}" for i in range(customer.size)],
            "customer_id": pa.array(customer, pa.int64()),
            "kind": pa.array(kind, pa.string()),
            "event_at": pa.array(
                np.datetime64(start, "us") + (seconds * 1e6).astype("timedelta64[us]"),
                pa.timestamp("us"),
            ),
            "missed": pa.array(
                np.concatenate([missed, np.zeros(owner.size, np.int32)]),
                mask=np.arange(customer.size) >= n,
            ),  # fmt: skip
            "amount": np.concatenate([rng.lognormal(5, 0.5, n).round(2), amount]),
        }
    )


def produce(
    url: str,
    stream: str,
    customers: list[int],
    *,
    rate: float,
    seconds: float,
    start: dt.datetime,
    seed: int = 0,
) -> int:
    """Send payment and card events of ``customers`` to ``stream`` at ``rate`` per second
    for ``seconds``; event times advance from ``start`` as the wall clock does. Return
    the events sent."""
    import redis

    client, rng = redis.Redis.from_url(url), np.random.default_rng(seed)
    began, sent = time.monotonic(), 0
    try:
        while (elapsed := time.monotonic() - began) < seconds:
            due = int(elapsed * rate) + 1 - sent
            pipe = client.pipeline(transaction=False)
            for _ in range(max(due, 0)):
                at = start + dt.timedelta(seconds=elapsed)
                pipe.xadd(stream, _event(rng, customers, at, sent))
                sent += 1
            pipe.execute()
            time.sleep(min(0.05, 1 / rate))
    finally:
        client.close()
    return sent


def _event(rng, customers: list[int], at: dt.datetime, i: int) -> dict:
    customer = int(customers[rng.integers(len(customers))])
    if rng.random() < 0.2:
        kind, values = "payment", {"missed": int(rng.random() < 0.1), "amount": 150.0}
    else:
        kind, values = "card", {"amount": float(np.round(rng.lognormal(4, 1), 2))}
    return {
        "event_id": f"live-{at:%Y%m%d%H%M%S}-{i}",
        "customer_id": str(customer),
        "at": at.isoformat() + "+00:00",
        "kind": kind,
        "values": json.dumps(values),
    }
