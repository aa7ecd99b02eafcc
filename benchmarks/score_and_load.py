"""Score and load N rows three ways in one process; print rows/s and ratios.

1. bare model: ``predict_proba`` on an in-memory frame (the limit);
2. naive: ``pandas.read_sql`` of the whole snapshot, ``predict_proba`` on the
   whole frame, ``DataFrame.to_sql`` of the same six columns the pipeline
   stores, (a) into a DuckDB results file through SQLAlchemy (duckdb-engine,
   the same store as the pipeline) and (b) into SQLite (the fastest
   ``to_sql`` target, the most generous naive baseline);
3. pipeline: ``score_partition`` over every extracted partition, then
   ``load`` (one transaction into the DuckDB results file).

Extract (warehouse -> Parquet) is timed and printed on its own line; it is
work the bare model and the naive way also need in some form.

    pip install -e '.[bench]'
    python benchmarks/score_and_load.py --rows 2000000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from credit_batch import pipeline, registry, results
from credit_batch.config import Settings
from credit_batch.features import DEFAULT_FEATURE_SPEC


def _prepare(settings: Settings, rows: int) -> str:
    written = pipeline.demo_data(settings, rows=rows, snapshots=1, unlabeled_snapshots=0)
    record = pipeline.train(settings, until=written[0]["snapshot_date"], max_rows=200_000)
    with results.open_results(settings) as db:
        registry.promote(db, settings, record.model_version)
    return written[0]["snapshot_date"]


def _bare(settings: Settings, plan: dict) -> float:
    import pandas as pd

    model = registry.load_model(
        settings.home,
        plan["run"]["artifact_path"],
        plan["run"]["sha256"],
        version=plan["run"]["model_version"],
    )
    frame = pd.concat([pd.read_parquet(p["path"]) for p in plan["partitions"]])
    t0 = time.perf_counter()
    model.predict_proba(frame[DEFAULT_FEATURE_SPEC.names])
    return time.perf_counter() - t0


def _naive(settings: Settings, plan: dict, date: str, sink_url: str) -> float:
    import pandas as pd
    import sqlalchemy as sa

    from credit_batch.db import read_sql
    from credit_batch.scoring import risk_bands

    run = plan["run"]
    model = registry.load_model(
        settings.home, run["artifact_path"], run["sha256"], version=run["model_version"]
    )
    query = sa.text(read_sql(settings.sql_dir, "extract/features.sql"))
    source, sink = sa.create_engine(settings.warehouse_url), sa.create_engine(sink_url)
    t0 = time.perf_counter()
    frame = pd.read_sql(query, source, params={"snapshot_date": date})
    frame["score"] = model.predict_proba(frame[DEFAULT_FEATURE_SPEC.names])[:, 1]
    frame["risk_band"] = risk_bands(frame["score"].to_numpy()).to_pandas().astype(str)
    frame["model_version"], frame["run_id"] = run["model_version"], run["run_id"]
    columns = ["snapshot_date", "customer_id", "model_version", "run_id", "score", "risk_band"]
    frame[columns].to_sql("predictions", sink, index=False, if_exists="replace")
    seconds = time.perf_counter() - t0
    source.dispose()
    sink.dispose()
    return seconds


def _reason_cost(model, frame, *, background, chunk_rows: int) -> tuple[float, float]:
    """Seconds to score ``frame`` in chunks without, then with, reason codes."""
    from credit_batch.explain import explain, top_reasons

    names = DEFAULT_FEATURE_SPEC.names
    chunks = [frame.iloc[i : i + chunk_rows][names] for i in range(0, len(frame), chunk_rows)]
    t0 = time.perf_counter()
    for chunk in chunks:
        model.predict_proba(chunk)
    t1 = time.perf_counter()
    for chunk in chunks:
        _, contributions, _ = explain(model, chunk, background=background)
        top_reasons(contributions, names)
    return t1 - t0, time.perf_counter() - t1


def _reasons(settings: Settings, plan: dict, date: str) -> list[tuple[str, int, float, float]]:
    """Reason-code cost for the logistic champion and for a HistGradientBoosting model."""
    import pandas as pd

    from credit_batch.validation import split_valid

    frame = pd.concat([pd.read_parquet(p["path"]) for p in plan["partitions"][:4]])
    frame = frame[split_valid(frame.reset_index(drop=True))[0]]
    with results.open_results(settings) as db:
        champion = registry.champion(db, settings)
    logreg = registry.load_model(
        settings.home, champion.artifact_path, champion.sha256, version=champion.model_version
    )
    out = [
        (
            "logreg",
            len(frame),
            *_reason_cost(logreg, frame, background=champion.background, chunk_rows=100_000),
        )
    ]
    hgb_record = pipeline.train(settings, until=date, algorithm="hgb", max_rows=100_000)
    hgb = registry.load_model(
        settings.home, hgb_record.artifact_path, hgb_record.sha256, version=hgb_record.model_version
    )
    sample = frame.iloc[:20_000]
    out.append(("hgb", len(sample), *_reason_cost(hgb, sample, background=None, chunk_rows=10_000)))
    return out


def _pipeline(settings: Settings, plan: dict) -> float:
    t0 = time.perf_counter()
    scored = [pipeline.score_partition(settings, plan["run"], p) for p in plan["partitions"]]
    pipeline.load(settings, plan["run"], scored)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--partition-rows", type=int, default=250_000)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            home=Path(tmp), partition_rows=args.partition_rows, chunk_rows=args.chunk_rows
        )
        date = _prepare(settings, args.rows)
        t0 = time.perf_counter()
        plan = pipeline.extract(settings, snapshot_date=date)
        extract_s = time.perf_counter() - t0
        bare_s = _bare(settings, plan)
        pipe_s = _pipeline(settings, plan)
        naive_duckdb_s = _naive(settings, plan, date, f"duckdb:///{tmp}/naive.duckdb")
        naive_sqlite_s = _naive(settings, plan, date, f"sqlite:///{tmp}/naive.sqlite")
        reasons = _reasons(settings, plan, date)
    n = args.rows
    print(f"rows: {n:,}  partitions: {len(plan['partitions'])}  chunk rows: {args.chunk_rows:,}")
    for name, s in (
        ("bare predict_proba", bare_s),
        ("pipeline score + load", pipe_s),
        ("(pipeline extract)", extract_s),
        ("naive to_sql DuckDB", naive_duckdb_s),
        ("naive to_sql SQLite", naive_sqlite_s),
    ):
        print(f"  {name:<24} {s:8.2f} s  {n / s:>12,.0f} rows/s")
    print(f"pipeline / bare model:          {pipe_s / bare_s:.2f}x the time (bar: <= 2x)")
    print(f"naive (DuckDB) / pipeline:      {naive_duckdb_s / pipe_s:.1f}x (bar: >= 10x)")
    print(f"naive (SQLite) / pipeline:      {naive_sqlite_s / pipe_s:.1f}x")
    for algorithm, rows, plain_s, reasons_s in reasons:
        print(
            f"reason codes, {algorithm} ({rows:,} rows): scoring {rows / plain_s:,.0f} rows/s, "
            f"with reasons {rows / reasons_s:,.0f} rows/s: {reasons_s / plain_s:.2f}x the time"
            + (" (bar: <= 2x)" if algorithm == "logreg" else "")
        )


if __name__ == "__main__":
    main()
