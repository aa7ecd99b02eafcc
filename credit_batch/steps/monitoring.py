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
from credit_batch.stores import lake, registry, results, warehouse

__all__ = [
    "in_training_window",
    "realized_performance",
    "sample_in_words",
    "render_page",
    "slice_performance",
    "write_page",
]

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
        key_type = record.feature_spec.key_type
        scores = results.slice_scores(db, settings, key, key_type=key_type).to_pandas()
    spec = record.feature_spec
    labeled = _outcomes(settings, spec, key["snapshot_date"])
    # Rows that break the rules were quarantined, not scored: the join leaves them out. A
    # customer with two outcomes has none that can be trusted (as the batch's duplicates).
    labeled = labeled.drop_duplicates("customer_id", keep=False)
    joined = scores.merge(labeled, on="customer_id", how="inner")
    if joined.empty:
        return None
    y, p = joined[spec.target].to_numpy(), joined["score"].to_numpy()
    row = {
        **key,
        "role": record.role,
        "in_sample": in_training_window(record, key["snapshot_date"]),
        "rows_scored": len(scores),
        **_known(performance.summary(y, p)),
        "computed_at": utcnow(),
    }
    calibration = [{"grouping": "decile", **r} for r in performance.calibration_rows(y, p)] + [
        {"grouping": "band", **r} for r in performance.band_rows(y, p, joined["risk_band"])
    ]
    return row, calibration


def in_training_window(record, snapshot_date) -> bool:
    """Whether ``snapshot_date`` lies in the window ``record`` was trained on.

    Performance measured there is in-sample: the model has seen those outcomes,
    so its AUC there overstates what it does on new customers.
    """
    start = record.train_from or snapshot_date
    return start <= snapshot_date <= record.train_until


def _outcomes(settings: Settings, spec, date):
    """``customer_id`` and the outcome of each labeled row of ``date``: the features are
    dropped batch by batch (a 20M-row snapshot's features would take GiBs)."""
    import pyarrow as pa

    names = ["customer_id", spec.target]
    with warehouse.open_warehouse(settings) as wh:
        found = warehouse.stream_labeled(wh, spec.in_warehouse, date, date)
        batches = [b.select(names) for b in found]
    schema = spec.arrow_schema(with_target=True)
    table = pa.Table.from_batches(batches, schema=pa.schema([schema.field(n) for n in names]))
    return table.to_pandas()


def _known(summary: dict) -> dict:
    """``summary`` with ``rows`` named as the column is: ``rows_known``."""
    return {("rows_known" if k == "rows" else k): v for k, v in summary.items()}


def write_page(settings: Settings) -> str:
    """Write the monitoring page (``<lake>/reports/monitoring.html``); return its URI."""
    with results.open_results(settings, read_only=True) as db:
        rows = results.performance_history(db, settings)
    path = lake.monitoring_path(settings.lake)
    with lake.atomic_path(path) as tmp:
        tmp.write_text(render_page(rows), encoding="utf-8")
    return path.uri


def render_page(rows: list[dict]) -> str:
    """Realized performance over time per model: a chart of ROC AUC and a table (HTML)."""
    from html import escape

    cells = "".join(
        f"<tr><td>{r['snapshot_date']}</td><td>{escape(r['model_version'])}</td>"
        f"<td>{escape(r['role'])}</td><td>{sample_in_words(r.get('in_sample'))}</td>"
        f"<td>{r['rows_known']:,}</td>"
        + "".join(f"<td>{_fmt(r[k])}</td>" for k in ("bad_rate", "roc_auc", "gini", "ks", "brier"))
        + "</tr>"
        for r in rows
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>credit-batch monitoring</title>
<style>body{{font-family:sans-serif;max-width:64em;margin:2em auto}}
td,th{{border-bottom:1px solid #ddd;padding:.2em .6em;text-align:right}}</style></head><body>
<h1>Realized performance</h1>
<p>Stored scores measured against the outcomes known since, per snapshot and model.
A snapshot <em>in sample</em> lies in the model's own training window: the model has seen
those outcomes, so its figures there overstate what it does on new customers.</p>
{_auc_chart(rows)}
<table><tr><th>snapshot</th><th>model</th><th>role</th><th>sample</th><th>rows</th><th>bad rate</th>
<th>ROC AUC</th><th>Gini</th><th>KS</th><th>Brier</th></tr>{cells}</table>
</body></html>
"""


def sample_in_words(in_sample) -> str:
    """``in sample`` / ``out of time`` (unknown for rows measured before the flag)."""
    return {True: "in sample", False: "out of time"}.get(in_sample, "unknown")


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _auc_chart(rows: list[dict], width: int = 560, height: int = 220) -> str:
    """ROC AUC by snapshot, one line per model (inline SVG; the AUC axis from 0.5 to 1)."""
    points = [r for r in rows if r["roc_auc"] is not None]
    if not points:
        return "<p>No ROC AUC yet.</p>"
    dates = sorted({r["snapshot_date"] for r in points})
    step = (width - 60) / max(len(dates) - 1, 1)
    lines = []
    for i, model in enumerate(sorted({r["model_version"] for r in points})):
        xy = [
            f"{30 + dates.index(r['snapshot_date']) * step:.1f},"
            f"{height - 20 - (r['roc_auc'] - 0.5) / 0.5 * (height - 40):.1f}"
            for r in points
            if r["model_version"] == model
        ]
        colour = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")[i % 4]
        lines.append(
            f'<polyline points="{" ".join(xy)}" fill="none" stroke="{colour}" '
            f'stroke-width="2"><title>{model}</title></polyline>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="ROC AUC by snapshot">{"".join(lines)}'
        f'<text x="2" y="14" font-size="11">ROC AUC (0.5 to 1), {dates[0]} .. {dates[-1]}</text>'
        "</svg>"
    )
