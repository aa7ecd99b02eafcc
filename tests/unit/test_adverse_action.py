"""Adverse-action reasons: at most four, the largest contributions towards decline, stored
with the night's scores, identical on every run, process and backend."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json

import numpy as np
import pyarrow as pa
import pytest

from credit_batch import catalog, cli
from credit_batch.steps import adverse_action, explain
from credit_batch.stores import lake, registry
from tests.conftest import query, run_pipeline

NEWEST = dt.date(2026, 10, 31)
NAMES = ["a", "b", "c", "d", "e", "f"]
TEXTS = {n: f"text of {n}" for n in NAMES}


def _batch(values: dict, ids) -> pa.RecordBatch:
    columns = {
        "snapshot_date": pa.array([NEWEST] * len(ids), pa.date32()),
        "customer_id": pa.array(ids, pa.int64()),
    }
    return pa.RecordBatch.from_pydict({**columns, **values})


def _reasons(batch, scores, contributions, *, cutoff=0.5, names=NAMES):
    return adverse_action.principal_reasons(
        batch,
        np.asarray(scores, dtype=float),
        np.asarray(contributions, dtype=float),
        feature_names=names,
        texts={n: f"text of {n}" for n in names},
        cutoff=cutoff,
        model_version="v1",
        run_id="r1",
    ).to_pylist()


@pytest.mark.unit
def test_reasons_are_the_four_largest_positive_contributions_ties_to_the_first_feature():
    values = {n: pa.array([1.5, 2.0, None], pa.float64()) for n in NAMES}
    contributions = [
        [0.1, 0.9, -2.0, 0.3, 0.3, 0.2],  # declined: b, d, e (tie: d first), f
        [-0.1, -0.2, 0.0, 0.4, -0.3, -0.4],  # declined, only d pushes up
        [5.0, 5.0, 5.0, 5.0, 5.0, 5.0],  # accepted: no reasons at all
    ]
    rows = _reasons(_batch(values, [7, 8, 9]), [0.9, 0.6, 0.2], contributions)
    got = [(r["customer_id"], r["reason_rank"], r["feature"], r["contribution"]) for r in rows]
    assert got == [
        (7, 1, "b", 0.9),
        (7, 2, "d", 0.3),
        (7, 3, "e", 0.3),
        (7, 4, "f", 0.2),
        (8, 1, "d", 0.4),
    ]
    assert {r["reason_text"] for r in rows} == {"text of b", "text of d", "text of e", "text of f"}
    assert [r["value"] for r in rows] == [1.5] * 4 + [2.0]
    assert all(r["category"] is None for r in rows)
    assert {(r["score"], r["cutoff"], r["model_version"]) for r in rows[:4]} == {(0.9, 0.5, "v1")}


@pytest.mark.unit
def test_a_score_at_the_cutoff_is_accepted_and_a_missing_value_is_null_not_a_number():
    values = {"a": pa.array([None, 3.0]), "b": pa.array(["rent", "own"])}
    batch = _batch(values, [1, 2])
    rows = _reasons(batch, [0.5, 0.5000001], [[1.0, 0.5], [1.0, 0.5]], names=["a", "b"])
    assert [(r["customer_id"], r["feature"], r["value"], r["category"]) for r in rows] == [
        (2, "a", 3.0, None),
        (2, "b", None, "own"),
    ]
    rows = _reasons(batch, [0.9, 0.1], [[1.0, 0.5], [0.0, 0.0]], names=["a", "b"])
    assert [(r["feature"], r["value"], r["category"]) for r in rows] == [
        ("a", None, None),  # missing: neither a number nor a level
        ("b", None, "rent"),
    ]


@pytest.mark.unit
def test_more_than_four_reasons_is_refused_by_name():
    batch = _batch({"a": pa.array([1.0])}, [1])
    with pytest.raises(ValueError, match=r"k: must be in \[1, 4\]; got 5"):
        adverse_action.principal_reasons(
            batch, np.ones(1), np.ones((1, 1)), feature_names=["a"], texts={"a": "a"},
            cutoff=0.5, model_version="v", run_id="r", k=5,
        )  # fmt: skip


def _stored(settings, date=NEWEST) -> list[dict]:
    return query(
        settings,
        "SELECT customer_id, model_version, score, cutoff, reason_rank, feature, reason_text, "
        "contribution, value FROM adverse_action WHERE snapshot_date = :d "
        "ORDER BY customer_id, reason_rank",
        {"d": date},
    )


@pytest.fixture(scope="module")
def night(tmp_path_factory, demo_template):
    """The demo's newest snapshot scored once (its adverse-action rows are read, not changed)."""
    import shutil

    from credit_batch.config import Settings

    home = tmp_path_factory.mktemp("adverse") / "home"
    shutil.copytree(demo_template[0], home)
    settings = Settings(home=home)
    out = run_pipeline(settings, snapshot_date=NEWEST, sample_rows=500, repeats=1)
    return settings, out


@pytest.mark.unit
def test_each_decline_is_stored_with_the_top_contributions_recomputed_from_the_lake(night):
    settings, out = night
    run = out["plan"].run
    stored = _stored(settings)
    scores = query(
        settings,
        "SELECT customer_id, score, reason_1, reason_2, reason_3 FROM predictions "
        "WHERE snapshot_date = :d ORDER BY customer_id",
        {"d": NEWEST},
    )
    declined = [s for s in scores if s["score"] > run.policy.swap_cutoff]
    assert 0 < len(declined) < len(scores)
    sql = "SELECT rows_declined FROM scoring_runs WHERE run_id = :r"
    [record] = query(settings, sql, {"r": run.run_id})
    assert record["rows_declined"] == len(declined)
    assert sorted({r["customer_id"] for r in stored}) == [s["customer_id"] for s in declined]
    # the contributions again, from the extracted features and the version's model
    ids = [s["customer_id"] for s in declined]
    parts = [p["path"] for p in out["plan"].partitions]
    frame = lake.dataset(settings.lake, parts, run.spec.arrow_schema()).to_table().to_pandas()
    frame = frame.set_index("customer_id").loc[ids]
    model = registry.load_model(settings, run.artifact_path, run.sha256, version=run.model_version)
    _, phi, _ = explain.explain(
        model, frame[list(run.features)], background=run.explainer_background
    )
    by_customer = {}
    for r in stored:
        by_customer.setdefault(r["customer_id"], []).append(r)
    for i, (customer, row) in enumerate(zip(ids, declined, strict=True)):
        order = np.argsort(-phi[i], kind="stable")[:4]
        expected = [(run.features[j], phi[i, j]) for j in order if phi[i, j] > 0]
        got = by_customer[customer]
        assert [g["feature"] for g in got] == [f for f, _ in expected]
        np.testing.assert_allclose([g["contribution"] for g in got], [v for _, v in expected],
                                   rtol=0, atol=1e-9)  # fmt: skip
        assert [g["feature"] for g in got][:3] == [
            row[f"reason_{k}"] for k in (1, 2, 3) if row[f"reason_{k}"]
        ]
        assert all(_same(g["value"], frame.loc[customer, g["feature"]]) for g in got)
    texts = run.spec.reasons
    assert all(r["reason_text"] == texts[r["feature"]] and r["contribution"] > 0 for r in stored)


def _same(stored: float | None, value: float) -> bool:
    """The stored value is the value scored, to the bit (null where it was missing)."""
    return stored is None if value != value else stored == value


@pytest.mark.unit
def test_rerun_in_two_processes_leaves_identical_adverse_action_rows(night, tmp_path):
    import shutil

    from credit_batch.config import Settings

    settings, _ = night
    before = _stored(settings)
    home = tmp_path / "home"
    shutil.copytree(settings.home, home)
    again = Settings(home=home)
    run_pipeline(again, snapshot_date=NEWEST, rows_per_partition=900, workers=2, repeats=1)
    assert _stored(again) == before


@pytest.mark.unit
def test_cli_prints_each_decline_as_a_notice_and_csv_as_rows(night, monkeypatch):
    settings, _ = night
    monkeypatch.setenv("CREDIT_BATCH_HOME", str(settings.home))
    stored = _stored(settings)
    first = stored[0]["customer_id"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["adverse-action", "--date", str(NEWEST), "--json"]) == 0
    notices = json.loads(out.getvalue())
    assert len(notices) == len({r["customer_id"] for r in stored})
    mine = [r for r in stored if r["customer_id"] == first]
    assert notices[0]["customer_id"] == first
    assert [r["feature"] for r in notices[0]["reasons"]] == [r["feature"] for r in mine]
    assert notices[0]["model_name"] == "gmsc" and 1 <= len(notices[0]["reasons"]) <= 4
    found = catalog.adverse_action(settings, NEWEST, customer_id=first)
    assert [r["reason_rank"] for r in found] == list(range(1, len(mine) + 1))
    assert catalog.adverse_action(settings, NEWEST, model_name="nobody") == []
    assert catalog.adverse_action(settings, dt.date(2026, 1, 31)) == []


@pytest.mark.services
@pytest.mark.postgres
def test_postgresql_stores_the_same_reasons_as_duckdb_for_the_same_night_to_the_bit(night, pg_demo):
    """The same warehouse rows and training seed on both backends: equal declines, ranks,
    texts, values and contributions (the closed form sums in a fixed order)."""
    settings, _ = night
    pg_settings, _, _ = pg_demo
    run_pipeline(pg_settings, snapshot_date=NEWEST, sample_rows=500, repeats=1)
    duck, pg = _stored(settings), _stored(pg_settings)
    assert len(pg) == len(duck) > 0
    key = ("customer_id", "reason_rank", "feature", "reason_text", "value", "cutoff", "score")
    key += ("contribution",)
    assert [tuple(r[k] for k in key) for r in pg] == [tuple(r[k] for k in key) for r in duck]
