"""The online store in Redis: one hash per customer and feature set, written in batches.

``CREDIT_BATCH_ONLINE_URL=redis://host:port/db`` puts the online store
(:mod:`credit_batch.stores.online_store`) in Redis instead of the results
database. Each customer's newest row of a feature set is the hash
``credit-batch:online:<feature set>:<customer>`` with the fields
``snapshot_date``, ``features`` (the JSON array, as in the SQL table) and
``written_at``. Writes are point-in-time safe as the SQL merge is: a script
run once per batch of 1,000 rows replaces a hash only when its snapshot is not
newer than the row's (ISO dates compare as text), and counts the ones it kept.
Reads are one pipelined ``HGETALL`` per customer.

On Redis Cluster the keys of one batch would need one hash slot; not supported.
"""

from __future__ import annotations

import datetime as dt
import logging

__all__ = ["PREFIX", "RedisOnlineStore"]

logger = logging.getLogger(__name__)

#: The keys' prefix: ``<PREFIX>:<feature set>:<customer>``.
PREFIX = "credit-batch:online"
_BATCH = 1_000

# KEYS: the rows' hashes; ARGV[1] snapshot date, ARGV[2] written_at, then one JSON per key.
_MERGE = """
local kept = 0
for i, key in ipairs(KEYS) do
  local old = redis.call('HGET', key, 'snapshot_date')
  if (not old) or old <= ARGV[1] then
    redis.call('HSET', key, 'snapshot_date', ARGV[1], 'features', ARGV[i + 2],
               'written_at', ARGV[2])
  else
    kept = kept + 1
  end
end
return kept
"""


class RedisOnlineStore:
    """The online store of one Redis database (``url``)."""

    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, decode_responses=True)
        self._merge = self._redis.register_script(_MERGE)

    def write(
        self, feature_set: str, snapshot_date: dt.date, batches, written_at
    ) -> tuple[int, int]:
        """Write Arrow batches of ``customer_id`` and ``features`` (JSON); return (rows,
        rows kept because the stored snapshot is newer)."""
        rows = kept = 0
        date, at = snapshot_date.isoformat(), written_at.isoformat()
        for batch in batches:
            ids = batch.column("customer_id").to_pylist()
            values = batch.column("features").to_pylist()
            pipe = self._redis.pipeline(transaction=False)
            for first in range(0, len(ids), _BATCH):
                keys = [f"{PREFIX}:{feature_set}:{i}" for i in ids[first : first + _BATCH]]
                self._merge(keys=keys, args=[date, at, *values[first : first + _BATCH]],
                            client=pipe)  # fmt: skip
            kept += sum(pipe.execute())
            rows += len(ids)
        return rows, kept

    def read(self, feature_set: str, customer_ids: list) -> dict:
        """``{id: {"snapshot_date", "features" (JSON text), "written_at"}}`` of the ids held."""
        pipe = self._redis.pipeline(transaction=False)
        for key in customer_ids:
            pipe.hgetall(f"{PREFIX}:{feature_set}:{key}")
        found = {}
        for key, row in zip(customer_ids, pipe.execute(), strict=True):
            if row:
                found[key] = {
                    "snapshot_date": dt.date.fromisoformat(row["snapshot_date"]),
                    "features": row["features"],
                    "written_at": dt.datetime.fromisoformat(row["written_at"]),
                }
        return found

    def close(self) -> None:
        self._redis.close()
