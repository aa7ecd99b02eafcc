"""Streaming prediction: events/s, two consumers against one, latency at a fixed rate, and
how fast the group catches up after a consumer is killed.

The streaming example (``pd_stream``: four batch and three streaming features) is
trained and scored on PostgreSQL results (one DuckDB file takes one writer
process at a time), its windows warmed from the warehouse. Each figure sends
payment and card events of the example's customers to a stream of its own on
the machine's Redis; each scored event is a row of ``stream_predictions``, whose
``scored_at`` times the work without the processes' start-up:

- **events/s, one consumer**: ``events`` events waiting, one consumer; the
  baseline in the same run reads and acknowledges the same number of entries
  with nothing else (the transport alone).
- **2 consumers vs 1**: the same events, two consumer processes of one group.
- **p99 event-to-score latency at 1,000 events/s**: a producer at a fixed rate,
  each event stamped with its send time; latency = ``scored_at - event_at``.
- **catch-up after a kill**: two consumers (``--claim-idle-ms 5000``) under
  200 events/s; one is SIGKILLed; the time until the group has nothing pending
  and nothing unread again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from benchmarks.output import Figure

__all__ = ["streaming"]

REDIS = os.environ.get("CREDIT_BATCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def streaming(
    home: Path, customers: int, events: int, *, pg_url: str, seconds: float
) -> list[Figure]:
    from credit_batch import lifecycle
    from credit_batch.config import Settings

    settings = dataclasses.replace(Settings(home=home), results_url=pg_url)
    lifecycle.demo(settings, rows=customers, example="streaming")
    ids = _customers(settings)
    one, transport = _throughput(settings, ids, events, processes=1)
    two, _ = _throughput(settings, ids, events, processes=2)
    latency = _latency(settings, ids, rate=1000, seconds=seconds)
    caught = _catch_up(settings, ids, rate=200, seconds=max(seconds, 6))
    return [
        Figure("streaming: events/s, one consumer",
               f"{events:,} events waiting, micro-batches of 500, join, scoring, write, publish",
               f"{one:,.0f} events/s", f"{transport:,.0f} entries/s read and acknowledged",
               transport / one, detail={"events": events, "rate": one, "transport": transport}),
        Figure("streaming: 2 consumers vs 1", "the same events, two consumer processes",
               f"{two:,.0f} events/s", f"{one:,.0f} events/s", two / one, 1.6, ">=",
               detail={"one": one, "two": two}),
        Figure("streaming: p99 event-to-score latency at 1,000 events/s",
               f"{latency['n']:,} events over {seconds:g} s, one consumer, micro-batches "
               f"up to 500 or 20 ms", f"p99 {latency['p99']:.0f} ms",
               f"p50 {latency['p50']:.0f} ms", latency["p99"] / max(latency["p50"], 1e-9),
               250.0, "<=", detail=latency, checked=latency["p99"]),
        Figure("streaming: consumer lag back to zero after a consumer is killed",
               "two consumers under 200 events/s, one SIGKILLed; its pending events "
               "claimed after 5 s idle", f"{caught['seconds']:.1f} s",
               "60 s (the bar)", caught["seconds"] / 60, 60.0, "<=", detail=caught,
               checked=caught["seconds"]),
    ]  # fmt: skip


def _customers(settings) -> list[int]:
    from credit_batch import catalog

    rows = catalog.rows(settings, "serve/newest_customers.sql")  # valid features
    return sorted(r["customer_id"] for r in rows)


def _events(ids: list[int], n: int, start: dt.datetime, *, tag: str) -> list[dict]:
    import numpy as np

    rng = np.random.default_rng(0)
    who = rng.choice(ids, n)
    out = []
    for i in range(n):
        payment = rng.random() < 0.2
        values = {"missed": int(rng.random() < 0.1), "amount": 150.0} if payment else {
            "amount": round(float(rng.lognormal(4, 1)), 2)}  # fmt: skip
        out.append({"event_id": f"{tag}-{i}", "customer_id": str(who[i]),
                    "kind": "payment" if payment else "card",
                    "at": (start + dt.timedelta(milliseconds=i)).isoformat() + "+00:00",
                    "values": json.dumps(values)})  # fmt: skip
    return out


def _send(key: str, events: list[dict]) -> None:
    import redis

    client = redis.Redis.from_url(REDIS)
    for first in range(0, len(events), 1000):
        pipe = client.pipeline(transaction=False)
        for event in events[first : first + 1000]:
            pipe.xadd(key, event)
        pipe.execute()
    client.close()


def _fresh(settings, key: str) -> None:
    """A stream of its own, its windows warmed to the example's newest night."""
    from credit_batch import stream

    stream.warm(settings, REDIS, key, until=dt.datetime(2026, 10, 31))


def _throughput(settings, ids: list[int], n: int, *, processes: int) -> tuple[float, float]:
    key = f"credit-batch-bench-{uuid.uuid4().hex[:8]}"
    tag = f"t{processes}-{key[-8:]}"
    try:
        _fresh(settings, key)
        _send(key, _events(ids, n, dt.datetime(2026, 11, 1), tag=tag))
        _cli(settings, key, processes=processes, idle_exit=2).wait(timeout=1800)
        first, last, done = _scored_span(settings, tag)
        assert done == n, f"{done} of {n} events scored"
        transport = _transport_rate(key, n)
    finally:
        _drop(key)
    return n / (last - first).total_seconds(), transport


def _transport_rate(key: str, n: int) -> float:
    """Entries/s of reading the same stream in a fresh group and acknowledging, nothing else."""
    from credit_batch.stores.streams import RedisStreams

    reader = RedisStreams(REDIS, key, group="bare", consumer="bare")
    began, seen = time.perf_counter(), 0
    while seen < n:
        entries = reader.read(500, block_ms=100)
        reader.ack([e.entry_id for e in entries])
        seen += len(entries)
    rate = n / (time.perf_counter() - began)
    reader.close()
    return rate


def _latency(settings, ids: list[int], *, rate: float, seconds: float) -> dict:
    import numpy as np

    from credit_batch.demo_stream import produce

    key = f"credit-batch-bench-{uuid.uuid4().hex[:8]}"
    try:
        _fresh(settings, key)
        consumer = _cli(settings, key, processes=1, idle_exit=8, block_ms=20)
        time.sleep(4)  # started, champion loaded
        start = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        sent = produce(REDIS, key, ids, rate=rate, seconds=seconds, start=start)
        consumer.wait(timeout=600)
        rows = _rows(settings, "live-%")
    finally:
        _drop(key)
    gaps = np.array([(r["scored_at"] - r["event_at"]).total_seconds() * 1000 for r in rows])
    return {"n": len(rows), "sent": sent, "p50": float(np.percentile(gaps, 50)),
            "p99": float(np.percentile(gaps, 99)), "max": float(gaps.max())}  # fmt: skip


def _catch_up(settings, ids: list[int], *, rate: float, seconds: float) -> dict:
    from credit_batch.demo_stream import produce
    from credit_batch.stores.streams import RedisStreams

    key = f"credit-batch-bench-{uuid.uuid4().hex[:8]}"
    watch = None
    try:
        _fresh(settings, key)
        consumers = [_cli(settings, key, processes=1, idle_exit=8, name=f"c{i}",
                          claim_idle_ms=5000) for i in range(2)]  # fmt: skip
        time.sleep(4)
        start = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        options = {"rate": rate, "seconds": seconds, "start": start}
        sender = threading.Thread(target=produce, args=(REDIS, key, ids), kwargs=options)
        sender.start()
        time.sleep(seconds / 2)
        consumers[0].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        watch = RedisStreams(REDIS, key, group="credit-batch", consumer="watch")
        sender.join()
        while time.monotonic() - killed < 120:
            backlog = watch.backlog()
            if backlog["lag"] == 0 and backlog["pending"] == 0:
                break
            time.sleep(0.1)
        caught = time.monotonic() - killed
        consumers[1].wait(timeout=300)
    finally:
        if watch is not None:
            watch.close()
        _drop(key)
    return {"seconds": caught, "backlog": backlog, "produced_seconds": seconds}


def _cli(settings, key: str, *, processes: int, idle_exit: float, block_ms: int = 200,
         name: str = "bench", claim_idle_ms: int = 30_000):  # fmt: skip
    command = [str(Path(sys.executable).with_name("credit-batch")), "stream-score",
               "--stream", key, "--redis-url", REDIS, "--consumer", name,
               "--processes", str(processes), "--idle-exit", str(idle_exit),
               "--block-ms", str(block_ms), "--claim-idle-ms", str(claim_idle_ms)]  # fmt: skip
    env = {**os.environ, "CREDIT_BATCH_HOME": str(settings.home),
           "CREDIT_BATCH_RESULTS_URL": settings.results_url}  # fmt: skip
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)


def _scored_span(settings, tag: str):
    rows = _rows(settings, f"{tag}-%")
    times = sorted(r["scored_at"] for r in rows)
    return times[0], times[-1], len(rows)


def _rows(settings, pattern: str) -> list[dict]:
    from credit_batch.stores import results

    sql = "SELECT event_at, scored_at FROM stream_predictions WHERE event_id LIKE :p"
    with results.open_results(settings) as db:
        rows = db.fetch_arrow(sql, {"p": pattern}).to_pylist()
        db.execute("DELETE FROM stream_predictions WHERE event_id LIKE :p", {"p": pattern})
    return rows


def _drop(key: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS)
    keys = [key, f"{key}:scores", f"{key}:dead", *client.scan_iter(f"{key}:windows:*")]
    client.delete(*keys)
    client.close()
