"""Streaming features: the spec's rules, and their two twins (over the events in Python, and
the warehouse's SQL) equal customer by customer and instant by instant, on a real DuckDB file
and on PostgreSQL."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from credit_batch.config import EXAMPLE_SPECS, Settings
from credit_batch.errors import SpecError
from credit_batch.features import FeatureSpec, load_spec
from credit_batch.stores import db as dbs
from credit_batch.stores.db import read_sql
from credit_batch.windows import instant_sql, micros, values_at

SPEC = load_spec(EXAMPLE_SPECS["streaming"])
T0 = dt.datetime(2026, 11, 1)


def _events(seed: int = 0, customers: int = 12) -> pa.Table:
    """Random events of the spec's kinds, plus events on the windows' edges of customer 1."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(400):
        at = T0 - dt.timedelta(seconds=int(rng.integers(0, 35 * 86400)),
                               microseconds=int(rng.integers(0, 10**6)))  # fmt: skip
        kind = "payment" if rng.random() < 0.3 else "card"
        rows.append(
            (
                f"r{i}",
                int(rng.integers(1, customers + 1)),
                kind,
                at,
                int(rng.random() < 0.4) if kind == "payment" else None,
                float(rng.lognormal(3, 1)),
            )
        )  # fmt: skip  (more than 6 decimals)
    edges = [T0, T0 - dt.timedelta(days=1), T0 - dt.timedelta(days=7), T0 - dt.timedelta(days=30)]
    for j, at in enumerate(edges):  # on each window's start (left out) and end (counted)
        rows.append((f"edge-card-{j}", 1, "card", at, None, 10.25))
        rows.append((f"edge-pay-{j}", 1, "payment", at, 1, 99.0))
    names = ["event_id", "customer_id", "kind", "event_at", "missed", "amount"]
    return pa.table(dict(zip(names, zip(*rows, strict=True), strict=True)))


def _by_kind(table: pa.Table, customer: int) -> dict:
    out: dict = {}
    for row in table.to_pylist():
        if row["customer_id"] == customer:
            fields = {"missed": row["missed"], "amount": row["amount"]}
            out.setdefault(row["kind"], []).append((micros(row["event_at"]), fields))
    return out


def _instants() -> list[dt.datetime]:
    edges = [T0, T0 + dt.timedelta(days=1), T0 + dt.timedelta(days=7), T0 + dt.timedelta(days=30)]
    return [*edges, T0 - dt.timedelta(days=3, minutes=17), T0 - dt.timedelta(seconds=1),
            T0 + dt.timedelta(microseconds=1)]  # fmt: skip


def _check_parity(db, table: pa.Table) -> int:
    sql, checked = instant_sql(SPEC), 0
    for customer in range(1, 13):
        events = _by_kind(table, customer)
        for at in _instants():
            offline = db.fetch_arrow(sql, {"customer_id": customer, "at": at}).to_pylist()[0]
            online = values_at(SPEC, events, micros(at))
            for name, value in online.items():
                assert offline[name] == value, (name, customer, at, offline[name], value)
                checked += 1
    return checked


@pytest.mark.unit
def test_the_sql_twin_equals_the_online_value_for_every_customer_and_instant_on_duckdb(tmp_path):
    table = _events()
    with dbs.connect(f"duckdb:///{tmp_path / 'wh.duckdb'}") as db:
        db.run_script(read_sql(Settings(home=tmp_path).sql_dir, "specs/streaming/warehouse.sql"))
        db.bulk_insert("events", table)
        assert _check_parity(db, table) == 12 * len(_instants()) * 3


@pytest.mark.services
@pytest.mark.postgres
def test_the_sql_twin_equals_the_online_value_on_postgresql(pg_url, tmp_path):
    table = _events(seed=1)
    with dbs.connect(pg_url) as db:
        db.run_script(read_sql(Settings(home=tmp_path).sql_dir, "specs/streaming/warehouse.sql"))
        db.bulk_insert("events", table)
        assert _check_parity(db, table) == 12 * len(_instants()) * 3


@pytest.mark.unit
def test_a_window_counts_its_end_and_leaves_its_start_out():
    at = micros(T0)
    day = 86400 * 10**6
    events = {
        "card": [(at, {"amount": 1.0}), (at, {"amount": 0.5}), (at - day, {"amount": 100.0})],
        "payment": [(at - 30 * day, {"missed": 1}), (at - 30 * day + 1, {"missed": 1})],
    }
    got = values_at(SPEC, events, at)
    assert got == {"missed_payments_30d": 1.0, "card_spend_24h": 1.5, "minutes_since_card": 0.0}
    later = values_at(SPEC, events, at + 90 * 10**6)  # 90 s on: the newest card 1.5 minutes ago
    assert later["minutes_since_card"] == 1.5 and later["card_spend_24h"] == 1.5
    assert values_at(SPEC, {}, at) == {
        "missed_payments_30d": 0.0, "card_spend_24h": 0.0, "minutes_since_card": 7 * 24 * 60.0
    }  # fmt: skip


@pytest.mark.unit
def test_a_spec_without_streaming_features_keeps_its_digest():
    from credit_batch.features import default_spec

    spec = default_spec()
    assert "events" not in spec.to_dict()
    assert all("stream" not in f for f in spec.to_dict()["features"])
    assert FeatureSpec.from_dict(SPEC.to_dict()) == SPEC  # the registry's round trip


@pytest.mark.unit
@pytest.mark.parametrize(
    ("change", "where", "rule"),
    [
        ('window = "30d"', "features[4].stream.window", "positive whole number"),
        ('aggregate = "sum"', "features[4].stream.field", "is required of a sum"),
        ('field = "missed"', "features[6].stream.field", "does not apply to minutes_since_last"),
        ('aggregate = "median"', "features[4].stream.aggregate", "must be one of count"),
        ("events", "events", "is required by the streaming feature features[4]"),
    ],
)
def test_a_broken_streaming_feature_is_refused_naming_its_field(tmp_path, change, where, rule):
    text = EXAMPLE_SPECS["streaming"].read_text()
    if change == "events":
        start = text.index("[events]")
        text = text[:start] + text[text.index("[[features]]") :]
    elif change.startswith("window"):
        text = text.replace('window = "30d"', 'window = "30 days"')
    elif change.startswith('aggregate = "sum"'):
        text = text.replace('aggregate = "sum", field = "missed"', 'aggregate = "sum"')
    elif change.startswith("field"):
        text = text.replace('aggregate = "minutes_since_last"',
                            'aggregate = "minutes_since_last", field = "missed"')  # fmt: skip
    else:
        text = text.replace('aggregate = "sum", field = "missed"',
                            'aggregate = "median", field = "missed"')  # fmt: skip
    path = tmp_path / "spec.toml"
    path.write_text(text)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert where in str(caught.value) and rule in str(caught.value)
