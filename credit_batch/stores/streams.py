"""The transport of streaming prediction: Redis Streams with a consumer group.

:class:`RedisStreams` is what :mod:`credit_batch.stream` reads events from and
writes scores to; the consumer needs only its methods (``read``, ``claim``,
``ack``, ``dead_letter``, ``publish``, ``backlog``), so another log (NATS
JetStream, Kafka) is one more class with the same methods
(``docs/streaming.md`` says what each would change).

Guarantees, as Redis Streams gives them: an entry read by a consumer stays in
the group's pending list until that consumer acknowledges it (``XACK``, sent
only after its score is committed); a consumer that dies leaves its entries
pending, and another takes them over once they have been idle for a while
(``XAUTOCLAIM``). So every event is delivered at least once, and the
consumer's insert (keyed by event id) makes each count once.

Keys, from the stream's name ``S``: ``S`` (the events), ``S:scores`` (the
output stream), ``S:dead`` (the dead letters, each with its reason).
"""

from __future__ import annotations

import dataclasses
import json
import logging

__all__ = ["Entry", "RedisStreams"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Entry:
    """One stream entry: its id in the stream, and its fields (text)."""

    entry_id: str
    fields: dict[str, str]
    deliveries: int = 1


class RedisStreams:
    """Events of one stream, read by ``consumer`` in consumer group ``group``.

    Parameters
    ----------
    url : str
        ``redis://host:port/db``.
    stream : str
        The events' stream key; the scores go to ``<stream>:scores``, the dead
        letters to ``<stream>:dead``.
    group, consumer : str
        The consumer group (created at the stream's start where missing) and
        this consumer's name in it (one per process).
    """

    def __init__(self, url: str, stream: str, *, group: str, consumer: str) -> None:
        import redis

        self.url, self.stream, self.group, self.consumer = url, stream, group, consumer
        self.scores, self.dead = f"{stream}:scores", f"{stream}:dead"
        self._redis = redis.Redis.from_url(url, decode_responses=True)
        try:
            self._redis.xgroup_create(stream, group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read(self, count: int, *, block_ms: int) -> list[Entry]:
        """New entries for this consumer (``XREADGROUP ... >``), at most ``count``,
        waiting at most ``block_ms`` for the first."""
        found = self._redis.xreadgroup(
            self.group, self.consumer, {self.stream: ">"}, count=count, block=block_ms
        )
        return [Entry(i, f) for _, entries in found or [] for i, f in entries]

    def claim(self, count: int, *, min_idle_ms: int) -> list[Entry]:
        """Entries another consumer read and has left unacknowledged for ``min_idle_ms``
        (it died): now this consumer's (``XAUTOCLAIM``)."""
        _, entries, _ = self._redis.xautoclaim(
            self.stream, self.group, self.consumer, min_idle_ms, "0-0", count=count
        )
        return [Entry(i, f, deliveries=2) for i, f in entries if f is not None]

    def ack(self, entry_ids: list[str]) -> None:
        """Acknowledge entries whose outcome is committed (scored, or dead-lettered)."""
        if entry_ids:
            self._redis.xack(self.stream, self.group, *entry_ids)

    def dead_letter(self, entry: Entry, reason: str) -> None:
        """Keep ``entry`` on the dead-letter stream with ``reason`` (``column: rule``)."""
        fields = {"entry_id": entry.entry_id, "reason": reason, "event": json.dumps(entry.fields)}
        self._redis.xadd(self.dead, fields)

    def publish(self, rows: list[dict]) -> None:
        """Write scored events to the output stream, one entry per event (pipelined)."""
        pipe = self._redis.pipeline(transaction=False)
        for row in rows:
            pipe.xadd(self.scores, {k: json.dumps(v, default=str) for k, v in row.items()})
        pipe.execute()

    def backlog(self) -> dict:
        """``{"lag", "pending"}``: entries not yet read by the group, and read but not
        acknowledged (``XINFO GROUPS``)."""
        for info in self._redis.xinfo_groups(self.stream):
            if info["name"] == self.group:
                return {"lag": info.get("lag") or 0, "pending": info["pending"]}
        return {"lag": 0, "pending": 0}

    def reset(self) -> None:
        """Delete the stream, its output, dead letters and windows, and make the group again
        (the demo's own stream, before it starts)."""
        keys = [self.stream, self.scores, self.dead]
        keys += list(self._redis.scan_iter(f"{self.stream}:windows:*", count=1000))
        self._redis.delete(*keys)
        self._redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)

    def close(self) -> None:
        self._redis.close()
