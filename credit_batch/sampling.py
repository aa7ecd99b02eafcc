"""Seeded samples of streams of record batches, in memory bounded by the sample.

Used wherever a step needs a random sample of a snapshot that may not fit in
memory: importance (the lake's features and the warehouse's outcomes of the
same customers), training and out-of-time validation on a big book.
"""

from __future__ import annotations

__all__ = ["sample_batches"]


def sample_batches(batches, *, n: int, seed: int):
    """A reproducible random sample of ``n`` rows of a stream of record batches, in memory O(n).

    Each row gets a key, a seeded hash of its ``customer_id``, and the ``n``
    rows with the smallest keys are kept (a bottom-k sample: uniform, without
    replacement). The same seed picks the same customers whatever the
    batches' sizes, so the lake's features and the warehouse's labeled rows
    of a snapshot give the same sample; and the whole snapshot is never held
    (importance on a 20M-row snapshot held 15.8 GiB when it was).

    Returns a ``pyarrow.Table`` of at most ``n`` rows, by key (None: no batch).
    """
    import numpy as np
    import pyarrow as pa

    kept, keys, schema = [], [], None
    for batch in batches:
        schema = batch.schema
        key = _keys(batch.column("customer_id"), seed)
        if keys and sum(map(len, keys)) >= n:  # only rows that beat the n-th smallest so far
            bound = np.partition(np.concatenate(keys), n - 1)[n - 1]
            keep = key <= bound
            batch, key = batch.filter(pa.array(keep)), key[keep]
        kept.append(batch)
        keys.append(key)
        if sum(map(len, keys)) > 4 * n:
            kept, keys = _smallest(kept, keys, n)
    if schema is None:
        return None
    kept, _ = _smallest(kept, keys, n)
    return pa.Table.from_batches(kept, schema=schema)


def _keys(ids, seed: int):
    import numpy as np
    import pandas as pd

    key = f"credit-batch{seed % 10_000:04d}"  # 16 characters: pandas' hash key (strings)
    hashed = pd.util.hash_array(ids.to_numpy(zero_copy_only=False), hash_key=key)
    return pd.util.hash_array(hashed ^ np.uint64(0x9E3779B97F4A7C15 * (seed + 1) % 2**64))


def _smallest(batches: list, keys: list, n: int) -> tuple[list, list]:
    import numpy as np
    import pyarrow as pa

    table, key = pa.Table.from_batches(batches), np.concatenate(keys)
    order = np.argsort(key, kind="stable")[:n]
    return table.take(pa.array(order)).to_batches(), [key[order]]
