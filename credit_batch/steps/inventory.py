"""The model inventory page: every model, what it is for, who owns it, how it was
validated, and which version decided when.

SR 11-7 expects an inventory of models (owner, purpose, tier, validation status
and date, limitations) and evidence of which version decided on a given day.
The model file's inventory fields are registered with each version
(``model_registry.inventory``); validation comes from the registry; the
champion tenures from ``model_events`` (the view ``champion_history``). The
page (``lake/reports/inventory/inventory.html``) lists each model with these,
its champion history on a timeline, and a link to each version's model card.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

from credit_batch.checks import utcnow
from credit_batch.config import Settings
from credit_batch.storage import Location
from credit_batch.stores import lake, results
from credit_batch.stores.db import read_sql

__all__ = ["inventory_path", "render_inventory", "write_inventory_page"]

logger = logging.getLogger(__name__)

_FIELDS = ("owner", "purpose", "tier", "description", "limitations")


def inventory_path(lake_root: Location) -> Location:
    """Where the inventory page is written (rewritten whole each time)."""
    return lake_root / "reports" / "inventory" / "inventory.html"


def write_inventory_page(settings: Settings) -> Location:
    """Write the inventory page from the results database; return its path."""
    with results.open_results(settings, read_only=True) as db:
        versions = db.fetch_arrow(read_sql(settings.sql_dir, "report/inventory.sql")).to_pylist()
        sql = read_sql(settings.sql_dir, "report/champion_history.sql")
        tenures = db.fetch_arrow(sql).to_pylist()
    path = inventory_path(settings.lake)
    with lake.atomic_path(path) as tmp:
        tmp.write_text(render_inventory(versions, tenures, now=utcnow()), encoding="utf-8")
    logger.info("inventory page: %s (%d versions)", path, len(versions))
    return path


def render_inventory(versions: list[dict], tenures: list[dict], *, now: dt.datetime) -> str:
    """The page's HTML: one section per model (and segment): its inventory fields (of the
    newest version recording them), the timeline of its champions, its versions."""
    from credit_batch.steps.report import _STYLE, _e

    groups: dict[tuple, list[dict]] = {}
    for v in versions:
        groups.setdefault((v["model_name"], v["segment"]), []).append(v)
    parts = [
        "<h1>credit-batch model inventory</h1>",
        f"<p>{len(groups)} models and segments, {len(versions)} versions; written "
        f"{_e(f'{now:%Y-%m-%d %H:%M}')} UTC. Inventory fields come from each model file, as "
        "registered with the newest version that records them; champion tenures from the "
        "audit trail "
        "(<code>model_events</code>).</p>",
    ]
    if not groups:
        parts.append("<p>No model is registered yet.</p>")
    for (name, segment), rows in groups.items():
        mine = [t for t in tenures if (t["model_name"], t["segment"]) == (name, segment)]
        parts.append(_section(name, segment, rows, mine, now, _e))
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>credit-batch model inventory</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(parts)}</body></html>"
    )


def _section(name, segment, rows, tenures, now, _e) -> str:
    label = name if segment is None else f"{name} / {segment}"
    facts = next((json.loads(r["inventory"]) for r in rows if r["inventory"]), {})
    champion = next((r for r in rows if r["role"] == "champion"), None)
    items = [f"<li><b>{_e(f)}</b>: {_e(_fact(facts.get(f)))}</li>" for f in _FIELDS]
    status = "no champion" if champion is None else _validation(champion)
    items.append(f"<li><b>validation</b>: {_e(status)}</li>")
    header = ["version", "role", "algorithm", "registered", "validated on", "gates", "card"]
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{_e(c)}</td>"
            for c in (
                r["model_version"],
                r["role"],
                r["algorithm"],
                f"{r['created_at']:%Y-%m-%d}",
                r["validation_date"] or "-",
                r["gate_status"] or "-",
            )
        )  # fmt: skip
        + f"<td>{_card(r['model_card'], _e)}</td></tr>"
        for r in rows
    )
    return (
        f"<h2 id='{_e(label)}'>{_e(label)}</h2><ul>{''.join(items)}</ul>"
        f"{_timeline(tenures, now, _e)}<table><tr>{head}</tr>{body}</table>"
    )


def _fact(value) -> str:
    if value is None or value == []:
        return "not recorded (the model file does not say)"
    return "; ".join(value) if isinstance(value, list) else str(value)


def _validation(record: dict) -> str:
    if record["validation_date"] is None:
        return f"champion {record['model_version']} not validated out of time"
    gates = record["gate_status"] or "not gated"
    return f"champion validated out of time on {record['validation_date']} (gates {gates})"


def _card(uri: str | None, _e) -> str:
    return "-" if not uri else f"<a href='{_e(uri)}'>model card</a>"


def _timeline(tenures: list[dict], now: dt.datetime, _e) -> str:
    """Each champion tenure as a bar on a shared time axis (inline SVG), and as a list."""
    if not tenures:
        return "<p>No version has been champion yet.</p>"
    start = min(t["champion_from"] for t in tenures)
    span = max((now - start).total_seconds(), 1.0)
    width, x0 = 700, 10

    def x(at: dt.datetime) -> float:
        return x0 + width * (at - start).total_seconds() / span

    bars, items = [], []
    for i, t in enumerate(tenures):
        until = t["champion_until"] or now
        left, right = x(t["champion_from"]), max(x(until), x(t["champion_from"]) + 2)
        bars.append(
            f"<rect x='{left:.1f}' y='{8 + 22 * i}' width='{right - left:.1f}' height='16' "
            f"fill='#8ab' stroke='#446'><title>{_e(t['model_version'])}</title></rect>"
            f"<text x='{left + 4:.1f}' y='{20 + 22 * i}' font-size='11'>"
            f"{_e(t['model_version'])}</text>"
        )
        ended = "now" if t["champion_until"] is None else f"{t['champion_until']:%Y-%m-%d %H:%M}"
        items.append(
            f"<li>{_e(t['model_version'])}: {t['champion_from']:%Y-%m-%d %H:%M} to {_e(ended)}, "
            f"promoted by {_e(t['promoted_by'])}: {_e(t['reason'] or '-')}</li>"
        )
    height = 16 + 22 * len(tenures)
    svg = (
        f"<svg width='{width + 2 * x0}' height='{height}' role='img' "
        f"aria-label='champion timeline'>{''.join(bars)}</svg>"
    )
    return f"<figure>{svg}</figure><ul class='timeline'>{''.join(items)}</ul>"
