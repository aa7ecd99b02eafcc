"""The run's steps without Airflow, on DuckDB files: exact counts, idempotence, bad input."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from credit_batch import errors, pipeline
from credit_batch.run import RunOptions
from tests.conftest import DEMO_ROWS, expected_counts, query, run_pipeline

pytestmark = pytest.mark.unit

SLICE = "SELECT * FROM predictions WHERE snapshot_date = :d ORDER BY customer_id"


def _counts(settings):
    return query(
        settings,
        "SELECT snapshot_date, model_version, COUNT(*) AS n, "
        "COUNT(DISTINCT customer_id) AS c FROM predictions GROUP BY 1, 2 ORDER BY 1",
    )


def test_run_stores_exactly_one_score_per_customer_with_lineage(demo):
    settings, written, record = demo
    out = run_pipeline(
        settings,
        snapshot_date="2026-09-30",
        rows_per_partition=700,
        chunk_rows=250,
        sample_rows=1_000,
        repeats=2,
    )
    want = expected_counts(settings, dt.date(2026, 9, 30))
    assert want["rows_in"] == DEMO_ROWS and want["quarantined"] > 0
    assert len(out["plan"].partitions) == 5  # 3,000 rows / 700
    assert _counts(settings) == [
        {
            "snapshot_date": dt.date(2026, 9, 30),
            "model_version": record.model_version,
            "n": want["scored"],
            "c": want["scored"],
        }
    ]
    rows = query(settings, SLICE, {"d": dt.date(2026, 9, 30)})
    assert {r["run_id"] for r in rows} == {out["plan"].run.run_id}
    assert all(0 < r["score"] < 1 and r["risk_band"] in {"A", "B", "C", "D", "E"} for r in rows)
    [run] = query(settings, "SELECT * FROM scoring_runs")
    assert (run["rows_in"], run["rows_scored"], run["rows_quarantined"]) == (
        DEMO_ROWS,
        want["scored"],
        want["quarantined"],
    )
    quarantined = query(settings, "SELECT * FROM quarantine")
    assert len(quarantined) == want["quarantined"]
    assert all("notin([96.0, 98.0])" in q["reason"] or "age" in q["reason"] for q in quarantined)
    scored_ids = {r["customer_id"] for r in rows}
    assert not scored_ids & {q["customer_id"] for q in quarantined}
    assert run["status"] == "loaded" and run["importance_status"] == "computed"
    assert run["load_seconds"] > 0 and run["partitions"] == 5


def test_every_score_carries_reason_codes_and_the_run_a_shap_summary(demo):
    settings, _, record = demo
    run_pipeline(settings, snapshot_date="2026-09-30", sample_rows=500, repeats=1)
    rows = query(settings, SLICE, {"d": dt.date(2026, 9, 30)})
    with_reason = [r for r in rows if r["reason_1"] is not None]
    assert len(with_reason) > 0.99 * len(rows)
    assert all(r["reason_1_value"] >= (r["reason_2_value"] or 0) > -1e-12 for r in with_reason)
    risky = max(rows, key=lambda r: r["score"])
    assert risky["reason_1_value"] > 0.5
    summary = query(settings, "SELECT * FROM shap_summary ORDER BY importance_rank")
    assert [s["importance_rank"] for s in summary] == list(range(1, 14))
    assert {s["rows_explained"] for s in summary} == {len(rows)}
    assert summary[0]["mean_abs_shap"] >= summary[-1]["mean_abs_shap"] >= 0
    texts = query(
        settings,
        "SELECT f.reason_text FROM predictions p JOIN feature_reasons f "
        "ON f.feature = p.reason_1 WHERE p.customer_id = :c",
        {"c": risky["customer_id"]},
    )
    assert texts and texts[0]["reason_text"]
    dependence = query(
        settings, "SELECT feature, COUNT(*) AS n FROM partial_dependence GROUP BY 1 ORDER BY 1"
    )
    top = query(
        settings,
        "SELECT feature FROM feature_importance WHERE method = "
        "'permutation_unlabeled' AND importance_rank <= 3",
    )
    assert {d["feature"] for d in dependence} == {t["feature"] for t in top}
    assert all(2 <= d["n"] <= 20 for d in dependence)


def test_rerun_of_same_date_and_model_leaves_identical_rows(demo):
    settings, _, _ = demo
    run_pipeline(settings, snapshot_date="2026-09-30", sample_rows=500, repeats=1)
    first = query(settings, SLICE, {"d": dt.date(2026, 9, 30)})
    run_pipeline(settings, snapshot_date="2026-09-30", sample_rows=500, repeats=1)
    second = query(settings, SLICE, {"d": dt.date(2026, 9, 30)})
    strip = [{k: v for k, v in r.items() if k != "run_id"} for r in first]
    assert strip == [{k: v for k, v in r.items() if k != "run_id"} for r in second]


def test_other_partition_sizes_give_the_same_rows_and_scores_within_rounding(demo):
    """BLAS sums in an order that depends on the chunk's length: scores agree to 1e-12."""
    settings, _, _ = demo
    run_pipeline(settings, snapshot_date="2026-09-30", rows_per_partition=700, chunk_rows=300)
    first = query(settings, SLICE, {"d": dt.date(2026, 9, 30)})
    run_pipeline(settings, snapshot_date="2026-09-30", rows_per_partition=1_000)
    second = query(settings, SLICE, {"d": dt.date(2026, 9, 30)})
    assert [r["customer_id"] for r in first] == [r["customer_id"] for r in second]
    assert [r["risk_band"] for r in first] == [r["risk_band"] for r in second]
    assert max(abs(a["score"] - b["score"]) for a, b in zip(first, second, strict=True)) < 1e-12
    assert len(second) == expected_counts(settings, dt.date(2026, 9, 30))["scored"]
    assert (
        len(query(settings, "SELECT * FROM quarantine"))
        == expected_counts(settings, dt.date(2026, 9, 30))["quarantined"]
    )
    assert len(query(settings, "SELECT * FROM scoring_runs")) == 2
    assert len(query(settings, "SELECT * FROM feature_importance")) == 26  # with, without labels


def test_another_date_adds_its_slice_only(demo):
    settings, _, record = demo
    run_pipeline(settings, snapshot_date="2026-09-30", sample_rows=500, repeats=1)
    before = query(settings, SLICE, {"d": dt.date(2026, 9, 30)})
    run_pipeline(settings, as_of="2026-11-20", sample_rows=500, repeats=1)
    assert [(r["snapshot_date"], r["n"]) for r in _counts(settings)] == [
        (dt.date(2026, 9, 30), expected_counts(settings, dt.date(2026, 9, 30))["scored"]),
        (dt.date(2026, 10, 31), expected_counts(settings, dt.date(2026, 10, 31))["scored"]),
    ]
    assert query(settings, SLICE, {"d": dt.date(2026, 9, 30)}) == before


def test_snapshot_without_outcomes_skips_importance_and_says_so(demo):
    settings, _, _ = demo
    out = run_pipeline(settings, snapshot_date="2026-10-31")
    assert out["explained"]["importance_status"].startswith("skipped: no outcomes")
    [run] = query(settings, "SELECT importance_status FROM scoring_runs")
    assert "2026-10-31" in run["importance_status"]
    methods = query(settings, "SELECT method, COUNT(*) AS n FROM feature_importance GROUP BY 1")
    assert methods == [{"method": "permutation_unlabeled", "n": 13}]


def test_latest_predictions_view_holds_each_customers_newest_champion_score(demo):
    settings, _, record = demo
    run_pipeline(settings, snapshot_date="2026-09-30", sample_rows=500, repeats=1)
    run_pipeline(settings, snapshot_date="2026-10-31")
    latest = query(settings, "SELECT customer_id, snapshot_date FROM latest_predictions")
    customers = query(settings, "SELECT COUNT(DISTINCT customer_id) AS n FROM predictions")
    assert len(latest) == customers[0]["n"] > DEMO_ROWS - 20  # churned customers keep old scores
    assert {r["snapshot_date"] for r in latest} == {dt.date(2026, 9, 30), dt.date(2026, 10, 31)}


def _nothing_written(settings) -> bool:
    from pathlib import Path

    db = Path(settings.results_url.removeprefix("duckdb:///"))
    return not (Path(settings.lake_url) / "scores").exists() and (
        not db.exists() or query(settings, "SELECT * FROM predictions") == []
    )


def test_date_with_no_snapshot_stops_with_one_line_error_and_writes_nothing(demo):
    settings, _, _ = demo
    with pytest.raises(errors.SnapshotNotFoundError) as info:
        pipeline.extract(settings, RunOptions(snapshot_date="2026-10-15"))
    assert "2026-10-15" in str(info.value) and "\n" not in str(info.value)
    assert not (Path(settings.lake_url) / "features").exists()
    assert _nothing_written(settings)


def test_unknown_model_version_stops_with_one_line_error_and_writes_nothing(demo):
    settings, _, _ = demo
    with pytest.raises(errors.ModelNotFoundError, match="'logreg-19990101-deadbeef00'"):
        pipeline.extract(
            settings,
            RunOptions(snapshot_date="2026-09-30", model_version="logreg-19990101-deadbeef00"),
        )
    assert not (Path(settings.lake_url) / "features").exists()
    assert _nothing_written(settings)


def test_tampered_artifact_is_refused_before_loading_and_nothing_is_stored(demo):
    settings, _, record = demo
    artifact = settings.home / record.artifact_path
    plan = pipeline.extract(settings, RunOptions(snapshot_date="2026-09-30"))
    artifact.write_bytes(artifact.read_bytes() + b"\x00")
    with pytest.raises(errors.ArtifactIntegrityError, match="sha256") as info:
        pipeline.score_partition(settings, plan.run, plan.partitions[0])
    assert record.model_version in str(info.value) and "\n" not in str(info.value)
    shutil.rmtree(Path(settings.lake_url) / "features")
    with pytest.raises(errors.ArtifactIntegrityError, match="refusing to load a changed"):
        pipeline.extract(settings, RunOptions(snapshot_date="2026-09-30"))
    assert not (Path(settings.lake_url) / "features").exists()  # refused before reading
    assert _nothing_written(settings)


def test_load_refuses_partitions_that_do_not_add_up_and_keeps_the_old_slice(demo):
    settings, _, _ = demo
    run_pipeline(settings, snapshot_date="2026-09-30", sample_rows=500, repeats=1)
    before = query(settings, SLICE, {"d": dt.date(2026, 9, 30)})
    plan = pipeline.extract(
        settings, RunOptions(snapshot_date="2026-09-30", rows_per_partition=1_000)
    )
    scored = [pipeline.score_partition(settings, plan.run, p) for p in plan.partitions]
    with pytest.raises(errors.ReconciliationError, match="nothing was loaded"):
        pipeline.load(settings, plan.run, scored[:-1])
    assert query(settings, SLICE, {"d": dt.date(2026, 9, 30)}) == before


def test_model_without_champion_is_named(tmp_path):
    from tests.conftest import build_demo, make_settings

    settings = make_settings(tmp_path)
    build_demo(settings, rows=400, promote=False)
    with pytest.raises(errors.NoChampionError, match="credit-batch promote"):
        pipeline.extract(settings, RunOptions(snapshot_date="2026-09-30"))


def test_promote_retires_the_previous_champion(demo):
    from credit_batch.stores import registry, results

    settings, written, first = demo
    second = pipeline.train(settings, until=written[-2]["snapshot_date"], algorithm="hgb")
    with results.open_results(settings) as db:
        registry.promote(db, settings, second.model_version)
    status = {
        r["model_version"]: r["status"]
        for r in query(settings, "SELECT model_version, status FROM model_registry")
    }
    assert status == {first.model_version: "retired", second.model_version: "champion"}


def test_retraining_on_the_same_inputs_gives_the_same_version_and_writes_nothing(demo):
    from credit_batch.stores.lake import sha256_file

    settings, written, first = demo
    artifact = settings.home / first.artifact_path
    stamp = artifact.stat().st_mtime_ns
    again = pipeline.train(settings, until=written[-3]["snapshot_date"], seed=1)
    assert again.model_version == first.model_version
    assert again.sha256 == first.sha256 == sha256_file(artifact)
    assert artifact.stat().st_mtime_ns == stamp
    assert len(query(settings, "SELECT model_version FROM model_registry")) == 1


def test_retraining_with_another_seed_registers_a_new_candidate_and_keeps_the_champion(demo):
    settings, written, first = demo
    again = pipeline.train(settings, until=written[-3]["snapshot_date"], seed=2)
    assert again.model_version != first.model_version
    status = {
        r["model_version"]: r["status"]
        for r in query(settings, "SELECT model_version, status FROM model_registry")
    }
    assert status == {first.model_version: "champion", again.model_version: "candidate"}
    assert (settings.home / again.artifact_path).name == "model.skops"


def test_artifact_with_an_untrusted_type_is_refused_even_with_a_matching_sha(demo):
    """A registry row pointing at a hostile file: skops refuses to build its types."""
    import skops.io

    from credit_batch.stores import registry
    from credit_batch.stores.lake import sha256_file

    settings, _, record = demo
    hostile = settings.home / "models" / "hostile.skops"
    skops.io.dump({"payload": _Hostile()}, hostile)
    with pytest.raises(errors.ArtifactIntegrityError, match="cannot be loaded safely"):
        registry.load_model(
            settings, "models/hostile.skops", sha256_file(hostile), version="hostile"
        )


class _Hostile:
    """A type no trusted list names."""
