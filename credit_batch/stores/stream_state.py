"""The online state of streaming features: each customer's recent events, in Redis.

For a customer ``C`` and an event kind ``K`` the sorted set ``<prefix>:C:K``
holds the events of the longest window (and the grace), scored by event time
(integer microseconds), each member the event's id and fields as JSON, so a
redelivered event adds nothing. ``<prefix>:C:newest`` is the newest event
time seen for the customer: an event older than it by more than the spec's
grace is late (the consumer dead-letters it). Values are computed from the
events by :func:`credit_batch.windows.values_at`, the same definition the
warehouse's SQL twin computes offline, so out-of-order events within the
grace count where they belong. Keys expire once their events have left
every window.
"""

from __future__ import annotations

import json
import logging

from credit_batch.windows import MICROS, longest_window, values_at

__all__ = ["RedisWindows"]

logger = logging.getLogger(__name__)

# Keep the newest time seen: set only if larger (one round trip, atomic).
_KEEP_NEWEST = """
local old = redis.call('GET', KEYS[1])
if not old or tonumber(ARGV[1]) > tonumber(old) then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
return redis.call('GET', KEYS[1])
"""


class RedisWindows:
    """Each customer's recent events of ``spec``'s streaming features, under ``prefix``.

    Parameters
    ----------
    url : str
        ``redis://host:port/db``.
    prefix : str
        Key prefix (the consumer uses ``<stream>:windows``).
    spec : FeatureSpec
        The spec whose streaming features (and ``events.grace``) are kept.
    """

    def __init__(self, url: str, prefix: str, spec) -> None:
        import redis

        self.prefix, self.spec = prefix, spec
        self.kinds = sorted({f.stream.kind for f in spec.streaming})
        self.keep = longest_window(spec) + spec.events.grace  # seconds
        self._redis = redis.Redis.from_url(url, decode_responses=True)
        self._newest = self._redis.register_script(_KEEP_NEWEST)

    def newest(self, customers: list[str]) -> dict[str, int | None]:
        """The newest event time (microseconds) seen of each customer, None if none."""
        pipe = self._redis.pipeline(transaction=False)
        for customer in customers:
            pipe.get(f"{self.prefix}:{customer}:newest")
        found = pipe.execute()
        return {c: None if v is None else int(v) for c, v in zip(customers, found, strict=True)}

    def add(self, events: list[tuple[str, str, int, str, dict]]) -> None:
        """Keep ``(customer, kind, at_micros, event_id, fields)`` events (pipelined); drop
        what has left every window behind each customer's newest event."""
        pipe = self._redis.pipeline(transaction=False)
        newest: dict[str, int] = {}
        for customer, kind, at, event_id, fields in events:
            newest[customer] = max(at, newest.get(customer, at))
            if kind in self.kinds:
                member = json.dumps([event_id, fields], sort_keys=True)
                pipe.zadd(f"{self.prefix}:{customer}:{kind}", {member: at})
        for customer, at in newest.items():
            self._newest(keys=[f"{self.prefix}:{customer}:newest"], args=[at, self.keep],
                         client=pipe)  # fmt: skip
            for kind in self.kinds:
                key = f"{self.prefix}:{customer}:{kind}"
                pipe.zremrangebyscore(key, "-inf", f"({at - self.keep * MICROS}")
                pipe.expire(key, self.keep)
        pipe.execute()

    def values(self, asked: list[tuple[str, int]]) -> list[dict[str, float]]:
        """The streaming features of each ``(customer, at_micros)``, as of that instant."""
        pipe = self._redis.pipeline(transaction=False)
        start = longest_window(self.spec) * MICROS
        for customer, at in asked:
            for kind in self.kinds:
                key = f"{self.prefix}:{customer}:{kind}"
                pipe.zrangebyscore(key, f"({at - start}", at, withscores=True)
        found, out = pipe.execute(), []
        for i, (_, at) in enumerate(asked):
            chunk = found[i * len(self.kinds) : (i + 1) * len(self.kinds)]
            events = {
                kind: [(int(score), json.loads(member)[1]) for member, score in members]
                for kind, members in zip(self.kinds, chunk, strict=True)
            }
            out.append(values_at(self.spec, events, at))
        return out

    def close(self) -> None:
        self._redis.close()
