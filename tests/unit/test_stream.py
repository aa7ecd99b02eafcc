"""Streaming prediction over a real Redis: events joined to the stored batch features, scored
as the night scored them, stored once whatever the deliveries, bad events dead-lettered."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid

import pytest

from credit_batch import serve, stream
from credit_batch.config import Settings
from credit_batch.stores.streams import RedisStreams
from tests.conftest import query, redis_answers, run_pipeline, services_required

pytestmark = pytest.mark.services

REDIS = "redis://127.0.0.1:6379/0"
NEWEST = dt.date(2026, 10, 31)


@pytest.fixture(scope="module")
def night(tmp_path_factory, demo_template):
    """The demo home scored on its newest snapshot (the online store filled by it)."""
    import shutil

    if not redis_answers():
        reason = "Redis is not running on 127.0.0.1:6379"
        pytest.fail(reason) if services_required() else pytest.skip(reason)
    home = tmp_path_factory.mktemp("stream") / "home"
    shutil.copytree(demo_template[0], home)
    settings = Settings(home=home)
    run_pipeline(settings, snapshot_date=NEWEST, sample_rows=300, repeats=1)
    return settings


@pytest.fixture
def events(night):
    """A stream of this test's own (a unique key, deleted after), its producer and reader."""
    import redis

    client = redis.Redis.from_url(REDIS, decode_responses=True)
    key = f"credit-batch-test-{uuid.uuid4().hex[:10]}"
    yield night, key, client
    client.delete(key, f"{key}:scores", f"{key}:dead")
    client.close()


def _stored_scores(settings, n: int) -> list[dict]:
    return query(
        settings,
        "SELECT customer_id, score, risk_band, points, reason_1 FROM predictions "
        "WHERE snapshot_date = :d ORDER BY customer_id LIMIT :n",
        {"d": NEWEST, "n": n},
    )


def _consume(settings, key: str, **options) -> dict:
    transport = RedisStreams(REDIS, key, group="scorers", consumer=options.pop("consumer", "c1"))
    try:
        return stream.consume(settings, transport, idle_seconds=1.0, block_ms=50, **options)
    finally:
        transport.close()


def _streamed(settings, prefix: str) -> dict[str, dict]:
    """The stored stream scores of the events whose ids start with ``prefix`` (this test's:
    the module's tests share one results database)."""
    rows = query(settings, "SELECT * FROM stream_predictions")
    return {r["event_id"]: r for r in rows if r["event_id"].startswith(prefix)}


def test_streamed_scores_are_the_nights_and_the_online_scores_to_the_bit(events):
    settings, key, client = events
    wanted = _stored_scores(settings, 30)
    for i, want in enumerate(wanted):
        client.xadd(key, {"event_id": f"e{i}", "customer_id": str(want["customer_id"]),
                          "at": "2026-11-01T10:00:00+01:00"})  # fmt: skip
    counts = _consume(settings, key, batch_size=8)
    assert counts == {"events": 30, "scored": 30, "updated": 0, "dead": 0, "batches": 4}
    streamed = _streamed(settings, "e")
    assert len(streamed) == 30
    for i, want in enumerate(wanted):
        got = streamed[f"e{i}"]
        assert (got["score"], got["risk_band"], got["points"], got["reason_1"]) == (
            want["score"], want["risk_band"], want["points"], want["reason_1"]
        )  # fmt: skip
        assert got["score"] == serve.score_now(settings, want["customer_id"])["score"]
        assert got["features_snapshot_date"] == NEWEST
        assert got["event_at"] == dt.datetime(2026, 11, 1, 9, 0)  # UTC
    published = client.xrange(f"{key}:scores")
    assert sorted(json.loads(f["event_id"]) for _, f in published) == sorted(streamed)
    assert client.xinfo_groups(key)[0]["pending"] == 0


def test_duplicates_are_stored_once_and_bad_events_are_dead_lettered_with_their_reason(events):
    settings, key, client = events
    customer = str(_stored_scores(settings, 1)[0]["customer_id"])
    sent = [
        {"event_id": "twice", "customer_id": customer},
        {"event_id": "twice", "customer_id": customer},  # delivered again
        {"customer_id": customer},  # no id
        {"event_id": "b1", "customer_id": customer, "features": "{"},
        {"event_id": "b2", "customer_id": customer, "features": '{"age": 30}'},
        {"event_id": "b3", "customer_id": "99999999"},
        {"event_id": "b4", "customer_id": customer, "at": "yesterday"},
        {"event_id": "b5", "customer_id": customer, "colour": "red"},
    ]
    for event in sent:
        client.xadd(key, event)
    counts = _consume(settings, key, batch_size=100)
    assert counts == {"events": 8, "scored": 2, "updated": 0, "dead": 6, "batches": 1}
    assert list(_streamed(settings, "twice")) == ["twice"] and not _streamed(settings, "b")
    dead = [f["reason"] for _, f in client.xrange(f"{key}:dead")]
    assert dead == [
        "event_id: is required; got None",
        "features: must be a JSON object; got '{'",
        "age: is not a request-time feature of the model (none in this model's spec); got 30",
        "customer_id: has no batch features in feature set "
        f"{settings_feature_set(settings)}; got '99999999'",
        "at: must be an ISO 8601 time; got 'yesterday'",
        "colour: is not a field of an event; got 'red'",
    ]
    twice = [f for _, f in client.xrange(f"{key}:scores") if json.loads(f["event_id"]) == "twice"]
    assert len(twice) == 1  # its two deliveries in one micro-batch: its stored row, once
    assert client.xinfo_groups(key)[0]["pending"] == 0


def settings_feature_set(settings) -> str:
    from credit_batch.features import default_spec

    return default_spec().feature_set


def test_a_consumer_killed_after_its_write_leaves_its_events_to_another_each_stored_once(
    events, tmp_path
):
    settings, key, client = events
    wanted = _stored_scores(settings, 50)
    for i, want in enumerate(wanted):
        client.xadd(key, {"event_id": f"k{i}", "customer_id": str(want["customer_id"])})
    env = {
        **os.environ,
        "CREDIT_BATCH_HOME": str(settings.home),
        "CREDIT_BATCH_FAULT": "stream.after_write:kill",
    }
    killed = subprocess.run(
        [str(_cli()), "stream-score", "--stream", key, "--group", "scorers", "--consumer", "a",
         "--redis-url", REDIS, "--batch-size", "20", "--idle-exit", "2"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr[-2000:]  # SIGKILL after its first write
    assert len(_streamed(settings, "k")) == 20
    assert client.xinfo_groups(key)[0]["pending"] == 20  # written, never acknowledged
    counts = _consume(settings, key, consumer="b", batch_size=20, claim_idle_ms=1)
    assert counts["events"] == 50 and counts["dead"] == 0
    streamed = _streamed(settings, "k")
    assert sorted(streamed) == sorted(f"k{i}" for i in range(50))  # each event once
    assert [streamed[f"k{i}"]["score"] for i in range(50)] == [w["score"] for w in wanted]
    assert {streamed[f"k{i}"]["stream_entry"] for i in range(20)} <= {
        i for i, _ in client.xrange(key)
    }
    assert client.xinfo_groups(key)[0]["pending"] == 0


def _cli():
    from pathlib import Path

    return Path(sys.executable).with_name("credit-batch")


def test_a_private_appendonly_redis_killed_and_restarted_mid_stream_loses_nothing(night, tmp_path):
    """The machine's Redis keeps nothing on disk: this test starts its own, with
    ``appendonly yes`` (every write fsynced), kills it (SIGKILL) between two consumers'
    micro-batches and starts it again on the same files."""
    import shutil
    import time

    import redis

    from tests.conftest import free_port

    server = shutil.which("redis-server")
    if server is None:
        reason = "redis-server is not installed"
        pytest.fail(reason) if services_required() else pytest.skip(reason)
    port, data = free_port(), tmp_path / "redis"
    data.mkdir()
    url = f"redis://127.0.0.1:{port}/0"

    def start():
        proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1",
                                 "--appendonly", "yes", "--appendfsync", "always",
                                 "--save", "", "--dir", str(data)],
                                stdout=subprocess.DEVNULL)  # fmt: skip
        client = redis.Redis.from_url(url, decode_responses=True)
        for _ in range(100):
            try:
                client.ping()
                return proc, client
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("the private Redis did not start")

    wanted = _stored_scores(night, 60)
    proc, client = start()
    try:
        for i, want in enumerate(wanted[:40]):
            client.xadd("events", {"event_id": f"a{i}", "customer_id": str(want["customer_id"])})
        transport = RedisStreams(url, "events", group="scorers", consumer="c1")
        first = stream.consume(night, transport, batch_size=10, max_events=20, block_ms=50)
        transport.close()
        assert first["events"] == 20
        proc.kill()  # SIGKILL: no shutdown save
        proc.wait()
        client.close()
        proc, client = start()
        assert client.xlen("events") == 40  # kept on disk
        assert client.xinfo_groups("events")[0]["pending"] == 0  # acknowledgements too
        for i, want in enumerate(wanted[40:], start=40):
            client.xadd("events", {"event_id": f"a{i}", "customer_id": str(want["customer_id"])})
        transport = RedisStreams(url, "events", group="scorers", consumer="c2")
        rest = stream.consume(night, transport, batch_size=10, idle_seconds=1.0, block_ms=50)
        transport.close()
        assert rest["events"] == 40  # the 20 left, and the 20 sent after the restart
        streamed = _streamed(night, "a")
        assert sorted(streamed) == sorted(f"a{i}" for i in range(60))  # each once
        assert [streamed[f"a{i}"]["score"] for i in range(60)] == [w["score"] for w in wanted]
    finally:
        proc.kill()
        proc.wait()
        client.close()
