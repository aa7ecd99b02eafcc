"""Row rules: the numpy pass that flags rows agrees with pandera, which names the failures."""

from __future__ import annotations

import numpy as np
import pandera.pandas as pa
import pytest

from credit_batch import errors
from credit_batch.features import DEFAULT_FEATURE_SPEC, MAX_MAGNITUDE
from credit_batch.steps import validation
from tests.conftest import demo_frame

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def dirty():
    """A demo frame with every kind of broken value planted in random rows."""
    frame = demo_frame(4_000, seed=5)[["customer_id", *DEFAULT_FEATURE_SPEC.names]]
    rng = np.random.default_rng(11)
    for f in DEFAULT_FEATURE_SPEC.features:
        rows = rng.choice(len(frame), size=25, replace=False)
        bad = [np.nan] if not f.nullable else []
        bad += [f.minimum - 1] if f.minimum is not None else []
        bad += [f.maximum + 0.5] if f.maximum is not None else []
        bad += list(f.forbidden)
        bad += [np.inf, -1e300, 2 * MAX_MAGNITUDE]  # beyond any number a model can take
        frame.loc[rows, f.name] = rng.choice(bad, size=rows.size)
    return frame


def _pandera_rows(frame) -> set[int]:
    try:
        validation.build_schema().validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        return {int(i) for i in exc.failure_cases["index"]}
    return set()


def test_numpy_rules_flag_exactly_the_rows_pandera_rejects(dirty):
    flagged = validation.invalid_rows(dirty)
    assert set(np.flatnonzero(flagged).tolist()) == _pandera_rows(dirty)
    assert 200 < flagged.sum() < 400


def test_split_valid_names_every_failure_of_the_flagged_rows(dirty):
    valid, rejected = validation.split_valid(dirty)
    assert len(rejected) == (~valid).sum()
    assert rejected["customer_id"].tolist() == dirty["customer_id"][~valid].tolist()
    assert rejected["reason"].str.len().gt(0).all()


def test_a_number_beyond_the_magnitude_bound_is_quarantined_not_a_crash():
    frame = demo_frame(50, seed=3)[["customer_id", *DEFAULT_FEATURE_SPEC.names]]
    frame = validation.valid_rows(frame)
    frame.loc[3, "num_90_days_late"] = 6.6e307  # no maximum declared: it overflowed the scaler
    frame.loc[5, "debt_ratio"] = np.inf
    valid, rejected = validation.split_valid(frame)
    assert np.flatnonzero(~valid).tolist() == [3, 5]
    assert rejected["reason"].str.contains("in_range").all(), rejected["reason"].tolist()


def test_duplicate_ids_are_flagged_and_named(dirty):
    clean = dirty[validation.split_valid(dirty)[0]].reset_index(drop=True)
    twice = int(clean["customer_id"].iloc[7])
    valid, rejected = validation.split_valid(clean, duplicate_ids={twice})
    assert (~valid).sum() == 1
    assert rejected["reason"].tolist() == ["customer_id: duplicate within snapshot"]


def test_a_column_of_another_type_stops_with_a_schema_error(dirty):
    broken = dirty.assign(age=dirty["age"].astype(str))
    with pytest.raises(errors.SchemaMismatchError, match="age"):
        validation.invalid_rows(broken)
