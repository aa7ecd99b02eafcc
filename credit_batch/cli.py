"""The ``credit-batch`` command: every pipeline step without Airflow."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import time

from credit_batch.config import MAX_WORKERS, check_rows
from credit_batch.errors import CreditBatchError

logger = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``credit-batch`` console script."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from credit_batch.config import Settings

    try:
        args.func(Settings.from_env(), args)
        return 0
    except CreditBatchError as exc:
        print(f"credit-batch {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="credit-batch", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("demo-data", help="write the generated demo warehouse")
    c.add_argument("--rows", type=int, default=150_000, help="customers per snapshot")
    c.add_argument("--snapshots", type=int, default=6, help="monthly snapshots")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument(
        "--drift",
        action="store_true",
        help="shift credit-line utilization in the newest snapshot (drift demo)",
    )
    c.set_defaults(func=_demo_data)
    c = sub.add_parser("load-csv", help="load a real cs-training.csv as one snapshot")
    c.add_argument("path")
    c.add_argument("--snapshot-date", required=True)
    c.set_defaults(func=_load_csv)
    c = sub.add_parser("train", help="fit, evaluate and register a candidate model")
    c.add_argument("--until", required=True, help="last labeled snapshot date to train on")
    c.add_argument("--since", help="first snapshot date to train on")
    c.add_argument("--algorithm", default="logreg", choices=["logreg", "hgb"])
    c.add_argument("--max-rows", type=int, default=300_000)
    c.add_argument("--seed", type=int, default=42)
    c.add_argument("--promote", action="store_true", help="also make it the champion")
    c.set_defaults(func=_train)
    c = sub.add_parser("promote", help="make a registered version the champion")
    c.add_argument("version")
    c.set_defaults(func=_promote)
    c = sub.add_parser("models", help="list registered model versions")
    c.set_defaults(func=_models)
    c = sub.add_parser("run", help="score a snapshot: extract, score, load, importance")
    _run_arguments(c)
    c.set_defaults(func=_run)
    c = sub.add_parser("runs", help="recent runs: counts and seconds per step")
    c.add_argument("--limit", type=int, default=20)
    c.set_defaults(func=_runs)
    c = sub.add_parser("report", help="write the HTML report of a scored snapshot")
    c.add_argument("--date", required=True, help="snapshot date")
    c.add_argument("--model", help="model version (default: the champion)")
    c.set_defaults(func=_report)
    c = sub.add_parser("demo", help="demo data, train, promote, score, explain: all of it")
    c.add_argument("--rows", type=int, default=150_000, help="customers per snapshot")
    c.set_defaults(func=_demo)
    return p


def _run_arguments(c: argparse.ArgumentParser) -> None:
    when = c.add_mutually_exclusive_group()
    when.add_argument("--date", help="snapshot date to score (must exist)")
    when.add_argument("--as-of", help="score the newest snapshot at or before this date")
    c.add_argument("--model", help="model version (default: the champion)")
    c.add_argument("--run-id", help="resume this run: reuse its complete scored partitions")
    c.add_argument(
        "--fail-on-drift",
        action="store_true",
        help="fail, loading nothing, when the score PSI is above 0.25",
    )
    c.add_argument(
        "--max-quarantine",
        type=float,
        default=0.01,
        help="error budget: share of rows that may break the rules (default 0.01)",
    )
    c.add_argument("--chunk-rows", type=int)
    c.add_argument("--partition-rows", type=int)
    c.add_argument(
        "--workers",
        type=int,
        default=1,
        help="score partitions in this many processes, as Airflow's mapped tasks (default 1)",
    )
    c.add_argument("--sample-rows", type=int, default=20_000, help="importance sample")
    c.add_argument("--repeats", type=int, default=5, help="importance repeats")


def _demo_data(settings, args) -> None:
    from credit_batch import pipeline

    for s in pipeline.demo_data(
        settings, rows=args.rows, snapshots=args.snapshots, seed=args.seed, drift=args.drift
    ):
        print(
            f"snapshot {s['snapshot_date']}: {s['rows']:,} rows"
            f"{'' if s['labeled'] else ' (no outcomes yet)'}"
        )
    print(f"warehouse: {settings.warehouse_url}")


def _load_csv(settings, args) -> None:
    from credit_batch import warehouse

    with warehouse.open_warehouse(settings, read_only=False) as wh:
        n = warehouse.load_gmsc_csv(wh, settings, args.path, args.snapshot_date)
    print(f"loaded {n:,} rows of {args.path} as snapshot {args.snapshot_date}")


def _train(settings, args) -> None:
    _train_model(settings, args)


def _train_model(settings, args):
    """Train, print the record, promote if asked; return the record."""
    from credit_batch import pipeline

    record = pipeline.train(
        settings,
        until=args.until,
        since=args.since,
        algorithm=args.algorithm,
        max_rows=args.max_rows,
        seed=args.seed,
    )
    print(
        f"registered {record.model_version}: ROC AUC {record.roc_auc:.4f}, "
        f"log loss {record.log_loss:.4f}, KS {record.ks:.4f} "
        f"({record.training_rows:,} rows)"
    )
    if args.promote:
        _promote(settings, argparse.Namespace(version=record.model_version))
    return record


def _promote(settings, args) -> None:
    from credit_batch import registry, results

    with results.open_results(settings) as db:
        record = registry.promote(db, settings, args.version)
    print(f"champion: {record.model_version}")


def _models(settings, args) -> None:
    from credit_batch import registry, results

    with results.open_results(settings) as db:
        for m in registry.list_models(db, settings):
            print(
                f"{m['model_version']:<36} {m['status']:<9} {m['algorithm']:<7} "
                f"until {m['train_until']}  AUC {m['roc_auc']:.4f}  KS {m['ks']:.4f}"
            )


def _run(settings, args) -> None:
    from tqdm import tqdm

    from credit_batch import pipeline

    t0 = time.perf_counter()
    check_rows("workers", args.workers, maximum=MAX_WORKERS)
    as_of = None if args.date else (args.as_of or dt.date.max)
    plan = pipeline.extract(
        settings,
        snapshot_date=args.date,
        as_of=as_of,
        model_version=args.model,
        rows_per_partition=args.partition_rows,
        chunk_rows=args.chunk_rows,
        max_quarantine_fraction=args.max_quarantine,
        fail_on_drift=args.fail_on_drift,
        run_id=args.run_id,
    )
    run = plan["run"]
    parts = plan["partitions"]
    scored = list(
        tqdm(
            pipeline.score_partitions(settings, run, parts, workers=args.workers),
            total=len(parts),
            desc="score",
            unit="part",
            file=sys.stderr,
        )
    )
    loaded = pipeline.load(settings, run, scored)
    explained = pipeline.explain(settings, run, sample_rows=args.sample_rows, repeats=args.repeats)
    explained |= pipeline.report(settings, run)
    _summary(settings, run, loaded, explained, time.perf_counter() - t0)


def _summary(settings, run, loaded, explained, seconds) -> None:
    rows = loaded["rows_loaded"]
    print(f"run {run['run_id']}: snapshot {run['snapshot_date']}, model {run['model_version']}")
    print(
        f"  {rows:,} customers scored, {loaded['rows_quarantined']:,} quarantined "
        f"(see the quarantine table); scored, loaded and explained in {seconds:.1f} s"
    )
    print(f"  importance: {explained['importance_status']}")
    print(f"  report: {explained['report_path']}")
    print(f"  results: {loaded['results']}")
    print(
        "  try: duckdb -readonly "
        + settings.results_url.removeprefix("duckdb:///")
        + ' "SELECT risk_band, count(*) FROM latest_predictions GROUP BY 1 ORDER BY 1"'
    )


def _runs(settings, args) -> None:
    from credit_batch import results
    from credit_batch.db import read_sql

    with results.open_results(settings) as db:
        runs = db.fetch_arrow(
            read_sql(settings.sql_dir, "registry/runs.sql"), {"limit": args.limit}
        ).to_pylist()
    print(
        f"{'snapshot':<10} {'model':<28} {'rows in':>10} {'scored':>10} {'quar.':>6} "
        f"{'extract s':>9} {'score s':>8} {'load s':>7} {'explain s':>9} drift"
    )
    for r in runs:
        seconds = [
            r[k] or 0.0
            for k in ("extract_seconds", "score_seconds", "load_seconds", "importance_seconds")
        ]
        print(
            f"{r['snapshot_date']!s:<10} {r['model_version']:<28} {r['rows_in']:>10,} "
            f"{r['rows_scored']:>10,} {r['rows_quarantined']:>6,} {seconds[0]:>9.2f} "
            f"{seconds[1]:>8.2f} {seconds[2]:>7.2f} {seconds[3]:>9.2f} {r['drift_status']}"
        )


def _report(settings, args) -> None:
    from credit_batch.report import write_report

    print(write_report(settings, snapshot_date=args.date, model_version=args.model))


def _demo(settings, args) -> None:
    from credit_batch import pipeline

    written = pipeline.demo_data(settings, rows=args.rows, snapshots=6, seed=0)
    print(f"demo warehouse: {len(written)} snapshots of {args.rows:,} customers")
    dates = [w["snapshot_date"] for w in written]
    record = _train_model(
        settings,
        argparse.Namespace(
            until=dates[-3], since=None, algorithm="logreg", max_rows=300_000, seed=42, promote=True
        ),
    )
    for date in dates[-2:]:
        _run(settings, _run_namespace(date=date, model=record.model_version))


def _run_namespace(**given) -> argparse.Namespace:
    base = {
        "date": None,
        "as_of": None,
        "model": None,
        "chunk_rows": None,
        "partition_rows": None,
        "workers": 1,
        "run_id": None,
        "max_quarantine": 0.01,
        "fail_on_drift": False,
        "sample_rows": 20_000,
        "repeats": 5,
    }
    return argparse.Namespace(**(base | given))


if __name__ == "__main__":
    sys.exit(main())
