"""Segmented models: a champion per segment, its rows only; the rest quarantined or pooled."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from credit_batch import cli, errors, pipeline, portfolio
from credit_batch.config import LENDER_SPEC_PATH, Settings
from credit_batch.model_file import each_segment, load_model_file
from credit_batch.run import RunOptions
from credit_batch.steps.encoding import model_frame
from credit_batch.steps.validation import valid_rows
from credit_batch.stores import registry, results
from credit_batch.stores.db import connect
from tests.conftest import query

pytestmark = pytest.mark.unit

SMALL = {"importance_sample_rows": 300, "importance_repeats": 1}
#: The segments given a champion: "phone" and "partner" have none.
CHAMPIONED = ("branch", "broker", "online")
MODEL_FILE = """
name = "pd_loans"
spec = "{spec}"
segment_by = "channel"
fallback = "pooled"
max_rows = 5000
[policy]
risk_bands = [[0.05, "low"], [0.2, "mid"], [1.0, "high"]]
"""
PER_CHANNEL = """
SELECT channel, COUNT(*) AS n FROM loan_book WHERE month_end = :d GROUP BY channel
"""


def _model_file(folder: Path) -> Path:
    path = folder / "pd_loans.toml"
    spec = os.path.relpath(LENDER_SPEC_PATH, folder)
    path.write_text(MODEL_FILE.format(spec=spec))
    return path


@pytest.fixture(scope="module")
def loans_template(tmp_path_factory):
    """A string-keyed loan book; pd_loans champions for three channels (one trained
    through the CLI), a pooled version registered, not promoted."""
    folder = tmp_path_factory.mktemp("loans")
    settings = Settings(home=folder / "home")
    written = pipeline.demo_data(settings, "lender", rows=4000, snapshots=4, seed=3)
    dates = [w["snapshot_date"] for w in written]
    path = _model_file(folder)
    env = {"CREDIT_BATCH_HOME": str(settings.home)}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        args = ["train", "--model-file", str(path), "--until", str(dates[-2])]
        assert cli.main([*args, "--segment", "branch", "--promote"]) == 0
    from credit_batch.model_file import training_options

    options = training_options(path)
    versions = {}
    for segment in (*CHAMPIONED, None):
        record = pipeline.train(settings, until=dates[-2], segment=segment, **options)
        versions[segment] = record
        if segment is not None:
            pipeline.promote(settings, record.model_version, reason="its segment")
    return settings, dates, versions, path


@pytest.fixture
def loans(loans_template, tmp_path):
    settings, dates, versions, path = loans_template
    shutil.copytree(settings.home, tmp_path / "home")
    return Settings(home=tmp_path / "home"), dates, versions, path


def _oracle_scores(settings: Settings, record, date) -> dict:
    """The version's own predict_proba on the extracted rows of its segment that keep the
    spec's rules (read from the lake, apart from the scoring code)."""
    import pandas as pd

    spec = record.feature_spec
    folder = Path(settings.lake_url) / "features" / f"feature_set={spec.feature_set}"
    parts = sorted((folder / f"snapshot_date={date}").glob("*.parquet"))
    frame = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    frame = valid_rows(frame[frame["channel"].astype(str) == record.segment], spec=spec)
    model = registry.load_model(
        settings, record.artifact_path, record.sha256, version=record.model_version
    )
    scores = model.predict_proba(model_frame(frame, spec))[:, 1]
    return dict(zip(frame["customer_id"], scores, strict=True))


def _channels(settings: Settings, date) -> dict:
    with connect(settings.warehouse_url) as wh:
        rows = wh.fetch_arrow(PER_CHANNEL, {"d": date}).to_pylist()
    return {r["channel"]: r["n"] for r in rows}


def _stored(settings: Settings, table: str, version: str, date) -> list[dict]:
    sql = f"SELECT * FROM {table} WHERE model_version = :v AND snapshot_date = :d"
    return query(settings, sql, {"v": version, "d": date})


def test_each_segment_is_scored_by_its_own_champion_and_the_rest_quarantined(loans):
    """Every championed channel's rows are scored by that channel's champion only (its
    predict_proba, to 1e-12); the rows of channels without one are quarantined by name."""
    settings, dates, versions, _ = loans
    date = dates[-1]
    night = portfolio.run_night(settings, RunOptions(snapshot_date=date, **SMALL), workers=2)
    assert not night.failed and sorted(night.results) == [f"pd_loans/{c}" for c in CHAMPIONED]
    channels = _channels(settings, date)
    uncovered = []
    for segment in CHAMPIONED:
        version = versions[segment].model_version
        stored = _stored(settings, "predictions", version, date)
        want = _oracle_scores(settings, versions[segment], date)
        assert {r["customer_id"] for r in stored} == set(want)
        assert max(abs(r["score"] - want[r["customer_id"]]) for r in stored) <= 1e-12
        held = _stored(settings, "quarantine", version, date)
        uncovered += [q for q in held if "has no champion" in q["reason"]]
        broken = [q for q in held if "has no champion" not in q["reason"]]
        assert len(stored) + len(broken) == channels[segment]  # the warehouse's rows
        run = night.results[f"pd_loans/{segment}"].run
        assert run.rows_in == len(stored) + len(held)
    assert len(uncovered) == channels["phone"] + channels["partner"]
    assert {json.loads(q["offending_values"])["channel"] for q in uncovered} == {
        "phone",
        "partner",
    }
    reason = "channel: segment 'phone' of model pd_loans has no champion"
    assert reason in {q["reason"] for q in uncovered}
    assert {q["model_version"] for q in uncovered} == {versions["branch"].model_version}


def test_the_pooled_champion_scores_the_rows_of_segments_without_one(loans):
    settings, dates, versions, _ = loans
    date = dates[-1]
    pipeline.promote(settings, versions[None].model_version, reason="the fallback")
    night = portfolio.run_night(settings, RunOptions(snapshot_date=date, **SMALL))
    assert "pd_loans/*" in night.results and not night.failed
    channels = _channels(settings, date)
    pooled = _stored(settings, "predictions", versions[None].model_version, date)
    held = _stored(settings, "quarantine", versions[None].model_version, date)
    assert len(pooled) + len(held) == channels["phone"] + channels["partner"]
    stored = query(
        settings,
        "SELECT COUNT(*) AS n, COUNT(DISTINCT customer_id) AS k FROM predictions "
        "WHERE snapshot_date = :d",
        {"d": date},
    )[0]
    assert stored["n"] == stored["k"]  # each customer scored once by the model
    no_champion = query(settings, "SELECT * FROM quarantine WHERE reason LIKE '%no champion'")
    assert no_champion == []


def test_a_segmented_models_units_share_its_importance_sample(loans, monkeypatch):
    """Four units (three channels and the pooled one) share the model's 600 sample rows:
    150 each (the floor lowered to 50 for this small book), not 600 each."""
    settings, dates, versions, _ = loans
    pipeline.promote(settings, versions[None].model_version, reason="the fallback")
    monkeypatch.setattr(portfolio, "MIN_SEGMENT_SAMPLE_ROWS", 50)
    options = RunOptions(snapshot_date=dates[-1], importance_sample_rows=600, importance_repeats=1)
    night = portfolio.run_night(settings, options)
    assert not night.failed and len(night.results) == 4
    for segment in (*CHAMPIONED, None):
        rows = query(
            settings,
            "SELECT DISTINCT sample_rows FROM feature_importance WHERE model_version = :v",
            {"v": versions[segment].model_version},
        )
        assert rows == [{"sample_rows": 150}], segment


def test_promoting_one_segment_leaves_every_other_champion(loans):
    settings, dates, versions, path = loans
    from credit_batch.model_file import training_options

    options = training_options(path, seed=7, algorithm="hgb")
    newer = pipeline.train(settings, until=dates[-2], segment="branch", **options)
    pipeline.promote(settings, newer.model_version, reason="a better branch model")
    with results.open_results(settings, read_only=True) as db:
        champions = {r.segment: r.model_version for r in registry.champions(db, settings)}
        with pytest.raises(errors.ParameterError, match="pd_loans/broker"):
            registry.champion(db, settings, "pd_loans")
        broker = registry.champion(db, settings, "pd_loans", segment="broker")
    assert champions == {
        "branch": newer.model_version,
        "broker": versions["broker"].model_version,
        "online": versions["online"].model_version,
    }
    assert broker.model_version == versions["broker"].model_version
    old = query(
        settings,
        "SELECT status FROM model_registry WHERE model_version = :v",
        {"v": versions["branch"].model_version},
    )
    assert old == [{"status": "retired"}]


def test_a_segment_trains_and_validates_on_its_own_rows(loans):
    settings, dates, versions, path = loans
    sql = "SELECT segment_by, segment, training_rows FROM model_registry WHERE model_version = :v"
    rows = {s: query(settings, sql, {"v": r.model_version})[0] for s, r in versions.items()}
    assert rows[None]["segment_by"] == "channel" and rows[None]["segment"] is None
    sql = "SELECT COUNT(*) AS n FROM loan_book WHERE channel = :c AND month_end <= :d"
    with connect(settings.warehouse_url) as wh:
        for segment in CHAMPIONED:  # at most its channel's rows (every row: 5000, the cap)
            held = wh.fetch_arrow(sql, {"c": segment, "d": dates[-2]}).to_pylist()[0]["n"]
            assert rows[segment]["segment"] == segment
            assert 50 <= rows[segment]["training_rows"] <= held < 5000
    with pytest.raises(errors.DataError, match="segment channel='nowhere'"):
        from credit_batch.model_file import training_options

        pipeline.train(settings, until=dates[-2], segment="nowhere", **training_options(path))


def test_a_model_file_segments_by_a_categorical_feature_only(tmp_path):
    path = _model_file(tmp_path)
    assert each_segment(path) == ["branch", "online", "broker", "phone", "partner", None]
    assert load_model_file(path).fallback == "pooled"
    bad = path.read_text().replace('segment_by = "channel"', 'segment_by = "income"')
    path.write_text(bad)
    with pytest.raises(errors.ModelFileError, match="segment_by.*categorical feature"):
        load_model_file(path)
    path.write_text(MODEL_FILE.format(spec=os.path.relpath(LENDER_SPEC_PATH, tmp_path)).replace(
        'segment_by = "channel"\n', ""
    ))  # fmt: skip
    with pytest.raises(errors.ModelFileError, match="fallback.*needs segment_by"):
        load_model_file(path)


#: A segmented model on the accounts spec of tests/unit/test_portfolio.py: champions for
#: two regions; "east", "west" and the undeclared "mars" have none.
REGIONS = ("north", "south")


def add_regions(settings: Settings, spec_path: Path) -> dict:
    """Register and promote ``pd_regions``, segmented by region, on the accounts spec."""
    import dataclasses

    own = dataclasses.replace(settings, spec_path=spec_path)
    done = {}
    for region in REGIONS:
        record = pipeline.train(
            own, until="2026-08-31", model_name="pd_regions", segment_by="region", segment=region
        )
        done[region] = pipeline.promote(settings, record.model_version, reason="its region")
    return done


def regions_oracle(settings: Settings, date) -> dict:
    """Rows each region's champion loads (its rows less those breaking the rules, SQL
    apart from the package), and the rows of regions without a champion."""
    from tests.unit.test_own_features import _BROKEN

    total = "SELECT COUNT(*) AS n FROM accounts WHERE as_of = :d AND region = :r"
    out = {}
    with connect(settings.warehouse_url) as wh:
        for region in REGIONS:
            n = wh.fetch_arrow(total, {"d": date, "r": region}).to_pylist()[0]["n"]
            bad = wh.fetch_arrow(_BROKEN + " AND region = :r", {"d": date, "r": region})
            out[region] = n - bad.to_pylist()[0]["n"]
        rest = "SELECT COUNT(*) AS n FROM accounts WHERE as_of = :d"
        rest += " AND region NOT IN ('north', 'south')"
        out["uncovered"] = wh.fetch_arrow(rest, {"d": date}).to_pylist()[0]["n"]
    return out


def test_the_training_dags_segment_param_trains_gates_that_segment_against_its_champion(loans):
    """What the training DAG's task calls with its Param ``segment``: a candidate of the
    one segment, validated out of time on its rows, met with that segment's champion;
    a segment without a segmented model file is refused by name."""
    from credit_batch import lifecycle

    settings, dates, versions, path = loans
    record = lifecycle.train_from_model_file(
        settings, str(path), cutoff=dates[-2], segment="broker", algorithm="hgb", actor="test"
    )
    assert (record.model_name, record.segment, record.status) == ("pd_loans", "broker", "candidate")
    validation = json.loads(
        query(settings, "SELECT validation FROM model_registry WHERE model_version = :v",
              {"v": record.model_version})[0]["validation"]
    )  # fmt: skip
    held = "SELECT COUNT(*) AS n FROM loan_book WHERE channel = 'broker' AND month_end = :d"
    with connect(settings.warehouse_url) as wh:
        want = wh.fetch_arrow(held, {"d": record.validation_date}).to_pylist()[0]["n"]
    assert 0 < validation["rows"] <= want  # its segment's rows of the held-out snapshot
    assert validation["champion_version"] == versions["broker"].model_version  # its own
    with pytest.raises(errors.ParameterError, match="segment.*needs a model file"):
        lifecycle.train_from_model_file(settings, None, cutoff=dates[-2], segment="broker")
