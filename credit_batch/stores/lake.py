"""The Parquet lake: partition layout, atomic files, part manifests.

Layout (Hive-style keys, readable by DuckDB, pyarrow and Spark)::

    lake/features/snapshot_date=D/part-00000.parquet
    lake/scores/snapshot_date=D/model_version=V/run_id=R/part-00000.parquet
    lake/quarantine/snapshot_date=D/model_version=V/run_id=R/part-00000.parquet

Scored files live in a folder of their run: two runs of the same slice at
once (a manual run during the nightly one) never read each other's files.

Every file is written under a temporary name in its own folder and renamed
into place, so a killed writer leaves the old file or the new one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import groupby
from operator import itemgetter
from pathlib import Path

from credit_batch.checks import check_model_version, check_run_id
from credit_batch.faults import fault_point

__all__ = [
    "atomic_path",
    "dataset",
    "features_dir",
    "manifest_path",
    "part_name",
    "partition_outputs",
    "quarantine_dir",
    "read_features",
    "read_manifest",
    "remove_stale_parts",
    "remove_superseded_runs",
    "report_path",
    "reusable_counts",
    "scores_dir",
    "sha256_file",
    "tidy_slice",
    "write_manifest",
    "write_parts",
]

logger = logging.getLogger(__name__)

_PART = re.compile(r"^part-\d{5}\.(parquet|manifest\.json)$")


def features_dir(lake: Path, date: dt.date) -> Path:
    """Folder of one snapshot's extracted feature partitions."""
    return Path(lake) / "features" / f"snapshot_date={date.isoformat()}"


def scores_dir(lake: Path, date: dt.date, model_version: str, run_id: str) -> Path:
    """Folder of one run's scored partitions of a (snapshot, model version) slice."""
    return _run_dir(Path(lake) / "scores", date, model_version, run_id)


def quarantine_dir(lake: Path, date: dt.date, model_version: str, run_id: str) -> Path:
    """Folder of one run's quarantined rows of a (snapshot, model version) slice."""
    return _run_dir(Path(lake) / "quarantine", date, model_version, run_id)


def _run_dir(root: Path, date: dt.date, model_version: str, run_id: str) -> Path:
    version = check_model_version(model_version)
    run_id = check_run_id(run_id)
    return (
        root / f"snapshot_date={date.isoformat()}" / f"model_version={version}" / f"run_id={run_id}"
    )


def remove_superseded_runs(run_dir: Path, *, older_than_seconds: float) -> list[Path]:
    """Delete the other run folders of ``run_dir``'s slice not written to for a while.

    Called once a run's slice is loaded: earlier runs' files are superseded.
    A folder touched within ``older_than_seconds`` may belong to a run still
    going on (two runs of one slice at once) and is left alone.
    """
    import shutil
    import time

    removed = []
    cutoff = time.time() - older_than_seconds
    for other in Path(run_dir).parent.glob("run_id=*"):
        if other == Path(run_dir) or not other.is_dir():
            continue
        newest = max((f.stat().st_mtime for f in other.iterdir()), default=other.stat().st_mtime)
        if newest < cutoff:
            logger.info("removing superseded run folder %s", other)
            shutil.rmtree(other, ignore_errors=True)
            removed.append(other)
    return removed


def part_name(index: int) -> str:
    """File name of partition ``index``."""
    return f"part-{index:05d}.parquet"


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        fault_point("lake.before_rename")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_parts(
    batches: Iterable,
    out_dir: Path,
    *,
    rows_per_part: int,
    schema,
    dictionary_columns: list[str] | None = None,
) -> list[dict]:
    """Write a stream of record batches as parts of at most ``rows_per_part`` rows.

    ``dictionary_columns``: the only columns to dictionary-encode (default: all).

    Returns one ``{"path", "rows"}`` entry per part. Parts left from an earlier
    write with more parts are removed, so the folder holds exactly this set.
    """
    import pyarrow.parquet as pq

    parts: list[dict] = []
    for index, group in groupby(_rechunk(batches, rows_per_part), key=itemgetter(0)):
        path = Path(out_dir) / part_name(index)
        rows = 0
        with (
            atomic_path(path) as tmp,
            pq.ParquetWriter(tmp, schema, use_dictionary=dictionary_columns or True) as writer,
        ):
            for _, batch in group:
                writer.write_batch(batch)
                rows += batch.num_rows
        parts.append({"path": str(path), "rows": rows})
        fault_point("extract.after_first_part")
    remove_stale_parts(out_dir, keep={Path(p["path"]).name for p in parts})
    return parts


def _rechunk(batches: Iterable, rows: int) -> Iterator[tuple[int, object]]:
    """Yield ``(part index, batch)``, slicing batches that cross a part boundary."""
    done = 0
    for batch in batches:
        offset = 0
        while offset < batch.num_rows:
            take = min(rows - done % rows, batch.num_rows - offset)
            yield done // rows, batch.slice(offset, take)
            offset += take
            done += take


def remove_stale_parts(out_dir: Path, *, keep: set[str]) -> None:
    """Delete ``part-*.parquet`` files in ``out_dir`` whose names are not in ``keep``."""
    if not Path(out_dir).is_dir():
        return
    stems = {name.split(".")[0] for name in keep}
    for path in Path(out_dir).iterdir():
        if _PART.match(path.name) and path.name.split(".")[0] not in stems:
            logger.info("removing stale partition %s", path)
            path.unlink()


def manifest_path(part: Path) -> Path:
    """The manifest beside a partition file: ``part-00000.manifest.json``."""
    return Path(part).with_suffix(".manifest.json")


def write_manifest(part: Path, content: dict) -> None:
    """Write a partition's manifest atomically."""
    import json

    with atomic_path(manifest_path(part)) as tmp:
        tmp.write_text(json.dumps(content, sort_keys=True))


def read_manifest(part: Path) -> dict | None:
    """A partition's manifest, or None if it is missing or unreadable."""
    import json

    try:
        return json.loads(manifest_path(part).read_text())
    except (OSError, ValueError):
        return None


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def report_path(lake: Path, date: dt.date, model_version: str) -> Path:
    """Where the HTML report of a (snapshot, model) slice is written."""
    version = check_model_version(model_version)
    return (
        Path(lake)
        / "reports"
        / f"snapshot_date={date.isoformat()}"
        / f"model_version={version}"
        / "report.html"
    )


def partition_outputs(
    lake: Path, date: dt.date, model_version: str, run_id: str, index: int
) -> tuple[Path, Path]:
    """The scored and the quarantine file of partition ``index`` of a run."""
    name = part_name(index)
    return (
        scores_dir(lake, date, model_version, run_id) / name,
        quarantine_dir(lake, date, model_version, run_id) / name,
    )


def reusable_counts(out: Path, quarantine: Path, key: dict) -> dict | None:
    """The counts of a complete earlier scoring with the same ``key``, or None.

    ``key`` holds what determines the output (input and model sha256, run id,
    chunk rows, repeated ids); the manifest must hold the same, and both output
    files must still have the sha256 the manifest recorded.
    """
    manifest = read_manifest(out)
    if (
        manifest is None
        or any(manifest.get(k) != v for k, v in key.items())
        or not out.is_file()
        or not quarantine.is_file()
        or sha256_file(out) != manifest.get("output_sha256")
        or sha256_file(quarantine) != manifest.get("quarantine_sha256")
    ):
        return None
    logger.info("reusing scored partition %s (manifest matches)", out)
    return {
        "rows_scored": manifest["rows_scored"],
        "rows_quarantined": manifest["rows_quarantined"],
        "rows_other_category": manifest.get("rows_other_category", 0),
        "shap_abs_sum": manifest["shap_abs_sum"],
        "drift_counts": manifest["drift_counts"],
        "reused": True,
    }


def dataset(paths: Iterable, schema):
    """A pyarrow dataset over Parquet ``paths`` read with ``schema``."""
    import pyarrow.dataset as ds

    return ds.dataset([str(p) for p in paths], format="parquet", schema=schema)


def read_features(lake: Path, date: dt.date, schema):
    """A snapshot's extracted feature partitions as one Arrow table."""
    parts = sorted(features_dir(lake, date).glob("part-*.parquet"))
    return dataset(parts, schema).to_table()


def tidy_slice(
    lake: Path,
    date: dt.date,
    model_version: str,
    run_id: str,
    *,
    keep: set[str],
    older_than_seconds: float,
) -> None:
    """After a run's load: drop parts of its folders not in ``keep``, and superseded runs."""
    for folder in (
        scores_dir(lake, date, model_version, run_id),
        quarantine_dir(lake, date, model_version, run_id),
    ):
        remove_stale_parts(folder, keep=keep)
        remove_superseded_runs(folder, older_than_seconds=older_than_seconds)
