"""Streaming features over a real Redis: each event joined to its customer's windows and
batch features, out-of-order events within the grace counted where they belong, late ones
dead-lettered with the reason, the online values equal to the warehouse's SQL twin."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from credit_batch import lifecycle, stream
from credit_batch.config import Settings
from credit_batch.stores import warehouse
from credit_batch.stores.stream_state import RedisWindows
from credit_batch.stores.streams import RedisStreams
from credit_batch.windows import instant_sql, micros
from tests.conftest import query, redis_answers, services_required

pytestmark = pytest.mark.services

REDIS = "redis://127.0.0.1:6379/0"
LIVE = dt.datetime(2026, 12, 10, 9, 0)  # more than 30 days after the demo's history


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """The streaming example: trained on its streaming features, its two nights scored."""
    if not redis_answers():
        reason = "Redis is not running on 127.0.0.1:6379"
        pytest.fail(reason) if services_required() else pytest.skip(reason)
    settings = Settings(home=tmp_path_factory.mktemp("streaming") / "home")
    record, _, _ = lifecycle.demo(settings, rows=1500, example="streaming")
    assert record.model_name == "pd_stream" and record.feature_spec.streaming
    return settings, record


@pytest.fixture
def events(home):
    import redis

    client = redis.Redis.from_url(REDIS, decode_responses=True)
    key = f"credit-batch-test-{uuid.uuid4().hex[:10]}"
    yield home, key, client
    client.delete(*client.keys(f"{key}*"))
    client.close()


def _customers(settings, n: int) -> list[int]:
    rows = query(settings, "SELECT DISTINCT customer_id FROM predictions ORDER BY customer_id")
    return [r["customer_id"] for r in rows[:n]]


def _send(client, key: str, sent: list[dict]) -> None:
    for event in sent:
        fields = {**event, "at": event["at"].isoformat() + "Z"}
        fields["values"] = json.dumps(event["values"])
        client.xadd(key, fields)


def _consume(settings, key: str) -> dict:
    transport = RedisStreams(REDIS, key, group="scorers", consumer="c1")
    try:
        return stream.consume(settings, transport, idle_seconds=1.0, block_ms=50, batch_size=16)
    finally:
        transport.close()


def _offline(settings, spec, sent: list[dict], customer: int, at: dt.datetime) -> dict:
    """The SQL twin's values, on a copy of the warehouse that also holds ``sent``."""
    import pyarrow as pa

    rows = [{"event_id": e["event_id"], "customer_id": int(e["customer_id"]), "kind": e["kind"],
             "event_at": e["at"], "missed": e["values"].get("missed"),
             "amount": e["values"].get("amount")} for e in sent]  # fmt: skip
    with warehouse.open_warehouse(settings, read_only=False) as wh, wh.transaction():
        wh.bulk_insert("events", pa.Table.from_pylist(rows, schema=_EVENTS))
        found = wh.fetch_arrow(instant_sql(spec), {"customer_id": customer, "at": at})
        wh.execute("DELETE FROM events WHERE event_id LIKE 'live-%'")
    return found.to_pylist()[0]


def _schema():
    import pyarrow as pa

    return pa.schema([("event_id", pa.string()), ("customer_id", pa.int64()),
                      ("kind", pa.string()), ("event_at", pa.timestamp("us")),
                      ("missed", pa.int32()), ("amount", pa.float64())])  # fmt: skip


_EVENTS = _schema()


def _event(i: int, customer: int, minutes: float, kind: str, **values) -> dict:
    return {"event_id": f"live-{i}", "customer_id": str(customer), "kind": kind,
            "at": LIVE + dt.timedelta(minutes=minutes), "values": values}  # fmt: skip


def test_streaming_features_move_the_score_and_equal_their_sql_twin_event_by_event(events):
    (settings, record), key, client = events
    spec = record.feature_spec
    a, b = _customers(settings, 2)
    sent = [
        _event(0, a, 0, "card", amount=20.0),
        _event(1, a, 5, "payment", missed=1, amount=150.0),
        _event(2, a, 6, "card", amount=900.5),
        _event(3, a, 7, "card", amount=1200.25),
        _event(4, a, 65, "payment", missed=1, amount=150.0),
        _event(5, b, 1, "card", amount=12.0),
        _event(6, b, 3000, "card", amount=30.0),  # two days on: the 24 h sum starts again
    ]
    _send(client, key, sent)
    assert _consume(settings, key) == {
        "events": 7, "scored": 7, "updated": 0, "dead": 0, "batches": 1
    }  # fmt: skip
    stored = {r["event_id"]: r for r in query(settings, "SELECT * FROM stream_predictions")}
    for event in sent:
        row = stored[event["event_id"]]
        online = json.loads(row["overridden"])
        offline = _offline(settings, spec, sent, int(event["customer_id"]), event["at"])
        assert online == offline, event["event_id"]  # to the bit
    assert json.loads(stored["live-4"]["overridden"]) == {
        "missed_payments_30d": 2.0, "card_spend_24h": 2120.75, "minutes_since_card": 58.0
    }  # fmt: skip
    assert json.loads(stored["live-6"]["overridden"])["card_spend_24h"] == 30.0
    scores = [stored[f"live-{i}"]["score"] for i in range(5)]
    assert scores[4] > scores[1] > scores[0]  # each missed payment raises the risk


def test_out_of_order_events_within_the_grace_count_and_late_ones_are_dead_lettered(events):
    (settings, record), key, client = events
    (a,) = _customers(settings, 1)
    sent = [
        _event(10, a, 30, "card", amount=5.0),
        _event(11, a, 25, "card", amount=7.0),  # 5 minutes behind: within the 10-minute grace
        _event(12, a, 30, "card", amount=5.0),  # a redelivery of live-10 as another entry
        _event(13, a, 15, "card", amount=100.0),  # 15 minutes behind: late
        _event(14, a, 31, "payment", amount=150.0),  # no `missed`: poison
        _event(15, a, 32, "transfer", amount=1.0),  # a kind the spec does not know
    ]
    sent[2]["event_id"] = "live-10"
    _send(client, key, sent)
    counts = _consume(settings, key)
    # live-10 is scored at each delivery, stored once, and in the windows once
    assert counts == {"events": 6, "scored": 3, "updated": 0, "dead": 3, "batches": 1}
    dead = [f["reason"] for _, f in client.xrange(f"{key}:dead")]
    assert dead == [
        "at: is later than the grace of 600 s (the customer's events reached "
        f"{LIVE + dt.timedelta(minutes=30):%Y-%m-%dT%H:%M:%S}); got "
        f"'{LIVE + dt.timedelta(minutes=15):%Y-%m-%dT%H:%M:%S}Z'",
        "missed: must be a finite number in the values of a payment event; got None",
        "kind: is not an event kind of the spec (card, payment); got 'transfer'",
    ]
    windows = RedisWindows(REDIS, f"{key}:windows", record.feature_spec)
    try:
        now = LIVE + dt.timedelta(minutes=40)
        (values,) = windows.values([(str(a), micros(now))])
    finally:
        windows.close()
    kept = [e for e in sent if e["event_id"] in ("live-10", "live-11")][:2]
    assert values == _offline(settings, record.feature_spec, kept, a, now)
    assert values["card_spend_24h"] == 12.0  # live-10 once, live-11 counted where it belongs
    assert values["minutes_since_card"] == 10.0
    stored = query(settings, "SELECT event_id FROM stream_predictions WHERE event_id IN "
                             "('live-10', 'live-11', 'live-13')")  # fmt: skip
    assert sorted(r["event_id"] for r in stored) == ["live-10", "live-11"]


def test_two_consumer_processes_share_the_stream_and_serve_their_metrics(events):
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path
    from urllib.request import urlopen

    from tests.conftest import free_port

    (settings, _), key, client = events
    customers = _customers(settings, 40)
    _send(
        client, key, [_event(100 + i, c, i, "card", amount=10.0) for i, c in enumerate(customers)]
    )
    port = free_port()
    cli = Path(sys.executable).with_name("credit-batch")
    child = subprocess.Popen(
        [str(cli), "stream-score", "--stream", key, "--redis-url", REDIS, "--batch-size", "5",
         "--processes", "2", "--metrics-port", str(port), "--idle-exit", "6"],
        env={**os.environ, "CREDIT_BATCH_HOME": str(settings.home)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    scored, deadline, texts = 0.0, time.monotonic() + 60, []
    while scored < 40 and time.monotonic() < deadline and child.poll() is None:
        texts = []
        for p in (port, port + 1):
            try:
                texts.append(urlopen(f"http://127.0.0.1:{p}/metrics", timeout=2).read().decode())
            except OSError:
                texts.append("")
        scored = sum(
            _sample(t, 'credit_batch_stream_events_total{outcome="scored"}') for t in texts
        )
        time.sleep(0.2)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err[-2000:]
    assert scored == 40, texts
    assert any('model_name="pd_stream"' in t for t in texts)  # one may have had nothing
    assert all("credit_batch_stream_pending " in t for t in texts)  # each process served
    assert client.xinfo_groups(key)[0]["pending"] == 0
    totals = json.loads(out.strip().splitlines()[-1])
    assert (totals["consumers"], totals["events"], totals["scored"]) == (2, 40, 40)
    rows = query(settings, "SELECT event_id FROM stream_predictions")
    assert len({r["event_id"] for r in rows} & {f"live-{100 + i}" for i in range(40)}) == 40


def _sample(text: str, name: str) -> float:
    """The value of the sample ``name`` (with its labels) in a Prometheus text page."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def test_warmed_windows_give_the_nights_features_and_a_streamed_score_equals_the_nights(events):
    (settings, record), key, client = events
    night = dt.datetime(2026, 10, 31)  # the newest snapshot's instant (00:00)
    done = stream.warm(settings, REDIS, key, until=night)
    assert done["events"] > 0
    wanted = query(settings, "SELECT customer_id, score, points, reason_1 FROM predictions "
                             "WHERE snapshot_date = :d ORDER BY customer_id LIMIT 25",
                   {"d": night.date()})  # fmt: skip
    assert stream.warm(settings, REDIS, key, until=night) == done  # idempotent
    sent = [_event(200 + i, w["customer_id"], 0, "payment", missed=0, amount=1.0)
            for i, w in enumerate(wanted)]  # fmt: skip
    for event in sent:
        event["at"] = night  # on the instant: adds nothing a feature counts
    _send(client, key, sent)
    assert _consume(settings, key)["scored"] == 25
    stored = {r["event_id"]: r for r in query(settings, "SELECT * FROM stream_predictions")}
    from credit_batch import catalog

    spec = record.feature_spec
    nightly = catalog.stored_features_of(settings, spec, [w["customer_id"] for w in wanted])
    for event, want in zip(sent, wanted, strict=True):
        got = stored[event["event_id"]]
        streamed = json.loads(got["overridden"])
        kept = nightly[want["customer_id"]]["features"]
        assert streamed == {name: kept[name] for name in streamed}  # the night's values
        assert (got["score"], got["points"], got["reason_1"]) == (
            want["score"], want["points"], want["reason_1"]
        )  # fmt: skip
