"""The night's cost per segment: one model segmented into 1, 20 and 200 champions.

One generated book (``rows`` customers, one labeled month and the night's month,
four numeric features and a categorical ``region`` with as many levels as the
largest count of segments: 200 at full size) in one warehouse. For each count
of segments S, a home of its own holds one model segmented by ``region`` with
a champion for each of the first S levels and the pooled champion
(``fallback = "pooled"``) for the rest, so that every customer is scored once,
by exactly one version, whatever S. The baseline is
the same book scored by one unsegmented model on the same spec. Each night is
:func:`credit_batch.portfolio.run_night` in one process with 2 scoring
workers (extract, score, then load, importance and report per segment), timed
wall to wall; training is not timed.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from benchmarks.output import Figure

__all__ = ["segments_night"]

DATE = dt.date(2026, 10, 31)
LABELED = dt.date(2026, 9, 30)
_FEATURES = ("x1", "x2", "x3", "x4")


def segments_night(
    home: Path, rows: int, *, segments: tuple[int, ...], workers: int = 2
) -> list[Figure]:
    from credit_batch.config import Settings

    home.mkdir(parents=True, exist_ok=True)
    warehouse, levels = home / "warehouse.duckdb", _levels(max(segments))
    _write_book(warehouse, rows, levels)
    spec = _write_spec(home / "spec.toml", levels)
    url = f"duckdb:///{warehouse}"
    base = _night(Settings(home=home / "base", warehouse_url=url), spec, [])
    walls = {}
    for count in segments:
        settings = Settings(home=home / f"s{count}", warehouse_url=url)
        walls[count] = _night(settings, spec, levels[:count], workers=workers)
    first, last = min(walls), max(walls)
    per_segment = (walls[last] - walls[first]) / max(last - first, 1)
    return [
        Figure(
            f"segmented night: {count} segment champions",
            f"{rows:,} customers, each scored once (the first {count} of {len(levels)} regions "
            "by their champions, the rest by the pooled one); run_night in one process, "
            f"{workers} scoring workers; each extra segment costs ~{per_segment:.2f} s "
            f"(from {first} to {last})",
            f"{walls[count]:.1f} s wall",
            f"one unsegmented model {base:.1f} s",
            walls[count] / base,
            5.0 if count == last else None,
            "<=" if count == last else None,
            detail={"segments": count, "wall": walls[count], "base": base, "rows": rows},
        )
        for count in segments
    ]


def _night(settings, spec: Path, segments: list[str], *, workers: int = 2) -> float:
    """Train and promote the champions (``segments``' and the pooled one; none given: one
    unsegmented model); return the wall seconds of one night of them."""
    from credit_batch import pipeline, portfolio
    from credit_batch.model_file import training_options
    from credit_batch.run import RunOptions

    path = settings.home.parent / f"model-{len(segments)}.toml"
    segmented = 'segment_by = "region"\nfallback = "pooled"\n' if segments else ""
    path.write_text(f'name = "pd_book"\nspec = "{spec}"\nmax_rows = 20000\n{segmented}')
    options = training_options(path)
    for segment in [None, *segments]:
        record = pipeline.train(settings, until=LABELED, segment=segment, **options)
        pipeline.promote(settings, record.model_version, reason="benchmark")
    t0 = time.perf_counter()
    night = portfolio.run_night(settings, RunOptions(snapshot_date=DATE), workers=workers)
    wall = time.perf_counter() - t0
    if night.failed:
        raise RuntimeError(f"segments benchmark: a night failed: {night.failed}")
    return wall


def _levels(n: int) -> list[str]:
    return [f"r{i:03d}" for i in range(n)]


def _write_book(path: Path, rows: int, levels: list[str]) -> None:
    import duckdb
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(7)
    shares = rng.dirichlet(np.full(len(levels), 2.0))  # unequal regions, as real ones are
    region = rng.choice(np.array(levels, dtype=object), rows, p=shares)
    shift = rng.normal(0, 0.5, len(levels))[np.searchsorted(levels, region)]
    x = rng.standard_normal((rows, len(_FEATURES)))
    books, outcomes = [], []
    for date in (LABELED, DATE):
        values = x + rng.normal(0, 0.3, x.shape)
        key = {"snapshot_date": pa.array([date] * rows, pa.date32())}
        key["customer_id"] = np.arange(1, rows + 1)
        columns = {**key, "region": region, **dict(zip(_FEATURES, values.T, strict=True))}
        books.append(pa.table(columns))
        logit = -2.5 + values @ np.array([0.8, -0.5, 0.3, 0.0]) + shift
        bad = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int16)
        outcomes += [pa.table({**key, "bad": bad})] if date == LABELED else []
    with duckdb.connect(str(path)) as con:
        con.register("book", pa.concat_tables(books))
        con.register("outcomes", pa.concat_tables(outcomes))
        con.execute("CREATE TABLE seg_book AS SELECT * FROM book")
        con.execute("CREATE TABLE seg_outcomes AS SELECT * FROM outcomes")


def _write_spec(path: Path, levels: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    numeric = "".join(
        f'\n[[features]]\nname = "{name}"\ntype = "numeric"\ndescription = "{name}"\n'
        f'reason = "{name}"\ndirection = "none"\n'
        for name in _FEATURES
    )
    declared = ", ".join(f'"{level}"' for level in levels)
    path.write_text(
        'name = "seg_book"\ndescription = "the segments benchmark\'s book"\n\n'
        '[entity]\nkey = "customer_id"\nkey_type = "integer"\n'
        'snapshot_column = "snapshot_date"\ntable = "seg_book"\n\n'
        '[target]\nname = "bad"\ntable = "seg_outcomes"\n'
        f"{numeric}\n[[features]]\n"
        'name = "region"\ntype = "categorical"\ndescription = "the region"\n'
        f'reason = "Region"\ncategories = [{declared}]\n'
    )
    return path
