"""Score one Parquet partition in chunks, with lineage on every row.

Memory is bounded by ``chunk_rows``, not by the partition: record batches
stream from the feature file through the model into the score file.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from credit_batch.config import DEFAULT_RISK_BANDS
from credit_batch.errors import DataError, SchemaMismatchError
from credit_batch.lake import atomic_path

logger = logging.getLogger(__name__)


def scores_schema():
    """Arrow schema of a scored partition (the ``predictions`` columns)."""
    import pyarrow as pa

    labels = pa.dictionary(pa.int32(), pa.string())
    return pa.schema(
        [
            ("snapshot_date", pa.date32()),
            ("customer_id", pa.int64()),
            ("model_version", labels),
            ("run_id", labels),
            ("score", pa.float64()),
            ("risk_band", labels),
        ]
    )


def predict_scores(model, frame) -> np.ndarray:
    """Probability of the positive class (serious delinquency) for each row."""
    return model.predict_proba(frame)[:, 1]


def risk_bands(scores: np.ndarray, bands=DEFAULT_RISK_BANDS):
    """Band label of each score: the first band whose upper bound is >= the score.

    Returns a dictionary-encoded ``pyarrow`` array (no Python string per row).
    """
    import pyarrow as pa

    bounds = np.array([b for b, _ in bands])
    index = np.minimum(np.searchsorted(bounds, scores, side="left"), len(bands) - 1)
    return pa.DictionaryArray.from_arrays(
        pa.array(index.astype(np.int32)), pa.array([label for _, label in bands])
    )


def _constant(value: str, n: int):
    import pyarrow as pa

    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array([value]))


def score_file(
    features_path: Path,
    out_path: Path,
    model,
    *,
    feature_names: list[str],
    model_version: str,
    run_id: str,
    chunk_rows: int,
    bands=DEFAULT_RISK_BANDS,
) -> int:
    """Score a feature partition into ``out_path``; return the rows scored.

    Parameters
    ----------
    features_path : Path
        An extracted partition with ``snapshot_date``, ``customer_id`` and
        every column of ``feature_names``.
    out_path : Path
        The scored partition, written atomically.
    model : estimator with ``predict_proba``
        The fitted pipeline, taking a frame of ``feature_names``.
    chunk_rows : int
        Rows per record batch pushed through the model.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = _open_parquet(features_path)
    missing = [
        c
        for c in ["snapshot_date", "customer_id", *feature_names]
        if c not in source.schema_arrow.names
    ]
    if missing:
        raise SchemaMismatchError(
            f"partition {features_path} lacks the model's columns {missing}", missing=missing
        )
    schema, rows = scores_schema(), 0
    with atomic_path(Path(out_path)) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        for batch in source.iter_batches(
            batch_size=chunk_rows, columns=["snapshot_date", "customer_id", *feature_names]
        ):
            scores = predict_scores(model, batch.select(feature_names).to_pandas())
            n = batch.num_rows
            writer.write_batch(
                pa.record_batch(
                    [
                        batch.column("snapshot_date"),
                        batch.column("customer_id"),
                        _constant(model_version, n),
                        _constant(run_id, n),
                        pa.array(scores, pa.float64()),
                        risk_bands(scores, bands),
                    ],
                    schema=schema,
                )
            )
            rows += n
    logger.info("scored %d rows of %s", rows, features_path)
    return rows


def _open_parquet(path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"cannot read partition {path}: {exc}", path=str(path)) from exc
