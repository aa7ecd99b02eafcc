"""One self-contained HTML report per run: numbers and plots, no network.

Everything comes from the results database (the same tables analysts
query); plots are drawn with matplotlib and inlined as SVG, so the file opens
anywhere, offline, with no CDN.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import logging

from credit_batch.checks import check_model_version, parse_date
from credit_batch.config import Settings
from credit_batch.errors import DataError
from credit_batch.storage import Location
from credit_batch.stores import lake, registry, results
from credit_batch.stores.db import Database, read_sql

__all__ = [
    "render",
    "render_portfolio",
    "write_portfolio_page",
    "write_report",
]

logger = logging.getLogger(__name__)

_QUERIES = (
    "run",
    "fairness",
    "bands",
    "score_histogram",
    "importance",
    "shap_summary",
    "partial_dependence",
    "drift",
    "quarantine",
    "model",
    "realized",
    "previous",
    "reasons",
)
_BY_MODEL = ("model", "realized")  # queries bound to the model only, not the snapshot
_BAND_COLOURS = {"stable": "#d9f2d9", "watch": "#fff2cc", "act": "#f8cbcb"}
_STYLE = """body{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px;color:#222}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.ok{color:#176317}.bad{color:#a11}figure{margin:0}"""


def write_report(
    settings: Settings,
    *,
    snapshot_date,
    model_version: str | None = None,
    model_name: str | None = None,
):
    """Write the HTML report of the newest run of a (snapshot, model) slice; return its path.

    The version defaults to the champion of ``model_name`` (of the only model with one
    when none is named). The path is recorded in ``scoring_runs``.
    """
    date = parse_date(snapshot_date)
    with results.open_results(settings) as db:
        version = model_version or registry.champion(db, settings, model_name).model_version
        data = _collect(db, settings, date, check_model_version(version))
        path = lake.report_path(settings.lake, date, version)
        with lake.atomic_path(path) as tmp:
            tmp.write_text(render(data), encoding="utf-8")
        db.execute(
            read_sql(settings.sql_dir, "load/set_report_path.sql"),
            {"report_path": path.uri, "run_id": data["run"][0]["run_id"]},
        )
    logger.info("report of %s / %s: %s", date, version, path)
    return path


def _collect(db: Database, settings: Settings, date: dt.date, version: str) -> dict:
    params = {"snapshot_date": date, "model_version": version}
    data, suffix = {}, registry.key_suffix_of(db, settings, version)
    for name in _QUERIES:
        sql = results.keyed_sql(read_sql(settings.sql_dir, f"report/{name}.sql"), suffix)
        data[name] = db.fetch_arrow(
            sql, {k: v for k, v in params.items() if f":{k}" in sql}
        ).to_pylist()
    if not data["run"]:
        scored = (
            db.fetch_arrow(
                "SELECT DISTINCT snapshot_date FROM scoring_runs"
                " WHERE model_version = :model_version AND status = 'loaded' ORDER BY 1",
                {"model_version": version},
            )
            .column(0)
            .to_pylist()
        )
        listed = ", ".join(str(d) for d in scored[-6:]) or "none yet (`credit-batch run`)"
        raise DataError(
            f"no scoring run of snapshot {date} with model {version} to report; "
            f"its scored snapshots: {listed}",
            snapshot_date=date,
            model_version=version,
        )
    return data


def write_portfolio_page(settings: Settings, *, as_of) -> Location:
    """Write the portfolio page of the night ``as_of``: every model with a champion, its
    challengers and newest loaded run at or before that date; return its path."""
    date = parse_date(as_of, name="as-of date")
    with results.open_results(settings, read_only=True) as db:
        sql = read_sql(settings.sql_dir, "report/portfolio.sql")
        rows = db.fetch_arrow(sql, {"as_of": date}).to_pylist()
        edges = registry.model_edges(db, settings)
    path = lake.portfolio_path(settings.lake, date)
    with lake.atomic_path(path) as tmp:
        tmp.write_text(render_portfolio(rows, date, edges=edges), encoding="utf-8")
    logger.info("portfolio page of %s: %s (%d models)", date, path, len(rows))
    return path


def render_portfolio(rows: list[dict], as_of: dt.date, *, edges: dict | None = None) -> str:
    """The portfolio page's HTML: one row per model (see ``sql/report/portfolio.sql``), and
    the graph of which model reads which (``edges``: ``{model: models it reads}``)."""
    header = ["model", "champion", "challengers", "last night", "rows in", "scored"]
    header += ["quarantined", "score PSI", "drift", "realized AUC (snapshot)", "lowest AIR"]
    body = [_portfolio_row(r) for r in rows]
    loaded = sum(1 for r in rows if r["snapshot_date"] is not None)
    parts = [
        f"<h1>credit-batch portfolio, night of {_e(as_of)}</h1>",
        f"<p>{len(rows)} models with a champion; {loaded} with a loaded run at or before "
        f"{_e(as_of)}. Drift: the PSI of the champion's scores against its training "
        f"scores ({PSI_BANDS}). Realized AUC: the newest snapshot whose outcomes are known, "
        "outside the model's training window. Lowest AIR: the lowest adverse impact ratio "
        "of the night's groups (the spec's fairness attributes; below 0.80 fails the "
        "four-fifths screen).</p>",
        _table(header, body) if body else "<p>No model has a champion yet.</p>",
        "<h2>Which model reads which</h2>",
        _graph({r["model_name"] for r in rows}, edges or {}),
    ]
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>credit-batch portfolio {_e(as_of)}</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>"
    )


def _graph(names: set[str], edges: dict) -> str:
    """The models in waves (columns, :func:`credit_batch.graph.waves`), an arrow from each
    model to each model reading its score, as inline SVG; a list of the edges beside."""
    from credit_batch import graph

    mine = {n: set(edges.get(n, ())) & names for n in sorted(names)}
    pairs = [(up, n) for n, ups in mine.items() for up in sorted(ups)]
    if not pairs:
        return "<p>No model reads another model's score: each reads its own feature set.</p>"
    where = {}
    for col, wave in enumerate(graph.waves(mine)):
        for row, name in enumerate(wave):
            where[name] = (20 + 240 * col, 20 + 50 * row)
    width = 20 + 240 * (1 + max(x for x, _ in where.values()) // 240)
    height = 20 + 50 * (1 + max(y for _, y in where.values()) // 50)
    shapes = [
        f"<rect x='{x}' y='{y}' width='180' height='30' rx='4' fill='#eef' stroke='#446'/>"
        f"<text x='{x + 8}' y='{y + 20}' font-size='13'>{_e(n)}</text>"
        for n, (x, y) in where.items()
    ]
    shapes += [
        f"<line x1='{where[a][0] + 180}' y1='{where[a][1] + 15}' x2='{where[b][0]}' "
        f"y2='{where[b][1] + 15}' stroke='#446' marker-end='url(#arrow)'/>"
        for a, b in pairs
    ]
    marker = (
        "<defs><marker id='arrow' markerWidth='8' markerHeight='8' refX='8' refY='4' "
        "orient='auto'><path d='M0,0 L8,4 L0,8 z' fill='#446'/></marker></defs>"
    )
    svg = f"<svg class='graph' width='{width}' height='{height}'>{marker}{''.join(shapes)}</svg>"
    listed = "".join(f"<li>{_e(b)} reads the score of {_e(a)}</li>" for a, b in pairs)
    return f"{svg}<ul class='edges'>{listed}</ul>"


def _portfolio_row(r: dict) -> list:
    night = f"loaded {r['snapshot_date']}" if r["snapshot_date"] else "no loaded run"
    auc = "" if r["realized_auc"] is None else f"{r['realized_auc']:.4f} ({r['realized_snapshot']})"
    return [
        r["model_name"],
        r["model_version"],
        r["challengers"],
        night,
        r["rows_in"],
        r["rows_scored"],
        r["rows_quarantined"],
        r["score_psi"],
        r["drift_status"],
        auc,
        "" if r.get("min_air") is None else f"{r['min_air']:.4f}",
    ]


#: One line on each method the report shows, for a reader who is not a modeller.
METHODS = {
    "score": "the model's probability that the customer becomes 90 or more days late "
    "within two years",
    "log-odds": "the score on the scale the model adds on: log(p / (1 - p)); "
    "+0.7 roughly doubles the odds",
    "SHAP": "how much each feature pushed each customer's score up or down, in log-odds; "
    "the summary averages its size over every scored customer",
    "permutation": "how much the ROC AUC drops when one feature's values are shuffled, "
    "on customers whose outcome is known",
    "permutation_unlabeled": "how much the scores change when one feature's values are "
    "shuffled: needs no outcomes, so it is computed every night",
    "partial dependence": "the average score as one feature is set to each value of a grid, "
    "everything else as it is",
    "ICE": "the same curve for each customer of a sample; the shaded band holds the middle "
    "80 % of them",
    "PSI": "population stability index: how far a distribution moved from the training data",
}
#: The PSI bands (the risk bands are the model version's own policy's).
PSI_BANDS = "stable below 0.10; watch from 0.10 to 0.25; act above 0.25"


def render(data: dict) -> str:
    """The report's HTML for the data :func:`_collect` gathers."""
    run = data["run"][0]
    texts = {r["feature"]: r["reason_text"] for r in data.get("reasons", [])}
    policy = _policy(data["model"])
    parts = [
        f"<h1>credit-batch run report: snapshot {_e(run['snapshot_date'])}, "
        f"model {_e(run['model_version'])}</h1>",
        summary(data, texts),
        _legend(policy),
        _counts(run),
        "<h2>Scores and risk bands</h2>",
        _figure(_histogram_plot(data["score_histogram"])),
        _table(
            ["risk band", "customers", "mean score"],
            [[b["risk_band"], b["customers"], b["mean_score"]] for b in data["bands"]],
        ),
        "<h2>Feature importance</h2>",
        _importance(data["importance"], texts),
        "<h2>SHAP summary (mean |SHAP|, log-odds)</h2>",
        _figure(
            _bar_plot(
                [_label(s["feature"], texts) for s in data["shap_summary"]],
                [s["mean_abs_shap"] for s in data["shap_summary"]],
                "mean |SHAP|",
            )
        ),
        "<h2>Partial dependence</h2>",
        _figure(_pdp_plot(data["partial_dependence"])),
        "<h2>Drift against the training data (PSI)</h2>",
        _drift(data["drift"], texts),
        "<h2>Quarantine</h2>",
        _table(
            ["reason", "rule", "rows"],
            [
                [rule_in_words(q["reason"]), q["reason"], q["rows_quarantined"]]
                for q in data["quarantine"]
            ],
        )
        if data["quarantine"]
        else "<p>No rows were quarantined.</p>",
        "<h2>Fair lending: approval by group</h2>",
        _fair_lending(data.get("fairness") or []),
        "<h2>Realized performance of this model</h2>",
        _table(
            [
                "snapshot",
                "role",
                "sample",
                "rows with outcome",
                "bad rate",
                "ROC AUC",
                "Gini",
                "KS",
                "Brier",
            ],
            [_realized_cells(r) for r in data["realized"]],
        )
        if data["realized"]
        else "<p>No outcomes known yet for a snapshot this model scored "
        "(<code>credit-batch monitor</code> measures them as they mature).</p>",
        "<h2>Model</h2>",
        _table(["field", "value"], [[k, v] for m in data["model"] for k, v in m.items()]),
    ]
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>credit-batch report {_e(run['snapshot_date'])}</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>"
    )


def _counts(run: dict) -> str:
    balanced = run["rows_in"] == run["rows_scored"] + run["rows_quarantined"]
    check = (
        "<span class='ok'>reconciled</span>"
        if balanced
        else "<span class='bad'>DOES NOT RECONCILE</span>"
    )
    rows = [
        [k, run[k]]
        for k in (
            "run_id",
            "airflow_run_id",
            "status",
            "rows_in",
            "rows_scored",
            "rows_quarantined",
            "partitions",
            "importance_status",
            "score_psi",
            "drift_status",
            "started_at",
            "finished_at",
        )
    ]
    return f"<p>rows in = rows scored + rows quarantined: {check}</p>" + _table(["", "value"], rows)


def summary(data: dict, texts: dict | None = None) -> str:
    """A paragraph in words: what ran, what was scored, what moved since the previous snapshot."""
    run, bands, previous = data["run"][0], data["bands"], data.get("previous", [])
    share = run["rows_quarantined"] / run["rows_in"] if run["rows_in"] else 0.0
    words = [
        f"Model {_e(run['model_version'])} scored snapshot {_e(run['snapshot_date'])}: "
        f"{run['rows_scored']:,} customers scored and {run['rows_quarantined']:,} set aside "
        f"in quarantine ({share:.2%} of {run['rows_in']:,}) for breaking a rule of the data."
    ]
    mean = _mean(bands)
    if previous:
        before = _mean(previous)
        words.append(
            f"The mean score is {mean:.2%}, against {before:.2%} on "
            f"{_e(previous[0]['snapshot_date'])} ({(mean - before) * 100:+.2f} points)."
        )
        words.append("Share per risk band now (before): " + _band_shift(bands, previous) + ".")
    else:
        words.append(f"The mean score is {mean:.2%}; this model scored no earlier snapshot.")
    words.append(_top_drift(data["drift"], run, texts or {}))
    return "<p class='summary'>" + " ".join(words) + "</p>"


def _mean(bands: list[dict]) -> float:
    total = sum(b["customers"] for b in bands)
    return sum(b["customers"] * b["mean_score"] for b in bands) / total if total else 0.0


def _band_shift(bands: list[dict], previous: list[dict]) -> str:
    def shares(rows):
        total = sum(r["customers"] for r in rows) or 1
        return {r["risk_band"]: r["customers"] / total for r in rows}

    now, before = shares(bands), shares(previous)
    return ", ".join(
        f"{b} {now.get(b, 0):.1%} ({before.get(b, 0):.1%})" for b in sorted(now | before)
    )


def _top_drift(drift: list[dict], run: dict, texts: dict) -> str:
    status = run["drift_status"] or "not measured"
    score = f"The score's PSI against training is {run['score_psi'] or 0:.3f} ({status})"
    features = [d for d in drift if d["feature"] != "score"]
    if not features:
        return score + "."
    top = max(features, key=lambda d: d["psi"])
    moved = f"{_e(_label(top['feature'], texts))} (PSI {top['psi']:.3f}, {top['band']})"
    return f"{score}; the feature that moved most is {moved}."


def _policy(models: list[dict]):
    """The version's policy (popped from its model rows: shown in the legend, not as JSON);
    a version registered before policies were recorded: the defaults it scored with."""
    import json

    from credit_batch.config import Policy

    found = [m.pop("policy", None) for m in models]
    return Policy.from_dict(json.loads(found[0])) if found and found[0] else Policy()


def band_words(policy) -> str:
    """``A: up to 2 %; ...; E: above 20 %`` from a policy's risk bands."""
    bands = policy.risk_bands
    words = [f"{label}: up to {bound:.4g} %" for bound, label in ((b * 100, n) for b, n in bands)]
    if len(bands) > 1:
        words[-1] = f"{bands[-1][1]}: above {bands[-2][0] * 100:.4g} %"
    return "; ".join(words)


def _legend(policy) -> str:
    bands = band_words(policy)
    methods = "".join(f"<li><b>{_e(k)}</b>: {_e(v)}</li>" for k, v in METHODS.items())
    return (
        "<details open><summary>How to read this report</summary>"
        f"<p>Risk bands by score: {bands}. PSI bands: {PSI_BANDS}.</p><ul>{methods}</ul></details>"
    )


_RULES = (
    (r"greater_than_or_equal_to\((.*)\)", "below the minimum of {0}"),
    (r"less_than_or_equal_to\((.*)\)", "above the maximum of {0}"),
    (r"greater_than\((.*)\)", "not above {0}"),
    (r"less_than\((.*)\)", "not below {0}"),
    (r"notin\((.*)\)", "a code the spec forbids (one of {0})"),
    (r"isin\((.*)\)", "not one of the spec's levels"),
    (r"not_nullable", "missing, and the spec requires a value"),
    (r"duplicate within snapshot", "the customer appears more than once in the snapshot"),
    (r"finite.*|.*1e\+?15.*", "not a finite number within ±1e15"),
)


def rule_in_words(reason: str) -> str:
    """``age: greater_than_or_equal_to(18)`` as ``age: below the minimum of 18`` (each part)."""
    import re

    out = []
    for part in str(reason).split("; "):
        column, _, rule = part.partition(": ")
        for pattern, words in _RULES:
            found = re.fullmatch(pattern, rule.strip())
            if found:
                rule = words.format(*found.groups())
                break
        out.append(f"{column}: {rule}" if _ else part)
    return "; ".join(out)


def _label(feature: str, texts: dict) -> str:
    """A feature by its reason text, the column name beside it."""
    text = texts.get(feature)
    return f"{text} ({feature})" if text and text != feature else feature


def _importance(rows: list[dict], texts: dict | None = None) -> str:
    out = []
    for method in sorted({r["method"] for r in rows}):
        chosen = [r for r in rows if r["method"] == method]
        out.append(
            f"<h3>{_e(method)} ({_e(chosen[0]['metric'])}, {chosen[0]['sample_rows']:,} rows)</h3>"
            f"<p>{_e(METHODS.get(method, ''))}</p>"
        )
        out.append(
            _figure(
                _bar_plot(
                    [_label(r["feature"], texts or {}) for r in chosen],
                    [r["importance_mean"] for r in chosen],
                    chosen[0]["metric"],
                )
            )
        )
    return "".join(out) or "<p>No importance computed.</p>"


def _drift(rows: list[dict], texts: dict | None = None) -> str:
    body = "".join(
        f"<tr style='background:{_BAND_COLOURS[r['band']]}'>"
        f"<td>{_e(_label(r['feature'], texts or {}))}</td>"
        f"<td>{r['psi']:.4f}</td><td>{_e(r['band'])}</td><td>{r['rows_compared']:,}</td></tr>"
        for r in rows
    )
    return (
        (f"<table><tr><th>feature</th><th>PSI</th><th>band</th><th>rows</th></tr>{body}</table>")
        if rows
        else "<p>No drift reference for this model.</p>"
    )


def _realized_cells(row: dict) -> list:
    """A realized-performance row's cells, the in-sample flag in words."""
    from credit_batch.steps.monitoring import sample_in_words

    return [sample_in_words(v) if k == "in_sample" else v for k, v in row.items()]


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fair_lending(rows: list[dict]) -> str:
    from credit_batch.steps.model_card import fair_lending_table

    return fair_lending_table(rows, rows[0]["cutoff"] if rows else None)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return _e(value)


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _figure(svg: str) -> str:
    return f"<figure>{svg}</figure>"


def _svg(fig) -> str:
    import matplotlib
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text as text: not glyph paths
        fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog and DOCTYPE


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _histogram_plot(rows: list[dict]) -> str:
    fig, ax = _plt().subplots(figsize=(8, 2.6))
    counts = [0] * 50  # bins of 0.02; one filled outline, not 50 bars (a third of the time)
    for r in rows:
        counts[min(int(r["bin"]), 49)] = r["customers"]
    ax.stairs(counts, [i / 50 for i in range(51)], fill=True, color="#4a78a8")
    ax.set_xlabel("score (probability of serious delinquency)")
    ax.set_ylabel("customers")
    return _svg(fig)


def _bar_plot(labels: list[str], values: list[float], xlabel: str) -> str:
    fig, ax = _plt().subplots(figsize=(8, 0.28 * max(len(labels), 3) + 0.6))
    ax.barh(labels[::-1], values[::-1], color="#4a78a8")
    ax.set_xlabel(xlabel)
    return _svg(fig)


def _level_bars(ax, curve: list[dict]) -> None:
    """Mean score per level, with the ICE 10-90 % range as the error bar."""
    averages = [r["average"] for r in curve]
    spread = [
        [max(r["average"] - r["ice_p10"], 0.0) for r in curve],
        [max(r["ice_p90"] - r["average"], 0.0) for r in curve],
    ]
    labels = [r["grid_label"] for r in curve]
    ax.bar(labels, averages, yerr=spread, color="#4a78a8", capsize=2)
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    ax.set_ylabel("score")


def _pdp_plot(rows: list[dict]) -> str:
    features = sorted({r["feature"] for r in rows})
    if not features:
        return "<p>No partial dependence computed.</p>"
    fig, axes = _plt().subplots(1, len(features), figsize=(3.6 * len(features), 2.8), squeeze=False)
    for ax, name in zip(axes[0], features, strict=True):
        curve = [r for r in rows if r["feature"] == name]
        if curve[0].get("grid_label") is not None:  # a categorical feature: a bar per level
            _level_bars(ax, curve)
            ax.set_title(name, fontsize=9)
            continue
        x = [r["grid_value"] for r in curve]
        ax.fill_between(
            x,
            [r["ice_p10"] for r in curve],
            [r["ice_p90"] for r in curve],
            alpha=0.25,
            color="#4a78a8",
            label="ICE 10-90 %",
        )
        ax.plot(x, [r["average"] for r in curve], color="#1f3d5c", label="average")
        ax.set_title(name, fontsize=9)
        ax.set_ylabel("score")
    labelled = next((ax for ax in axes[0] if ax.get_legend_handles_labels()[0]), None)
    if labelled is not None:  # a numeric feature's curve (a categorical's bars have none)
        labelled.legend(fontsize=7)
    return _svg(fig)
