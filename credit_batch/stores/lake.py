"""The Parquet lake: partition layout, atomic files, part manifests.

Layout (Hive-style keys, readable by DuckDB, pyarrow and Spark), under the
lake's URL (a local folder or ``s3://bucket/prefix``, see
:mod:`credit_batch.storage`)::

    features/snapshot_date=D/part-00000.parquet   + _manifest.json (the parts)
    scores/snapshot_date=D/model_version=V/run_id=R/part-00000.parquet
    quarantine/snapshot_date=D/model_version=V/run_id=R/part-00000.parquet

Scored files live in a folder of their run: two runs of the same slice at
once (a manual run during the nightly one) never read each other's files.

Every file is written under a temporary name beside its final one and then
renamed (copied, on S3) into place, so a killed writer leaves the old file or
the new one. Manifests are written last: a snapshot's ``_manifest.json`` names
its feature parts, a scored part's ``part-N.manifest.json`` its outputs and
their sha256. Readers read only the files a manifest (or the run's XCom, made
from them) names; stray and temporary objects are never read.
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
from credit_batch.errors import DataError
from credit_batch.faults import fault_point
from credit_batch.storage import Location

__all__ = [
    "atomic_path",
    "dataset",
    "features_dir",
    "features_parts",
    "input_fingerprint",
    "manifest_path",
    "monitoring_path",
    "part_name",
    "partition_outputs",
    "quarantine_dir",
    "adverse_dir",
    "iter_features",
    "read_manifest",
    "remove_stale_parts",
    "remove_superseded_runs",
    "portfolio_path",
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
#: The file naming a snapshot's feature parts, written after them.
FEATURES_MANIFEST = "_manifest.json"


def features_dir(lake: Location, date: dt.date, *, feature_set: str) -> Location:
    """Folder of one snapshot's extracted partitions of one feature set
    (:attr:`credit_batch.features.FeatureSpec.feature_set`): models with
    different specs extract the same night without touching each other's."""
    return lake / "features" / f"feature_set={feature_set}" / f"snapshot_date={date.isoformat()}"


def scores_dir(lake: Location, date: dt.date, model_version: str, run_id: str) -> Location:
    """Folder of one run's scored partitions of a (snapshot, model version) slice."""
    return _run_dir(lake / "scores", date, model_version, run_id)


def quarantine_dir(lake: Location, date: dt.date, model_version: str, run_id: str) -> Location:
    """Folder of one run's quarantined rows of a (snapshot, model version) slice."""
    return _run_dir(lake / "quarantine", date, model_version, run_id)


def adverse_dir(lake: Location, date: dt.date, model_version: str, run_id: str) -> Location:
    """Folder of one run's adverse-action reasons of a (snapshot, model version) slice."""
    return _run_dir(lake / "adverse_action", date, model_version, run_id)


def _run_dir(root: Location, date: dt.date, model_version: str, run_id: str) -> Location:
    version = check_model_version(model_version)
    run_id = check_run_id(run_id)
    return (
        root / f"snapshot_date={date.isoformat()}" / f"model_version={version}" / f"run_id={run_id}"
    )


def remove_superseded_runs(run_dir: Location, *, older_than_seconds: float) -> list[Location]:
    """Delete the other run folders of ``run_dir``'s slice not written to for a while.

    Called once a run's slice is loaded: earlier runs' files are superseded.
    A folder touched within ``older_than_seconds`` may belong to a run still
    going on (two runs of one slice at once) and is left alone.
    """
    import time

    removed = []
    cutoff = time.time() - older_than_seconds
    for other in run_dir.parent.iterdir():
        if other == run_dir or not other.name.startswith("run_id="):
            continue
        files = other.files()
        newest = max((f.mtime() for f in files), default=0.0)
        if newest < cutoff:
            logger.info("removing superseded run folder %s", other)
            other.rmtree()
            removed.append(other)
    return removed


def part_name(index: int) -> str:
    """File name of partition ``index``."""
    return f"part-{index:05d}.parquet"


@contextmanager
def atomic_path(path: Location) -> Iterator[Location]:
    """Yield a temporary location beside ``path``; put it onto ``path`` on success.

    Locally a rename; on S3 a server-side copy and a delete (an object appears
    whole or not at all). The temporary name starts with a dot: no reader
    lists or names it.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        fault_point("lake.before_rename")
        path.replace_from(tmp)
    finally:
        tmp.unlink()


class _HashingSink:
    """A writable file that hashes what passes through it to ``out`` (one pass, no re-read)."""

    def __init__(self, out) -> None:
        import hashlib

        self._out, self._digest, self.closed = out, hashlib.sha256(), False

    def write(self, data) -> int:
        self._digest.update(data)
        return self._out.write(data)

    def tell(self) -> int:
        return self._out.tell()

    def flush(self) -> None:
        self._out.flush()

    def writable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True  # the caller closes ``out``

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def input_fingerprint(parts: list[dict], spec_digest: str) -> str:
    """sha256 of a snapshot's extracted parts (their bytes, in order) and the spec read."""
    import hashlib

    digest = hashlib.sha256(spec_digest.encode())
    for part in parts:
        digest.update(part["sha256"].encode())
    return digest.hexdigest()


def write_parts(
    batches: Iterable,
    out_dir: Location,
    *,
    rows_per_part: int,
    schema,
    dictionary_columns: list[str] | None = None,
) -> list[dict]:
    """Write a stream of record batches as parts of at most ``rows_per_part`` rows.

    ``dictionary_columns``: the only columns to dictionary-encode (default: all).

    Returns one ``{"path", "rows", "sha256"}`` entry per part (``path``: its
    URI; ``sha256``: of its bytes, hashed as they are written), and
    writes them, last, as the folder's ``_manifest.json``. Parts left from an
    earlier write with more parts are removed, so the folder holds exactly
    this set.
    """
    import json

    import pyarrow.parquet as pq

    parts: list[dict] = []
    for index, group in groupby(_rechunk(batches, rows_per_part), key=itemgetter(0)):
        path = out_dir / part_name(index)
        rows = 0
        with atomic_path(path) as tmp, tmp.open_output() as out:
            sink = _HashingSink(out)
            with pq.ParquetWriter(sink, schema, use_dictionary=dictionary_columns or True) as w:
                for _, batch in group:
                    w.write_batch(batch)
                    rows += batch.num_rows
        parts.append({"path": path.uri, "rows": rows, "sha256": sink.hexdigest()})
        fault_point("extract.after_first_part")
    with atomic_path(out_dir / FEATURES_MANIFEST) as tmp:
        tmp.write_text(json.dumps({"parts": parts}, sort_keys=True))
    remove_stale_parts(out_dir, keep={part_name(i) for i in range(len(parts))})
    return parts


def read_columns(lake: Location, path: str, columns: list[str]):
    """The ``columns`` of the Parquet file at ``path`` (a lake URI), as an Arrow table."""
    import pyarrow.parquet as pq

    with lake.at(path).open_input() as source:
        return pq.read_table(source, columns=columns)


def features_parts(lake: Location, date: dt.date, *, feature_set: str) -> list[Location]:
    """The parts a snapshot's ``_manifest.json`` names (written by :func:`write_parts`)."""
    import json

    manifest = features_dir(lake, date, feature_set=feature_set) / FEATURES_MANIFEST
    try:
        parts = json.loads(manifest.read_text())["parts"]
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(
            f"snapshot {date} has no readable feature manifest {manifest}: {exc}; "
            "run its extract again",
            path=manifest.uri,
        ) from exc
    return [lake.at(p["path"]) for p in parts]


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


def remove_stale_parts(out_dir: Location, *, keep: set[str]) -> None:
    """Delete ``part-*.parquet`` files in ``out_dir`` whose names are not in ``keep``."""
    stems = {name.split(".")[0] for name in keep}
    for path in out_dir.iterdir():
        if _PART.match(path.name) and path.name.split(".")[0] not in stems:
            logger.info("removing stale partition %s", path)
            path.unlink()


def manifest_path(part: Location) -> Location:
    """The manifest beside a partition file: ``part-00000.manifest.json``."""
    return part.with_name(part.name.removesuffix(".parquet") + ".manifest.json")


def write_manifest(part: Location, content: dict) -> None:
    """Write a partition's manifest atomically."""
    import json

    with atomic_path(manifest_path(part)) as tmp:
        tmp.write_text(json.dumps(content, sort_keys=True))


def read_manifest(part: Location) -> dict | None:
    """A partition's manifest, or None if it is missing or unreadable."""
    import json

    try:
        return json.loads(manifest_path(part).read_text())
    except (OSError, ValueError):
        return None


def sha256_file(path: Location | Path | str) -> str:
    """Hex sha256 of a file (a lake location or a local path), read in 1 MiB blocks."""
    if isinstance(path, Location):
        return path.sha256()
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def monitoring_path(lake: Location) -> Location:
    """Where the monitoring page (realized performance over time, per model) is written."""
    return lake / "reports" / "monitoring.html"


def portfolio_path(lake: Location, as_of: dt.date) -> Location:
    """Where the portfolio page of the night ``as_of`` is written."""
    return lake / "reports" / "portfolio" / f"as_of={as_of.isoformat()}" / "portfolio.html"


def report_path(lake: Location, date: dt.date, model_version: str) -> Location:
    """Where the HTML report of a (snapshot, model) slice is written."""
    version = check_model_version(model_version)
    return (
        lake
        / "reports"
        / f"snapshot_date={date.isoformat()}"
        / f"model_version={version}"
        / "report.html"
    )


def partition_outputs(
    lake: Location, date: dt.date, model_version: str, run_id: str, index: int
) -> tuple[Location, Location, Location]:
    """The scored, the quarantine and the adverse-action file of partition ``index`` of a run."""
    name = part_name(index)
    return (
        scores_dir(lake, date, model_version, run_id) / name,
        quarantine_dir(lake, date, model_version, run_id) / name,
        adverse_dir(lake, date, model_version, run_id) / name,
    )


#: The manifest's sha256 entry of each output of a scored partition, in
#: :func:`partition_outputs` order.
OUTPUT_DIGESTS = ("output_sha256", "quarantine_sha256", "adverse_sha256")


def output_digests(outputs: tuple[Location, ...]) -> dict:
    """The manifest entries of :data:`OUTPUT_DIGESTS` for a partition's outputs."""
    return {name: sha256_file(path) for name, path in zip(OUTPUT_DIGESTS, outputs, strict=True)}


def reusable_counts(outputs: tuple[Location, ...], key: dict) -> dict | None:
    """The counts of a complete earlier scoring with the same ``key``, or None.

    ``key`` holds what determines the output (input and model sha256, run id,
    chunk rows, repeated ids, cutoff); the manifest must hold the same, and every
    output file (:func:`partition_outputs`) must still have the sha256 the
    manifest recorded.
    """
    manifest = read_manifest(outputs[0])
    if (
        manifest is None
        or any(manifest.get(k) != v for k, v in key.items())
        or not all(path.is_file() for path in outputs)
        or any(
            sha256_file(path) != manifest.get(name)
            for name, path in zip(OUTPUT_DIGESTS, outputs, strict=True)
        )
    ):
        return None
    logger.info("reusing scored partition %s (manifest matches)", outputs[0])
    return {
        "rows_scored": manifest["rows_scored"],
        "rows_quarantined": manifest["rows_quarantined"],
        "rows_other_category": manifest.get("rows_other_category", 0),
        "rows_uncovered": manifest.get("rows_uncovered", 0),
        "shap_abs_sum": manifest["shap_abs_sum"],
        "drift_counts": manifest["drift_counts"],
        "points_scale": manifest.get("points_scale"),
        "rows_declined": manifest.get("rows_declined", 0),
        "reused": True,
    }


def dataset(lake: Location, uris: Iterable[str], schema):
    """A pyarrow dataset over the Parquet files ``uris`` of ``lake``, read with ``schema``."""
    import pyarrow.dataset as ds

    files = [lake.at(u) for u in uris]
    return ds.dataset([f.path for f in files], format="parquet", schema=schema, filesystem=lake.fs)


def iter_features(lake: Location, date: dt.date, schema, *, feature_set: str):
    """A snapshot's extracted feature partitions, batch by batch (memory: one batch)."""
    parts = features_parts(lake, date, feature_set=feature_set)
    parts = dataset(lake, [p.uri for p in parts], schema)
    return parts.to_batches(batch_readahead=1, fragment_readahead=1, use_threads=False)


def tidy_slice(
    lake: Location,
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
        adverse_dir(lake, date, model_version, run_id),
    ):
        remove_stale_parts(folder, keep=keep)
        remove_superseded_runs(folder, older_than_seconds=older_than_seconds)
