"""The example portfolio: ``credit-batch demo --example portfolio`` builds three products
in four countries, a PD model per product segmented by country, and a collections model
reading the cards PD score, and runs the nights; each segment's rows are scored by that
segment's champion only, counted against SQL apart."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from credit_batch import catalog, cli
from credit_batch.config import Settings
from credit_batch.demo_portfolio import COUNTRIES, PRODUCTS
from credit_batch.stores.db import connect
from tests.conftest import query

pytestmark = pytest.mark.unit

NIGHTS = (dt.date(2026, 9, 30), dt.date(2026, 10, 31))
#: The specs' rules as SQL (only ages are generated outside them): rows each segment loads.
ORACLE = """
SELECT product, country, COUNT(*) FILTER (WHERE age BETWEEN 18 AND 100) AS scored,
       COUNT(*) FILTER (WHERE NOT age BETWEEN 18 AND 100) AS quarantined
FROM portfolio_book WHERE month_end = :d GROUP BY 1, 2
"""
SLICES = """
SELECT r.model_name, r.segment, p.snapshot_date, COUNT(*) AS n
FROM predictions AS p JOIN model_registry AS r USING (model_version)
GROUP BY 1, 2, 3
"""


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The example portfolio's home after the CLI's demo, and what the demo printed."""
    import contextlib
    import io
    import os

    home = tmp_path_factory.mktemp("portfolio") / "home"
    out, before = io.StringIO(), os.environ.get("CREDIT_BATCH_HOME")
    os.environ["CREDIT_BATCH_HOME"] = str(home)
    try:
        with contextlib.redirect_stdout(out):
            code = cli.main(["demo", "--example", "portfolio", "--rows", "3000"])
    finally:
        if before is None:
            os.environ.pop("CREDIT_BATCH_HOME")
        else:
            os.environ["CREDIT_BATCH_HOME"] = before
    assert code == 0, out.getvalue()
    return Settings(home=home), out.getvalue()


def oracle(settings, date) -> dict:
    with connect(settings.warehouse_url, read_only=True) as wh:
        rows = wh.fetch_arrow(ORACLE, {"d": date}).to_pylist()
    return {(f"pd_{r['product']}", r["country"]): r for r in rows}


def collections_oracle(settings, date) -> dict:
    """Rows the collections model loads: the card accounts in arrears that the cards PD
    model scored that night (its score is their feature) with a utilization."""
    with connect(settings.warehouse_url, read_only=True) as wh:
        arrears = wh.fetch_arrow(
            "SELECT account_no, utilization FROM cards_arrears_book WHERE month_end = :d",
            {"d": date},
        ).to_pylist()
    sql = (
        "SELECT p.customer_id FROM predictions AS p JOIN model_registry AS r"
        " USING (model_version) WHERE r.model_name = 'pd_cards' AND r.status = 'champion'"
        " AND p.snapshot_date = :d"
    )
    scored_pd = {r["customer_id"] for r in query(settings, sql, {"d": date})}
    ok = [a for a in arrears if a["account_no"] in scored_pd and a["utilization"] is not None]
    return {"scored": len(ok), "quarantined": len(arrears) - len(ok)}


def test_each_segment_is_scored_by_its_champion_exactly_as_the_book_says(example):
    settings, printed = example
    champions = query(
        settings, "SELECT model_name, segment FROM model_registry WHERE status = 'champion'"
    )
    assert len(champions) == len(PRODUCTS) * len(COUNTRIES) + 2  # pooled pd_loans, collections
    stored = {
        (r["model_name"], r["segment"], r["snapshot_date"]): r["n"] for r in query(settings, SLICES)
    }
    for date in NIGHTS:
        want = oracle(settings, date)
        assert len(want) == len(PRODUCTS) * len(COUNTRIES)
        for (model, country), counts in want.items():
            assert stored[(model, country, date)] == counts["scored"] > 0
            line = rf"^  {model}/{country} +\S+ +{counts['scored']:,} +{counts['quarantined']:,}$"
            assert re.search(line, printed, re.M), line
        assert ("pd_loans", None, date) not in stored  # every country covered: pooled idle
        arrears = collections_oracle(settings, date)  # after pd_cards, from its scores
        assert stored[("collections_cards", None, date)] == arrears["scored"] > 0
        line = rf"^  collections_cards +\S+ +{arrears['scored']:,} +{arrears['quarantined']:,}$"
        assert re.search(line, printed, re.M), line
    assert sum(o["quarantined"] for o in oracle(settings, NIGHTS[-1]).values()) > 0
    assert printed.count("portfolio page: ") == 2


def test_a_segments_slice_holds_only_its_products_accounts_of_its_country(example):
    settings, _ = example
    with connect(settings.warehouse_url, read_only=True) as wh:
        book = wh.fetch_arrow(
            "SELECT account_no, product, country FROM portfolio_book WHERE month_end = :d",
            {"d": NIGHTS[-1]},
        ).to_pylist()
    where = {r["account_no"]: (f"pd_{r['product']}", r["country"]) for r in book}
    rows = query(
        settings,
        "SELECT p.customer_id, r.model_name, r.segment FROM predictions AS p"
        " JOIN model_registry AS r USING (model_version) WHERE p.snapshot_date = :d"
        " AND r.model_name LIKE 'pd_%'",
        {"d": NIGHTS[-1]},
    )
    assert rows and all(where[r["customer_id"]] == (r["model_name"], r["segment"]) for r in rows)
    for prefix, model in (("CD", "pd_cards"), ("MG", "pd_mortgages")):
        account = next(r["customer_id"] for r in rows if r["customer_id"].startswith(prefix))
        [found] = [f for f in catalog.lookups(settings, account) if f["model_name"] == model]
        assert found["model_name"] == model and found["snapshot_date"] == NIGHTS[-1]


def test_each_model_keeps_its_own_policy_and_the_idle_fallback_skips_its_importance(example):
    settings, _ = example
    bands = query(
        settings,
        "SELECT r.model_name, p.risk_band FROM predictions AS p"
        " JOIN model_registry AS r USING (model_version) GROUP BY 1, 2",
    )
    by_model = {}
    for r in bands:
        by_model.setdefault(r["model_name"], set()).add(r["risk_band"])
    assert by_model["pd_mortgages"] <= {"M1", "M2", "M3", "M4"}  # its own bands
    assert by_model["pd_cards"] <= set("ABCDE") and len(by_model["pd_cards"]) > 2
    idle = query(
        settings,
        "SELECT s.importance_status FROM scoring_runs AS s JOIN model_registry AS r"
        " USING (model_version) WHERE r.model_name = 'pd_loans' AND r.segment IS NULL",
    )
    nights = len(NIGHTS) + 1  # and the training month, scored for the collections model
    assert idle == [{"importance_status": "skipped: the slice scored no valid row"}] * nights
    page = Path(settings.home / "lake" / "reports" / "portfolio")
    assert len(list(page.glob("as_of=*/portfolio.html"))) == nights


def test_a_segment_over_its_error_budget_fails_alone_and_its_models_other_segments_finish(
    example, tmp_path
):
    """No error budget at all: every segment with a quarantined row fails, by its label; the
    segments without one load, get their importance and reports; the model's report step
    then raises the failure (its DAG task ends failed, naming the segment)."""
    import shutil

    from credit_batch import errors, portfolio
    from credit_batch.run import RunOptions

    settings, _ = example
    shutil.copytree(settings.home, tmp_path / "home")
    settings = Settings(home=tmp_path / "home")
    date = NIGHTS[-1]
    want = oracle(settings, date)
    options = RunOptions(snapshot_date=date, max_quarantine_fraction=0.0, importance_repeats=1)
    night = portfolio.run_night(settings, options)
    broken = {f"{m}/{c}" for (m, c), n in want.items() if n["quarantined"]}
    clean = {f"{m}/{c}" for (m, c), n in want.items() if not n["quarantined"]}
    assert broken and clean and set(night.failed) - {"collections_cards"} == broken
    for label, exc in night.failed.items():
        assert isinstance(exc, errors.QuarantineBudgetError) and str(exc).startswith(label)
    assert clean <= set(night.results) and not (broken & set(night.results))
    for label in clean:
        done = night.results[label]
        assert done.importance["importance_status"].startswith("skipped: no outcomes")
        assert Path(done.report["report_path"]).is_file()
    models = portfolio.plan_night(settings, options)
    model = next(m for m in models if any(f"{m['model_name']}/" in b for b in broken))
    items = portfolio.extract_night(settings, options, [model])
    scored = [portfolio.score_night(settings, i) for i in items]
    loaded = portfolio.load_model(settings, model, items, scored)
    with pytest.raises(errors.QuarantineBudgetError, match=f"^{model['model_name']}/"):
        portfolio.report_of(settings, loaded)
