"""Parquet partitions: sizes, atomic writes, stale parts."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from credit_batch import checks
from credit_batch.errors import ParameterError
from credit_batch.stores import lake


def _batches(sizes):
    start = 0
    for n in sizes:
        yield pa.record_batch({"x": pa.array(range(start, start + n), pa.int64())})
        start += n


def test_parts_hold_at_most_rows_per_part_and_keep_order(tmp_path):
    schema = pa.schema([("x", pa.int64())])
    parts = lake.write_parts(_batches([7, 3, 12, 1]), tmp_path, rows_per_part=5, schema=schema)
    assert [p["rows"] for p in parts] == [5, 5, 5, 5, 3]
    values = [v for p in parts for v in pq.read_table(p["path"]).column("x").to_pylist()]
    assert values == list(range(23))


def test_rewrite_with_fewer_parts_removes_stale_ones(tmp_path):
    schema = pa.schema([("x", pa.int64())])
    lake.write_parts(_batches([20]), tmp_path, rows_per_part=5, schema=schema)
    parts = lake.write_parts(_batches([8]), tmp_path, rows_per_part=5, schema=schema)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "part-00000.parquet",
        "part-00001.parquet",
    ]
    assert len(parts) == 2


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "part-00000.parquet"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), lake.atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["part-00000.parquet"]


@pytest.mark.parametrize("version", ["../etc", "a/b", "x'; DROP TABLE predictions;--", "", None])
def test_model_versions_that_could_escape_a_folder_or_a_query_are_refused(version):
    with pytest.raises(ParameterError, match="model version"):
        checks.check_model_version(version)


def test_load_of_a_slice_removes_only_old_folders_of_other_runs(tmp_path):
    import os
    import time

    date = dt.date(2026, 10, 31)
    mine, old, busy = (
        lake.scores_dir(tmp_path, date, "logreg-1", run) for run in ("mine", "old", "busy")
    )
    for folder in (mine, old, busy):
        folder.mkdir(parents=True)
        (folder / "part-00000.parquet").write_bytes(b"x")
    two_hours_ago = time.time() - 7_200
    os.utime(old / "part-00000.parquet", (two_hours_ago, two_hours_ago))
    removed = lake.remove_superseded_runs(mine, older_than_seconds=3_600)
    assert removed == [old]
    assert mine.is_dir() and busy.is_dir() and not old.exists()


@pytest.mark.parametrize("run_id", ["../x", "a/b", "", "x" * 65])
def test_run_folder_refuses_a_run_id_that_is_not_a_plain_name(tmp_path, run_id):
    with pytest.raises(ParameterError, match="run id"):
        lake.scores_dir(tmp_path, dt.date(2026, 10, 31), "logreg-1", run_id)
