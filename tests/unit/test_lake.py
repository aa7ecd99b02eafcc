"""Parquet partitions: sizes, atomic writes, stale parts."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from credit_batch import checks
from credit_batch.errors import DataError, ParameterError
from credit_batch.storage import location
from credit_batch.stores import lake

# Lanes per test: this file holds unit tests and tests that need a service.


@pytest.fixture(
    params=[
        pytest.param("local", marks=pytest.mark.unit),
        pytest.param("s3", marks=pytest.mark.services),
    ]
)
def root(request, tmp_path):
    """An empty lake folder: on the local disk, or a fresh prefix on the S3 API server."""
    if request.param == "local":
        return location(tmp_path)
    from tests.conftest import s3_settings

    return s3_settings(request.getfixturevalue("s3_server"), tmp_path).lake


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def _batches(sizes):
    start = 0
    for n in sizes:
        yield pa.record_batch({"x": pa.array(range(start, start + n), pa.int64())})
        start += n


def test_parts_hold_at_most_rows_per_part_and_keep_order(root):
    schema = pa.schema([("x", pa.int64())])
    parts = lake.write_parts(_batches([7, 3, 12, 1]), root, rows_per_part=5, schema=schema)
    assert [p["rows"] for p in parts] == [5, 5, 5, 5, 3]
    values = [
        v
        for p in parts
        for v in pq.read_table(root.at(p["path"]).open_input()).column("x").to_pylist()
    ]
    assert values == list(range(23))


def test_rewrite_with_fewer_parts_removes_stale_ones_and_the_manifest_names_the_new(root):
    schema = pa.schema([("x", pa.int64())])
    lake.write_parts(_batches([20]), root, rows_per_part=5, schema=schema)
    parts = lake.write_parts(_batches([8]), root, rows_per_part=5, schema=schema)
    assert _names(root) == ["_manifest.json", "part-00000.parquet", "part-00001.parquet"]
    assert len(parts) == 2


def test_readers_read_only_the_parts_the_manifest_names(root):
    schema = pa.schema([("x", pa.int64())])
    date = dt.date(2026, 9, 30)
    folder = lake.features_dir(root, date, feature_set="fs-a")
    lake.write_parts(_batches([12]), folder, rows_per_part=5, schema=schema)
    (folder / "part-00007.parquet").write_bytes(b"not parquet: a stray object")
    (folder / ".part-00000.parquet.99.tmp").write_bytes(b"a dead writer's temporary")
    batches = lake.iter_features(root, date, schema, feature_set="fs-a")
    table = pa.Table.from_batches(batches, schema=schema)
    assert table.column("x").to_pylist() == list(range(12))


def test_two_feature_sets_of_one_night_keep_their_own_partitions(root):
    """Two models with different specs extract the same date: neither overwrites the other."""
    import dataclasses

    from credit_batch.features import default_spec

    spec = default_spec()
    other = dataclasses.replace(spec, name="thin_file")
    changed = dataclasses.replace(spec, description="a changed spec is another feature set")
    keys = {spec.feature_set, other.feature_set, changed.feature_set}
    assert len(keys) == 3 and all(k.startswith(("gmsc-", "thin_file-")) for k in keys)
    assert spec.feature_set == dataclasses.replace(spec).feature_set  # equal specs share one
    schema = pa.schema([("x", pa.int64())])
    date = dt.date(2026, 9, 30)
    for key, rows in ((spec.feature_set, 7), (other.feature_set, 3)):
        lake.write_parts(
            _batches([rows]),
            lake.features_dir(root, date, feature_set=key),
            rows_per_part=5,
            schema=schema,
        )
    read = {
        key: pa.Table.from_batches(
            lake.iter_features(root, date, schema, feature_set=key), schema=schema
        ).num_rows
        for key in (spec.feature_set, other.feature_set)
    }
    assert read == {spec.feature_set: 7, other.feature_set: 3}


def test_a_snapshot_without_its_manifest_is_refused_by_name(root):
    schema = pa.schema([("x", pa.int64())])
    date = dt.date(2026, 9, 30)
    folder = lake.features_dir(root, date, feature_set="fs-a")
    lake.write_parts(_batches([3]), folder, rows_per_part=5, schema=schema)
    (folder / lake.FEATURES_MANIFEST).unlink()
    with pytest.raises(DataError, match="no readable feature manifest .*_manifest.json"):
        lake.iter_features(root, date, schema, feature_set="fs-a")


def test_failed_write_leaves_the_old_file_and_no_temporary(root):
    target = root / "part-00000.parquet"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), lake.atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed")
    assert target.read_bytes() == b"old"
    assert _names(root) == ["part-00000.parquet"]


def test_atomic_write_puts_the_whole_new_file_in_place(root):
    target = root / "reports" / "report.html"
    target.write_text("old")
    with lake.atomic_path(target) as tmp:
        tmp.write_text("new " * 1000)
    assert target.read_text() == "new " * 1000
    assert _names(root / "reports") == ["report.html"]


@pytest.mark.unit
@pytest.mark.parametrize("version", ["../etc", "a/b", "x'; DROP TABLE predictions;--", "", None])
def test_model_versions_that_could_escape_a_folder_or_a_query_are_refused(version):
    with pytest.raises(ParameterError, match="model version"):
        checks.check_model_version(version)


@pytest.mark.unit
def test_load_of_a_slice_removes_only_old_folders_of_other_runs(tmp_path):
    import os
    import time

    date = dt.date(2026, 10, 31)
    mine, old, busy = (
        lake.scores_dir(location(tmp_path), date, "logreg-1", run)
        for run in ("mine", "old", "busy")
    )
    for folder in (mine, old, busy):
        (folder / "part-00000.parquet").write_bytes(b"x")
    two_hours_ago = time.time() - 7_200
    os.utime((old / "part-00000.parquet").path, (two_hours_ago, two_hours_ago))
    removed = lake.remove_superseded_runs(mine, older_than_seconds=3_600)
    assert removed == [old]
    assert mine.exists() and busy.exists() and not old.exists()


def test_superseded_runs_on_s3_are_removed_and_the_running_ones_kept(root):
    date = dt.date(2026, 10, 31)
    mine, old = (lake.scores_dir(root, date, "logreg-1", run) for run in ("mine", "old"))
    for folder in (mine, old):
        (folder / "part-00000.parquet").write_bytes(b"x")
    assert lake.remove_superseded_runs(mine, older_than_seconds=3_600) == []  # both just written
    assert lake.remove_superseded_runs(mine, older_than_seconds=-60) == [old]
    assert mine.exists() and not old.exists()


@pytest.mark.unit
@pytest.mark.parametrize("run_id", ["../x", "a/b", "", "x" * 65])
def test_run_folder_refuses_a_run_id_that_is_not_a_plain_name(tmp_path, run_id):
    with pytest.raises(ParameterError, match="run id"):
        lake.scores_dir(location(tmp_path), dt.date(2026, 10, 31), "logreg-1", run_id)
