"""Run every benchmark figure; write ``results.md``, ``results.json`` and ``results.png``.

    pip install -c constraints.txt -e '.[dev]'
    python -m benchmarks                     # full sizes (~10 minutes on 2 cores)
    python -m benchmarks --smoke --out /tmp/bench   # tiny sizes, what CI runs

Figures and how each is measured: ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks import (
    figures,
    floors,
    local_night,
    model_risk,
    online,
    registry,
    segments,
    streaming,
)
from benchmarks.output import Figure, write

FULL = {
    "rows": 2_000_000,
    "limit_big_rows": 10_000_000,
    "big_rows": 20_000_000,
    "night_rows": 5_000_000,
    "local_night_rows": 20_000_000,
    "local_night_partition_rows": 10_000_000,  # one score task per slot (2)
    "generated_rows": 10_000_000,
    "training_rows": 150_000,
    "serving_seconds": 20,
    "naive_load_rows": 200_000,
    "reason_rows": 1_000_000,
    "partition_rows": 1_000_000,
    "chunk_rows": 100_000,
    "repeats": 3,
    "registry_models": 200,
    "registry_versions": 20,
    "registry_customers": 10_000,
    "portfolio_models": 10,
    "segments_rows": 200_000,
    "segments_max": 200,
    "online_rows": 2_000_000,
    "stream_customers": 20_000,
    "stream_events": 20_000,
    "stream_seconds": 10,
}
SMOKE = {
    "rows": 20_000,
    "limit_big_rows": 40_000,
    "big_rows": 100_000,
    "night_rows": 10_000,
    "local_night_rows": 20_000,
    "local_night_partition_rows": 5_000,
    "generated_rows": 8_000,
    "training_rows": 2_000,
    "serving_seconds": 2,
    "naive_load_rows": 2_000,
    "reason_rows": 20_000,
    "partition_rows": 5_000,
    "chunk_rows": 2_000,
    "repeats": 1,
    "registry_models": 5,
    "registry_versions": 3,
    "registry_customers": 100,
    "portfolio_models": 3,
    "segments_rows": 4_000,
    "segments_max": 4,
    "online_rows": 5_000,
    "stream_customers": 1_500,
    "stream_events": 1_500,
    "stream_seconds": 2,
}
FIGURES = (
    "limit",
    "limit_big",
    "limit_pg",
    "naive",
    "reasons",
    "memory",
    "parallel",
    "load",
    "analyst",
    "parse",
    "night",
    "categorical",
    "training",
    "challengers",
    "serving",
    "extract",
    "floors",
    "startup",
    "night_local",
    "registry",
    "segments",
    "online",
    "streaming",
    "model_risk",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (for CI)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--only", nargs="+", choices=FIGURES, default=list(FIGURES))
    parser.add_argument("--rows", type=int, help="rows of the main snapshot")
    parser.add_argument(
        "--size",
        action="append",
        default=[],
        metavar="NAME=ROWS",
        help="set one size, e.g. --size local_night_rows=50000000 (repeatable)",
    )
    parser.add_argument("--pg-url", default=os.environ.get("CREDIT_BATCH_BENCH_PG_URL"))
    args = parser.parse_args(argv)
    sizes = dict(SMOKE if args.smoke else FULL)
    if args.rows:
        sizes["rows"] = args.rows
    for given in args.size:
        name, _, value = given.partition("=")
        if name not in sizes or not value.isdigit():
            parser.error(f"--size {given}: must be NAME=ROWS with NAME one of {sorted(sizes)}")
        sizes[name] = int(value)
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="credit-batch-bench-") as tmp:
        found = _run(Path(tmp), sizes, set(args.only), args.pg_url)
    header = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "rows": f"{sizes['rows']:,}",
        "sizes": ", ".join(f"{k}={v:,}" for k, v in sizes.items()),
        "seconds": round(time.perf_counter() - started),
    }
    write(found, args.out, header)
    for f in found:
        verdict = "" if f.holds is None else ("  holds" if f.holds else "  MISSED")
        print(f"{f.name:<44} {f.measured:<34} vs {f.baseline:<36} {f.ratio:7.2f}x{verdict}")
    print(f"wrote {args.out}/results.md, results.json, results.png")
    return 0


def _run(home: Path, sizes: dict, only: set[str], pg_url: str | None) -> list[Figure]:
    found: list[Figure] = []
    bench = figures.setup(
        home / "main",
        sizes["rows"],
        partition_rows=sizes["partition_rows"],
        chunk_rows=sizes["chunk_rows"],
        repeats=sizes["repeats"],
    )
    try:
        best = None
        if only & {"limit", "naive", "load", "analyst"}:
            limit, best = figures.limit(bench)
            found += limit if "limit" in only else []
        if "limit_big" in only:
            big = figures.setup(
                home / "limit-big",
                sizes["limit_big_rows"],
                partition_rows=sizes["limit_big_rows"] // 2,
                chunk_rows=sizes["chunk_rows"],
                repeats=min(2, sizes["repeats"]),  # best of 2: a first pass is cold
            )
            found += figures.limit(big, label=f"{sizes['limit_big_rows']:,} rows")[0]
        if "limit_pg" in only:
            with _pg_database(pg_url) as url:
                found += figures.limit_postgres(bench, url) if url else []
        if "naive" in only:
            found += figures.naive(bench, best["total"], rows=sizes["rows"])
        if "load" in only:
            with _pg_database(pg_url) as url:
                found += figures.load(
                    bench, best["plan"], naive_rows=sizes["naive_load_rows"], pg_url=url
                )
        if "analyst" in only:
            with _pg_database(pg_url) as url:
                found += figures.analyst(bench, best["plan"], pg_url=url)
        if "extract" in only:
            with _pg_database(pg_url) as url:
                found += figures.extract_rates(bench, pg_url=url)
        if "floors" in only:
            with _pg_database(pg_url) as url:
                found += floors.floors(bench, pg_url=url)
        if "night_local" in only:
            found += local_night.night_local(
                home / "local-night",
                sizes["local_night_rows"],
                partition_rows=sizes["local_night_partition_rows"],
                generated_rows=sizes["generated_rows"],
                portfolio_models=sizes["portfolio_models"] - 1,
            )
        if "registry" in only:
            found += registry.registry_scale(
                home / "registry",
                models=sizes["registry_models"],
                versions=sizes["registry_versions"],
                customers=sizes["registry_customers"],
                repeats=max(3, sizes["repeats"]),
            )
        if "segments" in only:
            top = sizes["segments_max"]
            found += segments.segments_night(
                home / "segments",
                sizes["segments_rows"],
                segments=tuple(sorted({1, max(top // 10, 2), top})),
            )
        if "online" in only:
            with _pg_database(pg_url) as url:
                found += online.materialization(
                    home / "online", sizes["online_rows"], pg_url=url, repeats=sizes["repeats"]
                )
        if "streaming" in only:
            with _pg_database(pg_url) as url:
                found += streaming.streaming(
                    home / "streaming", sizes["stream_customers"], sizes["stream_events"],
                    pg_url=url, seconds=sizes["stream_seconds"],
                ) if url else []  # fmt: skip
        if "startup" in only:
            found += figures.startup(home / "startup", repeats=sizes["repeats"])
        if "reasons" in only:
            found += figures.reasons(bench, rows=sizes["reason_rows"])
        if "model_risk" in only:
            found += model_risk.model_risk(bench, reason_rows=sizes["reason_rows"])
        if "parallel" in only:
            found += figures.parallel(bench)
        if "memory" in only:
            found += figures.memory(bench, small_rows=sizes["rows"], big_rows=sizes["big_rows"])
        if "parse" in only:
            found += figures.parse(repeats=3)
        if "night" in only:
            found += figures.night(home / "night", sizes["night_rows"], repeats=sizes["repeats"])
        if "serving" in only:
            found += figures.serving(bench, seconds=sizes["serving_seconds"])
        if "challengers" in only:
            found += figures.challengers(
                home / "challengers",
                sizes["rows"],
                partition_rows=sizes["partition_rows"],
                repeats=sizes["repeats"],
            )
        if "training" in only:
            found += figures.training(home / "training", sizes["training_rows"])
        if "categorical" in only:
            found += figures.categorical(
                home / "lender", sizes["reason_rows"], repeats=sizes["repeats"]
            )
    finally:
        figures.shutdown()
    return found


class _pg_database:
    """A fresh PostgreSQL database for the load figure (dropped after), or None."""

    def __init__(self, admin_url: str | None) -> None:
        self.admin_url, self.url, self.name = admin_url, None, None

    def __enter__(self) -> str | None:
        if not self.admin_url:
            print("load into PostgreSQL: skipped (no --pg-url)", file=sys.stderr)
            return None
        import psycopg

        self.name = f"credit_batch_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.admin_url, autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{self.name}"')
        self.url = self.admin_url.rsplit("/", 1)[0] + "/" + self.name
        return self.url

    def __exit__(self, *exc) -> None:
        if self.name:
            import psycopg

            with psycopg.connect(self.admin_url, autocommit=True) as con:
                con.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
