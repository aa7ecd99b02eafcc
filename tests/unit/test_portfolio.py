"""One night for the portfolio: two models with their own specs, scored and loaded together."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from pathlib import Path

import pytest

from credit_batch import errors, pipeline, portfolio
from credit_batch.config import Policy, Scorecard, Settings
from credit_batch.run import RunOptions, call_step
from credit_batch.stores.db import connect
from tests.conftest import expected_counts, query
from tests.unit.test_own_features import _BROKEN, _TABLES
from tests.unit.test_spec import VALID

pytestmark = pytest.mark.unit

DATE = dt.date(2026, 9, 30)
SMALL = {"importance_sample_rows": 400, "importance_repeats": 1}
PER_MODEL = """
SELECT r.model_name, COUNT(p.customer_id) AS n, COUNT(DISTINCT p.run_id) AS runs
FROM predictions p JOIN model_registry r USING (model_version)
WHERE p.snapshot_date = :d GROUP BY r.model_name ORDER BY r.model_name
"""


@pytest.fixture(scope="module")
def book_template(tmp_path_factory, demo_template):
    """The book built once per worker (:func:`make_book`); tests copy its home."""
    import shutil

    folder = tmp_path_factory.mktemp("book")
    shutil.copytree(demo_template[0], folder / "home")
    demo = (Settings(home=folder / "home"), demo_template[1], demo_template[2])
    return make_book(demo, folder)


@pytest.fixture
def book(book_template, tmp_path):
    """The demo's ``gmsc`` champion and a ``pd_accounts`` champion on a spec of its own."""
    import shutil

    settings, gmsc, accounts = book_template
    shutil.copytree(settings.home, tmp_path / "home")
    return Settings(home=tmp_path / "home"), gmsc, accounts


#: The accounts model's own policy: three bands of its own names, another points scale.
ACCOUNTS_POLICY = Policy(
    risk_bands=((0.03, "P1"), (0.15, "P2"), (1.0, "P3")),
    scorecard=Scorecard(base_points=500.0, base_odds=20.0, pdo=40.0),
)


def make_book(demo, tmp_path):
    """``(settings, gmsc, pd_accounts)``: a second champion, on the demo's ``accounts`` table,
    with a policy of its own (:data:`ACCOUNTS_POLICY`)."""
    settings, _, gmsc = demo
    with connect(settings.warehouse_url) as wh:
        wh.run_script(_TABLES)
    path = tmp_path / "accounts.toml"
    path.write_text(VALID)
    own = dataclasses.replace(settings, spec_path=path)
    accounts = pipeline.train(
        own, until="2026-08-31", model_name="pd_accounts", policy=ACCOUNTS_POLICY
    )
    pipeline.promote(settings, accounts.model_version, reason="the accounts book")
    return settings, gmsc, accounts


def oracle(settings) -> dict:
    """Rows each model must load: the warehouse's rows less those breaking its rules."""
    with connect(settings.warehouse_url) as wh:
        rows = wh.fetch_arrow("SELECT COUNT(*) AS n FROM accounts WHERE as_of = :d", {"d": DATE})
        broken = wh.fetch_arrow(_BROKEN, {"d": DATE})
    accounts = rows.to_pylist()[0]["n"] - broken.to_pylist()[0]["n"]
    return {"gmsc": expected_counts(settings, DATE)["scored"], "pd_accounts": accounts}


def test_one_night_scores_every_model_each_from_its_own_extract(book):
    settings, gmsc, accounts = book
    night = portfolio.run_night(settings, RunOptions(snapshot_date=DATE, **SMALL), workers=2)
    assert sorted(night.results) == ["gmsc", "pd_accounts"] and not night.failed
    want = oracle(settings)
    stored = query(settings, PER_MODEL, {"d": DATE})
    assert stored == [
        {"model_name": "gmsc", "n": want["gmsc"], "runs": 1},
        {"model_name": "pd_accounts", "n": want["pd_accounts"], "runs": 1},
    ]
    runs = {r.run.run_id for r in night.results.values()}
    assert len(runs) == 2  # a run per model
    sets = {r.run.spec.feature_set for r in night.results.values()}
    folders = {p.name for p in (Path(settings.lake_url) / "features").iterdir()}
    assert {f"feature_set={s}" for s in sets} <= folders and len(sets) == 2
    for result in night.results.values():
        assert result.importance["importance_status"] == "computed"
        assert Path(result.report["report_path"]).is_file()
    page = Path(night.page).read_text()
    assert night.page.endswith(f"as_of={DATE}/portfolio.html")
    for name, record in (("gmsc", gmsc), ("pd_accounts", accounts)):
        row = re.search(rf"<tr><td>{name}</td><td>{record.model_version}</td>(.*?)</tr>", page)
        assert row and f"<td>loaded {DATE}</td><td>" in row.group(1)
        assert f"<td>{want[name]:,}</td>" in row.group(1)  # scored, as the oracle says


def test_a_night_scores_each_model_as_its_own_run_would(book):
    """The night's slice of the model on its own spec (scored beside another model) is, to
    the bit, what a run of that model alone loads."""
    settings, gmsc, accounts = book
    portfolio.run_night(settings, RunOptions(snapshot_date=DATE, **SMALL))
    sql = "SELECT customer_id, score, reason_1 FROM predictions WHERE model_version = :v ORDER BY 1"
    together = {
        r.model_version: query(settings, sql, {"v": r.model_version}) for r in (gmsc, accounts)
    }
    pipeline.run(settings, RunOptions(snapshot_date=DATE, model_name="pd_accounts", **SMALL))
    assert query(settings, sql, {"v": accounts.model_version}) == together[accounts.model_version]
    assert together[accounts.model_version] and together[gmsc.model_version]


def test_a_model_that_fails_tonight_fails_alone_and_the_others_load(book):
    settings, gmsc, accounts = book
    artifact = settings.home / accounts.artifact_path
    artifact.write_bytes(artifact.read_bytes() + b"tampered")
    night = portfolio.run_night(settings, RunOptions(snapshot_date=DATE, **SMALL))
    assert sorted(night.results) == ["gmsc"]
    failed = night.failed["pd_accounts"]
    assert isinstance(failed, errors.ArtifactIntegrityError)
    assert failed.model_name == "pd_accounts" and accounts.model_version in str(failed)
    stored = query(settings, PER_MODEL, {"d": DATE})
    assert stored == [{"model_name": "gmsc", "n": oracle(settings)["gmsc"], "runs": 1}]
    page = Path(night.page).read_text()  # the failed model is on the page, not loaded
    assert f"<tr><td>pd_accounts</td><td>{accounts.model_version}</td><td>0</td>" in page
    assert re.search(r"<td>pd_accounts</td>(<td>[^<]*</td>){2}<td>no loaded run</td>", page)


def test_a_model_over_its_error_budget_fails_its_load_only(book):
    """A failure found while scoring or loading (here: the error budget) stays with its model."""
    settings, gmsc, accounts = book
    counts = expected_counts(settings, DATE)
    with connect(settings.warehouse_url) as wh:
        rows = wh.fetch_arrow("SELECT COUNT(*) AS n FROM accounts WHERE as_of = :d", {"d": DATE})
        broken = wh.fetch_arrow(_BROKEN, {"d": DATE})
    share = {
        "gmsc": counts["quarantined"] / counts["rows_in"],
        "pd_accounts": broken.to_pylist()[0]["n"] / rows.to_pylist()[0]["n"],
    }
    assert share["pd_accounts"] > 1.5 * share["gmsc"]  # a budget between the two
    budget = (share["gmsc"] + share["pd_accounts"]) / 2
    options = RunOptions(snapshot_date=DATE, max_quarantine_fraction=budget, **SMALL)
    night = portfolio.run_night(settings, options)
    assert sorted(night.results) == ["gmsc"]
    assert isinstance(night.failed["pd_accounts"], errors.QuarantineBudgetError)
    stored = query(settings, PER_MODEL, {"d": DATE})
    assert stored == [{"model_name": "gmsc", "n": counts["scored"], "runs": 1}]


def test_a_night_of_one_named_model_scores_that_model_only(book):
    settings, gmsc, accounts = book
    options = RunOptions(snapshot_date=DATE, model_name="pd_accounts", **SMALL)
    night = portfolio.run_night(settings, options)
    assert sorted(night.results) == ["pd_accounts"]
    stored = query(settings, PER_MODEL, {"d": DATE})
    assert [r["model_name"] for r in stored] == ["pd_accounts"]


def test_resuming_a_run_id_needs_one_model_and_says_which(book):
    settings, _, _ = book
    with pytest.raises(errors.ParameterError, match=r"run id.*one model.*gmsc, pd_accounts"):
        portfolio.plan_night(settings, RunOptions(run_id="abc"))


def test_a_recorded_error_is_raised_again_of_its_own_class_with_context():
    exc = errors.QuarantineBudgetError("too many rows broke the rules", rows=7)
    again = errors.from_record(errors.to_record(exc), model_name="pd_cards")
    assert type(again) is errors.QuarantineBudgetError and str(again) == str(exc)
    assert again.model_name == "pd_cards"
    unknown = errors.from_record({"error": "SystemExit", "message": "m"})
    assert type(unknown) is errors.CreditBatchError and str(unknown) == "m"


def test_a_model_failing_in_a_score_task_leaves_the_task_and_the_other_models_scored(book):
    """The score task scores the feature set's other models and records the failure."""
    settings, gmsc, accounts = book
    options = RunOptions(snapshot_date=DATE, **SMALL)
    models = portfolio.plan_night(settings, options)
    items = portfolio.extract_night(settings, options, models)
    artifact = settings.home / accounts.artifact_path  # changed after the night was planned
    artifact.write_bytes(artifact.read_bytes() + b"\x00")
    scored = [portfolio.score_night(settings, item) for item in items]
    mine = [s["models"]["pd_accounts"] for s in scored if "pd_accounts" in s["models"]]
    assert mine and all(m["failed"]["error"] == "ArtifactIntegrityError" for m in mine)
    by_name = {m["model_name"]: m for m in models}
    with pytest.raises(errors.ArtifactIntegrityError, match=accounts.model_version) as caught:
        portfolio.load_model(settings, by_name["pd_accounts"], items, scored)
    assert caught.value.partitions_failed == len(mine)
    loaded = portfolio.load_model(settings, by_name["gmsc"], items, scored)
    assert loaded["rows_loaded"] == expected_counts(settings, DATE)["scored"]


def test_each_model_is_scored_by_its_own_policy_whatever_the_workers_environment(book, monkeypatch):
    """Bands and points follow each version's registered policy, not the score task's env."""
    settings, gmsc, accounts = book
    monkeypatch.setenv("CREDIT_BATCH_HOME", str(settings.home))
    options = RunOptions(snapshot_date=DATE, **SMALL)
    models = call_step(portfolio.plan_night, options)
    items = call_step(portfolio.extract_night, options, models)
    scored = []
    for k, item in enumerate(items):  # each score task on a worker with its own environment
        monkeypatch.setenv("CREDIT_BATCH_POINTS_BASE", str(100 + 50 * k))
        monkeypatch.setenv("CREDIT_BATCH_POINTS_PDO", str(5 + k))
        scored.append(call_step(portfolio.score_night, item))
    for model in models:
        call_step(portfolio.load_model, model, items, scored)
    policies = {gmsc.model_version: Policy(), accounts.model_version: ACCOUNTS_POLICY}
    sql = "SELECT model_version, score, risk_band, points FROM predictions WHERE snapshot_date = :d"
    rows = query(settings, sql, {"d": DATE})
    assert {r["model_version"] for r in rows} == set(policies)
    for r in rows:
        policy = policies[r["model_version"]]
        band = next(label for bound, label in policy.risk_bands if r["score"] <= bound)
        card = policy.scorecard
        want = card.offset + card.factor * math.log((1 - r["score"]) / r["score"])
        assert r["risk_band"] == band and abs(r["points"] - want) < 1e-9
    bands = {r["risk_band"] for r in rows if r["model_version"] == accounts.model_version}
    assert bands == {"P1", "P2", "P3"}  # the accounts model's own bands, each in use


def test_the_run_command_scores_the_portfolio_and_names_a_failed_model(book, capsys, monkeypatch):
    from credit_batch import cli

    settings, gmsc, accounts = book
    monkeypatch.setenv("CREDIT_BATCH_HOME", str(settings.home))
    args = ["run", "--snapshot-date", DATE.isoformat(), "--importance-sample-rows", "400"]
    assert cli.main([*args, "--importance-repeats", "1"]) == 0
    out = capsys.readouterr().out
    for record in (gmsc, accounts):
        assert f"model {record.model_version}" in out
    assert out.count("customers scored") == 2 and "portfolio page: " in out
    artifact = settings.home / accounts.artifact_path
    artifact.write_bytes(artifact.read_bytes() + b"\x00")
    assert cli.main([*args, "--importance-repeats", "1"]) == 2
    done = capsys.readouterr()
    assert done.out.count("customers scored") == 1  # gmsc loaded
    assert "model pd_accounts failed: ArtifactIntegrityError" in done.err
    assert "error: failed tonight: pd_accounts; the other models loaded" in done.err
