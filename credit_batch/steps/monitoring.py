"""Realized performance: stored scores against the outcomes that matured since.

For every loaded (snapshot, model version) slice whose snapshot has known
outcomes in the warehouse, the slice's scores are joined to the outcomes by
customer and measured (:mod:`credit_batch.steps.performance`) into
``realized_performance`` (one row per slice) and ``calibration`` (by score
decile and by risk band). Computing a slice again replaces its rows.
"""

from __future__ import annotations

import logging

from credit_batch.checks import parse_date, utcnow
from credit_batch.config import Settings
from credit_batch.steps import performance
from credit_batch.steps.validation import valid_rows
from credit_batch.stores import registry, results, warehouse

__all__ = ["realized_performance", "slice_performance"]

logger = logging.getLogger(__name__)


def realized_performance(
    settings: Settings, *, snapshot_date=None, only_new: bool = False
) -> list[dict]:
    """Measure every loaded slice (of ``snapshot_date``, or all) whose outcomes are known.

    ``only_new``: only slices with no ``realized_performance`` row yet (what a
    scheduled run needs; outcomes that arrive for a slice make it new).
    Returns the rows written, newest snapshot first; slices without outcomes
    yet are skipped (logged).
    """
    date = None if snapshot_date is None else parse_date(snapshot_date)
    if not results.exists(settings):
        return []
    with results.open_results(settings, read_only=True) as db:
        slices = [
            s for s in results.scored_slices(db, settings) if date in (None, s["snapshot_date"])
        ]
        done = results.measured_slices(db, settings) if only_new else set()
    slices = [s for s in slices if (s["snapshot_date"], s["model_version"]) not in done]
    written = []
    for key in slices:
        found = slice_performance(settings, key)
        if found is None:
            logger.info("no outcomes yet for %s / %s", key["snapshot_date"], key["model_version"])
            continue
        row, calibration = found
        with results.open_results(settings) as db:
            results.replace_performance(db, settings, row, calibration)
        written.append(row)
    return written


def slice_performance(settings: Settings, key: dict):
    """``(performance row, calibration rows)`` of one slice, or None without outcomes."""
    with results.open_results(settings, read_only=True) as db:
        record = registry.get_model(db, settings, key["model_version"])
        scores = results.slice_scores(db, settings, key).to_pandas()
    spec = record.feature_spec
    with warehouse.open_warehouse(settings) as wh:
        date = key["snapshot_date"]
        labeled = valid_rows(warehouse.read_labeled(wh, spec, date, date), spec=spec)
    joined = scores.merge(labeled[["customer_id", spec.target]], on="customer_id", how="inner")
    if joined.empty:
        return None
    y, p = joined[spec.target].to_numpy(), joined["score"].to_numpy()
    row = {
        **key,
        "role": record.role,
        "rows_scored": len(scores),
        **_known(performance.summary(y, p)),
        "computed_at": utcnow(),
    }
    calibration = [{"grouping": "decile", **r} for r in performance.calibration_rows(y, p)] + [
        {"grouping": "band", **r} for r in performance.band_rows(y, p, joined["risk_band"])
    ]
    return row, calibration


def _known(summary: dict) -> dict:
    """``summary`` with ``rows`` named as the column is: ``rows_known``."""
    return {("rows_known" if k == "rows" else k): v for k, v in summary.items()}
