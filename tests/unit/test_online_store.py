"""The online store: each customer's newest batch features, written point-in-time safe,
read back to the bit, and scored now exactly as the night scored them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from types import SimpleNamespace

import pyarrow as pa
import pytest

from credit_batch import errors, pipeline, serve
from credit_batch.config import Settings
from credit_batch.features import default_spec
from credit_batch.run import RunOptions
from credit_batch.steps import online
from credit_batch.stores import lake, online_store
from tests.conftest import query

# Lanes per test: this file holds unit tests and tests that need PostgreSQL.

OLD, NEW = dt.date(2026, 8, 31), dt.date(2026, 9, 30)
SPEC = default_spec()


def _rows(date: dt.date, ids: list[int], *, age: float) -> pa.Table:
    """Lake rows of the GMSC spec for ``ids`` on ``date``; ``age`` marks the snapshot."""
    values = {name: [0.5] * len(ids) for name in SPEC.names}
    values["age"] = [age] * len(ids)
    values["monthly_income"] = [None] * len(ids)  # a missing value stays missing
    values["debt_ratio"] = [0.1 + 0.2 * i for i in range(len(ids))]  # not exact in binary
    table = {"snapshot_date": [date] * len(ids), "customer_id": ids, **values}
    return pa.Table.from_pydict(table, schema=SPEC.arrow_schema())


def _extract(settings: Settings, table: pa.Table, date: dt.date, spec=SPEC) -> dict:
    """Write ``table`` as the feature set's partition of ``date``, then materialize it."""
    out = lake.features_dir(settings.lake, date, feature_set=spec.feature_set)
    lake.write_parts(
        table.to_batches(max_chunksize=2), out, rows_per_part=3, schema=SPEC.arrow_schema()
    )
    return online_store.materialize(settings, spec, date)


def _stored(settings: Settings) -> dict:
    rows = query(settings, "SELECT customer_id, snapshot_date, features FROM online_features")
    names = SPEC.names  # the JSON array holds the features in the spec's order
    return {
        r["customer_id"]: (
            r["snapshot_date"],
            dict(zip(names, json.loads(r["features"]), strict=True)),
        )
        for r in rows
    }


def _newest_wins_and_a_backfill_changes_nothing(settings: Settings) -> None:
    first = _extract(settings, _rows(NEW, [1, 2, 3], age=40.0), NEW)
    assert (first["rows"], first["kept_newer"], first["repeated"]) == (3, 0, 0)
    backfill = _extract(settings, _rows(OLD, [2, 3, 4], age=30.0), OLD)
    assert (backfill["rows"], backfill["kept_newer"]) == (3, 2)  # 2 and 3 hold NEW
    stored = _stored(settings)
    assert {k: (d, f["age"]) for k, (d, f) in stored.items()} == {
        1: (NEW, 40.0), 2: (NEW, 40.0), 3: (NEW, 40.0), 4: (OLD, 30.0)
    }  # fmt: skip
    assert stored[2][1]["debt_ratio"] == 0.1 + 0.2 and stored[2][1]["monthly_income"] is None
    again = _extract(settings, _rows(NEW, [1, 2, 3], age=41.0), NEW)  # a rerun of NEW
    assert again["kept_newer"] == 0 and _stored(settings)[1] == (NEW, {**stored[1][1], "age": 41.0})
    assert len(_stored(settings)) == 4
    found = online_store.features_of(settings, SPEC, 4)
    assert found["snapshot_date"] == OLD and found["features"] == stored[4][1]
    assert online_store.features_of(settings, SPEC, 99) is None


@pytest.mark.unit
def test_a_backfill_of_an_older_snapshot_never_replaces_a_newer_row_duckdb(tmp_path):
    _newest_wins_and_a_backfill_changes_nothing(Settings(home=tmp_path))


@pytest.mark.services
@pytest.mark.postgres
def test_a_backfill_of_an_older_snapshot_never_replaces_a_newer_row_postgresql(tmp_path, pg_url):
    _newest_wins_and_a_backfill_changes_nothing(
        Settings(home=tmp_path, results_url=pg_url, warehouse_url=pg_url)
    )


@pytest.mark.services
def test_a_backfill_of_an_older_snapshot_never_replaces_a_newer_row_redis(tmp_path):
    """The same promises of the Redis online store (``CREDIT_BATCH_ONLINE_URL``), on a feature
    set of this test's own (its keys deleted after)."""
    import uuid

    import redis

    from credit_batch.stores.online_redis import PREFIX
    from tests.conftest import redis_answers, services_required

    if not redis_answers():
        reason = "Redis is not running on 127.0.0.1:6379"
        pytest.fail(reason) if services_required() else pytest.skip(reason)
    url = "redis://127.0.0.1:6379/0"
    spec = dataclasses.replace(SPEC, name=f"redis_{uuid.uuid4().hex[:8]}")
    settings = Settings(home=tmp_path, online_url=url)
    client = redis.Redis.from_url(url)
    try:
        first = _extract(settings, _rows(NEW, [1, 2, 3], age=40.0), NEW, spec)
        assert (first["rows"], first["kept_newer"], first["repeated"]) == (3, 0, 0)
        backfill = _extract(settings, _rows(OLD, [2, 3, 4], age=30.0), OLD, spec)
        assert (backfill["rows"], backfill["kept_newer"]) == (3, 2)
        found = online_store.features_of_many(settings, spec, [1, 2, 3, 4, 99])
        assert {k: (r["snapshot_date"], r["features"]["age"]) for k, r in found.items()} == {
            1: (NEW, 40.0), 2: (NEW, 40.0), 3: (NEW, 40.0), 4: (OLD, 30.0)
        }  # fmt: skip
        assert found[2]["features"]["debt_ratio"] == 0.1 + 0.2  # to the bit
        assert found[2]["features"]["monthly_income"] is None
        repeated = _extract(settings, _rows(NEW, [5, 5, 6], age=41.0), NEW, spec)
        assert (repeated["rows"], repeated["repeated"]) == (1, 1)
        assert sorted(online_store.features_of_many(settings, spec, [5, 6])) == [6]
    finally:
        keys = list(client.scan_iter(f"{PREFIX}:{spec.feature_set}:*"))
        client.delete(*keys) if keys else None
        client.close()
    assert len(keys) == 5  # customers 1, 2, 3, 4 and 6: nothing in the results database
    assert not (tmp_path / "results.duckdb").exists()


@pytest.mark.unit
def test_a_customer_repeated_in_a_snapshot_is_left_out_and_counted(tmp_path):
    settings = Settings(home=tmp_path)
    done = _extract(settings, _rows(NEW, [1, 2, 2, 3], age=40.0), NEW)
    assert (done["rows"], done["repeated"]) == (2, 1)
    assert sorted(_stored(settings)) == [1, 3]


@pytest.mark.unit
def test_the_services_index_answers_as_the_table_does(tmp_path):
    settings = Settings(home=tmp_path)
    _extract(settings, _rows(NEW, [5, 1, 3], age=40.0), NEW)
    index = online_store.index_of(online_store.feature_tables(settings))
    for customer in (1, 3, 5, 2, 9):
        want = online_store.features_of(settings, SPEC, customer)
        assert online_store.indexed(index, SPEC, customer) == want, customer
    [held] = online_store.feature_sets(settings)
    assert (held["feature_set"], held["customers"], held["newest_snapshot"]) == (
        SPEC.feature_set, 3, NEW
    )  # fmt: skip


@pytest.fixture(scope="module")
def night(tmp_path_factory, demo_template):
    """The demo home scored on one snapshot (the night materialized its features)."""
    import shutil

    home = tmp_path_factory.mktemp("online") / "home"
    shutil.copytree(demo_template[0], home)
    settings = Settings(home=home)
    plan = pipeline.extract(settings, RunOptions(snapshot_date=NEW))
    scored = list(pipeline.score_partitions(settings, plan.run, plan.partitions, workers=1))
    pipeline.load(settings, plan.run, scored)
    pipeline.materialize(settings, plan.run)
    return settings, demo_template[2]


@pytest.mark.unit
def test_stored_features_are_the_lakes_to_the_bit(night):
    settings, _ = night
    parts = lake.features_parts(settings.lake, NEW, feature_set=SPEC.feature_set)
    rows = lake.dataset(settings.lake, [p.uri for p in parts], SPEC.arrow_schema()).to_table()
    stored = _stored(settings)
    assert len(stored) == rows.num_rows
    for row in rows.slice(0, 500).to_pylist():
        date, features = stored[row["customer_id"]]
        assert date == NEW
        for name in SPEC.names:  # == on floats: the very same bits (or both missing)
            assert features[name] == row[name], (row["customer_id"], name)


@pytest.mark.unit
def test_scoring_now_from_stored_features_gives_the_nights_stored_score(night):
    settings, record = night
    stored = query(
        settings,
        "SELECT * FROM predictions WHERE snapshot_date = :d ORDER BY customer_id LIMIT 40",
        {"d": NEW},
    )
    assert len(stored) == 40
    for want in stored:
        got = serve.score_now(settings, str(want["customer_id"]))
        assert (got["score"], got["risk_band"], got["points"]) == (
            want["score"], want["risk_band"], want["points"]
        )  # fmt: skip
        assert got["reasons"][0]["feature"] == want["reason_1"]
        assert got["reasons"][0]["value"] == want["reason_1_value"]
        assert got["features_snapshot_date"] == NEW
        assert got["model_version"] == want["model_version"]
        assert got["feature_set"] == record.feature_spec.feature_set and got["overridden"] == []


@pytest.mark.unit
def test_a_customer_without_stored_features_is_a_clear_error(night):
    settings, record = night
    with pytest.raises(errors.DataError, match=r"no stored features of customer 987654 in "
                       rf"feature set {record.feature_spec.feature_set}"):  # fmt: skip
        serve.score_now(settings, 987654)
    with pytest.raises(errors.ParameterError, match="customer id"):
        serve.score_now(settings, "not-a-number")


def _with_request_time(record, name: str):
    """``record`` with ``name`` declared a request-time feature of its spec."""
    data = record.feature_spec.to_dict()
    for feature in data["features"]:
        feature["request_time"] = feature["name"] == name
    return dataclasses.replace(record, spec=json.dumps(data))


@pytest.mark.unit
def test_a_request_time_feature_from_the_request_scores_as_an_applicant_with_it(night):
    settings, record = night
    from credit_batch.stores import registry

    asking = _with_request_time(record, "monthly_income")
    model = registry.load_model(
        settings, record.artifact_path, record.sha256, version=record.model_version
    )
    stored = online_store.features_of(settings, SPEC, 1)
    got = online.score_customer(
        settings, model, asking, 1, stored, overrides={"monthly_income": 12_345}
    )
    fields = {**stored["features"], "monthly_income": 12_345}
    want = online.score_applicant(settings, model, asking, fields)
    assert got["score"] == want["score"] and got["overridden"] == ["monthly_income"]
    unchanged = online.score_customer(settings, model, asking, 1, stored)
    assert unchanged["score"] != got["score"]
    with pytest.raises(online.ApplicantError, match=r"age is not a request-time feature of the "
                       r"model \(monthly_income\); got 30"):  # fmt: skip
        online.score_customer(settings, model, asking, 1, stored, overrides={"age": 30})
    with pytest.raises(online.ApplicantError, match="monthly_income must be a number"):
        online.score_customer(settings, model, asking, 1, stored, overrides={"monthly_income": "x"})


@pytest.mark.unit
def test_a_segmented_model_scores_with_the_segments_champion_else_the_pooled_one():
    def unit(segment):
        return (SimpleNamespace(segment_by="country", segment=segment), segment)

    pooled, de, fr = unit(None), unit("DE"), unit("FR")
    assert online.champion_for([pooled, de, fr], {"country": "FR"}, model_name="m") is fr
    assert online.champion_for([pooled, de, fr], {"country": "IT"}, model_name="m") is pooled
    with pytest.raises(errors.NoChampionError, match="segment 'IT' of model m has no champion"):
        online.champion_for([de, fr], {"country": "IT"}, model_name="m")
    plain = (SimpleNamespace(segment_by=None, segment=None), "only")
    assert online.champion_for([plain], {}, model_name="m") is plain


@pytest.mark.unit
def test_scoring_now_follows_a_promotion_at_once_and_the_service_within_its_refresh(demo):
    """A customer asks at 11:00; the model promoted at 10:00 decides, not last night's."""
    import time

    from fastapi.testclient import TestClient

    settings, written, old = demo
    plan = pipeline.extract(settings, RunOptions(snapshot_date=NEW))
    pipeline.materialize(settings, plan.run)
    client = TestClient(serve.create_app(settings))
    client.headers["Authorization"] = f"Bearer {serve.create_api_key(settings, 'now')}"
    route = "/v1/models/gmsc/customers/1/score"
    assert client.post(route).json()["model_version"] == old.model_version
    new = pipeline.train(settings, until=written[-3]["snapshot_date"], seed=2, model_name="gmsc")
    pipeline.promote(settings, new.model_version, reason="the 10:00 promotion")
    assert new.model_version != old.model_version
    assert serve.score_now(settings, 1)["model_version"] == new.model_version  # at once
    t0 = time.monotonic()
    while client.post(route).json()["model_version"] != new.model_version:
        assert time.monotonic() - t0 < serve.CACHE_SECONDS + 1.0, "the service kept the old one"
        time.sleep(0.05)
