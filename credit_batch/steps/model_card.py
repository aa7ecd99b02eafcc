"""A model card: one self-contained HTML page per model version, for its reviewers.

What a model-risk reviewer asks first: what the model was trained on and
when, how it did out of time, how well its probabilities are calibrated,
which features it reads and which way each should move risk, what it is
for and where it must not be used. No scripts, no external files: the
calibration plot is inline SVG.
"""

from __future__ import annotations

import html
import json
import logging

from credit_batch.config import Settings
from credit_batch.features import FeatureSpec
from credit_batch.stores import lake

__all__ = ["CARD_NAME", "render_model_card", "write_model_card"]

logger = logging.getLogger(__name__)

CARD_NAME = "model_card.html"

_INTENDED_USE = (
    "Ranks the customers of a monthly snapshot by their probability of serious "
    "delinquency (90 days past due or worse) within two years, for portfolio monitoring, "
    "limit management and collections prioritisation, scored nightly in batch."
)
_LIMITATIONS = (
    "Validated on one out-of-time snapshot only; performance on populations unlike the "
    "training window (new products, new channels, a recession) is unknown until realized "
    "performance is measured. Probabilities are calibrated to the training window's bad "
    "rate. Not for decisions on applicants outside the scored book, and not to be used "
    "without the reason codes where adverse-action notices are required."
)


def write_model_card(
    settings: Settings, record, validation: dict, *, gate_status: str, spec: FeatureSpec
) -> str:
    """Write ``<models>/<version>/model_card.html``; return its URI."""
    path = settings.models / record.model_version / CARD_NAME
    with lake.atomic_path(path) as tmp:
        tmp.write_text(render_model_card(record, validation, gate_status=gate_status, spec=spec))
    logger.info("model card of %s: %s", record.model_version, path.uri)
    return path.uri


def render_model_card(record, validation: dict, *, gate_status: str, spec: FeatureSpec) -> str:
    """The card's HTML."""
    e = html.escape
    metrics = [
        ("ROC AUC", "roc_auc"),
        ("Gini", "gini"),
        ("KS", "ks"),
        ("Log loss", "log_loss"),
        ("Brier score", "brier"),
        ("Score PSI (training to validation)", "psi"),
        ("Bad rate", "bad_rate"),
    ]
    rows = "".join(
        f"<tr><td>{e(label)}</td><td>{_num(validation.get(key))}</td></tr>"
        for label, key in metrics
    )
    features = "".join(
        f"<tr><td>{e(f.name)}</td><td>{e(f.direction)}</td><td>{e(f.description)}</td></tr>"
        for f in spec.features
    )
    about = json.loads(record.inventory) if getattr(record, "inventory", None) else {}
    champion = validation.get("champion_version")
    versus = (
        f"<p>Champion {e(champion)} on the same snapshot: ROC AUC "
        f"{_num(validation.get('champion_roc_auc'))}.</p>"
        if champion
        else "<p>No champion to compare with.</p>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Model card {e(record.model_version)}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}
td,th{{border-bottom:1px solid #ddd;padding:.2em .6em;text-align:left}}</style></head><body>
<h1>Model card: {e(record.model_version)}</h1>
<h2>Model</h2>
<table><tr><td>Algorithm</td><td>{e(record.algorithm)}</td></tr>
<tr><td>Feature spec</td><td>{e(spec.name)}: {e(spec.description)}</td></tr>
<tr><td>Training window</td><td>{e(f"{record.train_from} to {record.train_until}")}</td></tr>
<tr><td>Training rows</td><td>{record.training_rows:,}</td></tr>
<tr><td>Artifact sha256</td><td><code>{e(record.sha256)}</code></td></tr>
<tr><td>Gates</td><td id="gates">{e(gate_status)}</td></tr></table>
<h2>Out-of-time validation: snapshot {e(str(validation.get("validation_date")))}</h2>
<p>{validation.get("rows", 0):,} labeled rows, never seen in training.</p>
<table>{rows}</table>
{versus}
<h2>Calibration by score decile</h2>
{_calibration_svg(validation.get("calibration") or [])}
<h2>Fair lending: outcomes by group</h2>
{fair_lending_table(validation.get("fairness"), validation.get("fairness_cutoff"))}
<h2>Features and their expected direction of risk</h2>
<table><tr><th>Feature</th><th>Risk as it grows</th><th>Description</th></tr>{features}</table>
<h2>Intended use</h2><p>{e(about.get("purpose") or _INTENDED_USE)}</p>
<h2>Limitations</h2>{_limitations(about.get("limitations"))}
</body></html>
"""


def _num(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _limitations(listed) -> str:
    items = "".join(f"<li>{html.escape(item)}</li>" for item in listed or ())
    return (f"<ul>{items}</ul>" if items else "") + f"<p>{html.escape(_LIMITATIONS)}</p>"


def fair_lending_table(rows: list[dict] | None, cutoff: float | None) -> str:
    """The fairness rows (:mod:`credit_batch.steps.fairness`) as an HTML table, each
    figure with its bootstrap interval; a sentence where nothing was measured."""
    if not rows:
        return "<p>The spec declares no fairness attribute: nothing was measured by group.</p>"
    e = html.escape

    def ci(r: dict, name: str) -> str:
        low, high = r.get(f"{name}_low"), r.get(f"{name}_high")
        bounds = "" if low is None else f" ({low:.3f} to {high:.3f})"
        return _num(r.get(name)) + bounds

    head = ["attribute", "group", "customers", "approval rate", "adverse impact ratio"]
    head += ["ROC AUC", "KS", "bad rate", "mean score"]
    body = "".join(
        "<tr>" + "".join(f"<td>{c}</td>" for c in (
            e(r["attribute"]), e(r["group_value"] + (" (reference)" if r["is_reference"] else "")),
            f"{r['customers']:,}", ci(r, "approval_rate"), ci(r, "air"), ci(r, "roc_auc"),
            ci(r, "ks"), _num(r.get("bad_rate")), _num(r.get("mean_score")),
        )) + "</tr>"
        for r in rows
    )  # fmt: skip
    return (
        f"<p>Approved: a score at or below the cutoff {_num(cutoff)}. The adverse impact "
        "ratio is a group's approval rate over the reference group's (the four-fifths screen: "
        "0.80; gate <code>min_air</code>). In brackets: 95 % bootstrap intervals.</p>"
        f"<table id='fairness'><tr>{''.join(f'<th>{h}</th>' for h in head)}</tr>{body}</table>"
    )


def _calibration_svg(rows: list[dict], size: int = 320) -> str:
    """Mean score (x) against bad rate (y) per decile, with the diagonal; axes to the max."""
    if not rows:
        return "<p>No calibration rows.</p>"
    top = max(max(r["mean_score"], r["bad_rate"]) for r in rows) or 1.0
    pad = 30

    def xy(x: float, y: float) -> tuple[float, float]:
        return pad + x / top * (size - 2 * pad), size - pad - y / top * (size - 2 * pad)

    points = " ".join("{:.1f},{:.1f}".format(*xy(r["mean_score"], r["bad_rate"])) for r in rows)
    (x0, y0), (x1, y1) = xy(0, 0), xy(top, top)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
        f'role="img" aria-label="calibration by decile">'
        f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y1}" stroke="#999" stroke-dasharray="4"/>'
        f'<polyline points="{points}" fill="none" stroke="#1f77b4" stroke-width="2"/>'
        f'<text x="{pad}" y="{size - 5}" font-size="11">mean score (0 to {top:.3f})</text>'
        f'<text x="2" y="{pad - 10}" font-size="11">bad rate</text></svg>'
    )
