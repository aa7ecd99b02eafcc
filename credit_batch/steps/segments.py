"""Segments: a model's champion per value of one categorical feature of its spec.

A segmented model (``segment_by = "country"`` in its model file) has a version,
and a champion, per segment; a version trained on every row is its pooled
one. A night scores each segment's rows with that segment's champion, over
the one extract of the feature set; the rows of a segment without a champion
are scored by the pooled champion where there is one, else quarantined with
that reason by the run of the model's first segment (the *carrier*). Values
are compared as text; a missing value is the segment ``""``.
"""

from __future__ import annotations

import json

from credit_batch.errors import ParameterError
from credit_batch.features import FeatureSpec

__all__ = [
    "check_segment",
    "check_segment_by",
    "count_segments",
    "in_segment",
    "row_masks",
    "rows_of",
    "scored_batches",
    "uncovered_reason",
]

#: The longest segment value accepted (a label in tables, reports and task labels).
MAX_SEGMENT_CHARS = 64


def check_segment_by(spec: FeatureSpec, column: object) -> str:
    """``column`` if it names a categorical feature of ``spec``; else a ParameterError."""
    if column not in spec.categorical:
        known = ", ".join(spec.categorical) or "none"
        raise ParameterError(
            "segment_by", column, f"must name a categorical feature of spec {spec.name} ({known})"
        )
    return column


def check_segment(value: object) -> str:
    """A segment's value: a non-empty string of at most :data:`MAX_SEGMENT_CHARS`."""
    if not isinstance(value, str) or not value or len(value) > MAX_SEGMENT_CHARS:
        rule = f"must be a non-empty string of at most {MAX_SEGMENT_CHARS} characters"
        raise ParameterError("segment", value, rule)
    return value


def in_segment(frame, column: str, value: str):
    """The rows of ``frame`` (pandas) whose ``column`` is ``value``: a boolean mask."""
    return frame[column].astype("string").fillna("") == value


def row_masks(batch, run):
    """The rows of ``batch`` (Arrow) ``run`` reads, and which of them no champion covers.

    Returns ``(keep, uncovered)`` boolean arrays (``uncovered``: within ``keep``),
    or ``(None, None)`` for an unsegmented run (every row).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if run.segment_by is None:
        return None, None
    values = pc.fill_null(pc.cast(batch.column(run.segment_by), pa.string()), "")
    own = pc.equal(values, run.segment) if run.segment is not None else None
    if run.covered is None:  # not the carrier: its own segment only
        return own, None
    uncovered = pc.invert(pc.is_in(values, value_set=pa.array(run.covered, pa.string())))
    keep = uncovered if own is None else pc.or_(own, uncovered)
    return keep, pc.filter(uncovered, keep)


def uncovered_reason(model_name: str, column: str, value: str) -> tuple[str, str]:
    """The quarantine reason and offending values of a row whose segment has no champion."""
    reason = f"{column}: segment {value!r} of model {model_name} has no champion"
    return reason, json.dumps({column: value})


def rows_of(partition: dict, *, segment_by=None, segment=None, covered=None) -> int:
    """How many rows of ``partition`` a run reads (its segment's, and the uncovered ones
    where ``covered`` is given), from the counts extract took (``partition["segments"]``)."""
    if segment_by is None:
        return partition["rows"]
    counts = partition["segments"][segment_by]
    own = counts.get(segment, 0) if segment is not None else 0
    if covered is None:
        return own
    return own + sum(n for v, n in counts.items() if v not in covered and v != segment)


def count_segments(table, columns) -> dict[str, dict[str, int]]:
    """Rows per value (as text, missing: ``""``) of each of ``columns`` in ``table`` (Arrow)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    out = {}
    for column in columns:
        values = pc.fill_null(pc.cast(table.column(column), pa.string()), "")
        counted = pc.value_counts(values)
        out[column] = {
            v.as_py(): n.as_py()
            for v, n in zip(counted.field("values"), counted.field("counts"), strict=True)
        }
    return out


def scored_batches(batches, run):
    """The rows of ``batches`` (Arrow) that ``run`` scores: every row of an unsegmented
    run, its segment's of a segment's, the uncovered ones of the pooled run's."""
    import pyarrow.compute as pc

    for batch in batches:
        keep, uncovered = row_masks(batch, run)
        if keep is None:
            yield batch
            continue
        batch = batch.filter(keep)
        if uncovered is not None and run.segment is not None:  # quarantined, not scored
            batch = batch.filter(pc.invert(uncovered))
        yield batch
