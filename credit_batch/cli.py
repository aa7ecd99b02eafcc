"""The ``credit-batch`` command: every pipeline step without Airflow.

Dates are YYYY-MM-DD; fractions are numbers from 0 to 1. Where the files
live: CREDIT_BATCH_HOME (default ./data) and the variables of the
configuration reference (docs/reference/configuration.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from pathlib import Path

from credit_batch import access, catalog, lifecycle, pipeline, portfolio
from credit_batch.checks import check_rows
from credit_batch.config import (
    ALGORITHMS,
    DEFAULT_ALGORITHM,
    DEFAULT_DEMO_ROWS,
    DEFAULT_DEMO_SNAPSHOTS,
    DEFAULT_SEED,
    DEFAULT_TRAIN_MAX_ROWS,
    EXAMPLES,
    Settings,
)
from credit_batch.errors import CreditBatchError, DataError, ParameterError
from credit_batch.run import RunOptions

__all__ = ["main"]

logger = logging.getLogger(__name__)

_LOOK_FURTHER = 'sql "SELECT risk_band, count(*) FROM {view}{where} GROUP BY 1 ORDER BY 1"'


def _prog() -> str:
    """The command as the user can type it: ``.venv/bin/credit-batch`` where not on PATH."""
    import os
    import shutil

    argv0 = sys.argv[0] if sys.argv else ""
    if Path(argv0).name != "credit-batch":
        return "credit-batch"
    on_path = shutil.which("credit-batch")
    if on_path and Path(on_path).resolve() == Path(argv0).resolve():
        return "credit-batch"
    relative = os.path.relpath(argv0)
    return relative if not relative.startswith("..") else str(Path(argv0).resolve())


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``credit-batch`` console script; returns the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        args.func(Settings.from_env(), args)
        return 0
    except CreditBatchError as exc:
        print(f"credit-batch {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("credit-batch")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="credit-batch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"credit-batch {_version()}")
    p.add_argument("-v", "--verbose", action="store_true", help="log each step's progress")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _demo_data_parser(sub)
    _load_csv_parser(sub)
    _train_parser(sub)
    _candidate_parser(sub)
    _register_parser(sub)
    c = sub.add_parser("promote", help="make a registered version the champion (audited)")
    _audit_arguments(c)
    c.add_argument(
        "--override-gates",
        action="store_true",
        help="promote a version whose gates failed (recorded in model_events)",
    )
    c.set_defaults(func=_promote)
    c = sub.add_parser("retire", help="retire a challenger or candidate (audited)")
    _audit_arguments(c)
    c.set_defaults(func=_retire)
    c = sub.add_parser("models", help="list registered model versions and roles (reads only)")
    c.add_argument("--as-of", help="the champion of each model on this day, from the audit trail")
    c.set_defaults(func=_models)
    _adverse_action_parser(sub)
    _fairness_search_parser(sub)
    c = sub.add_parser(
        "inventory", help="write the model inventory page: owners, tiers, validation, history"
    )
    c.set_defaults(func=_inventory)
    c = sub.add_parser("lineage", help="which model reads which model's scores (reads only)")
    c.add_argument("model", nargs="?", help="only the versions that changing this model affects")
    c.set_defaults(func=_lineage)
    c = sub.add_parser(
        "upgrade", help="migrate the results database in place to this release's schema version"
    )
    c.set_defaults(func=_upgrade)
    c = sub.add_parser("events", help="the model lifecycle's audit trail (reads only)")
    c.add_argument("version", nargs="?", help="only this version's events")
    c.set_defaults(func=_events)
    c = sub.add_parser("monitor", help="realized performance of stored scores with known outcomes")
    c.add_argument("--date", help="only this snapshot, YYYY-MM-DD (default: every one)")
    c.set_defaults(func=_monitor)
    _backfill_parser(sub)
    c = sub.add_parser("run", help="score a snapshot: extract, score, load, importance, report")
    _run_arguments(c)
    c.set_defaults(func=_run)
    c = sub.add_parser("runs", help="recent runs: status, origin, seconds per step (reads only)")
    c.add_argument("--limit", type=int, default=20, help="runs to list, newest first (default 20)")
    c.set_defaults(func=_runs)
    c = sub.add_parser("report", help="write the HTML report of a scored snapshot")
    c.add_argument("--date", required=True, help="snapshot date, YYYY-MM-DD")
    c.add_argument("--model", help="model version (default: the champion)")
    c.add_argument("--model-name", help="whose champion (default: the only model with one)")
    c.set_defaults(func=_report)
    _sql_parser(sub)
    _lookup_parser(sub)
    _score_now_parser(sub)
    _stream_parser(sub)
    _serve_parsers(sub)
    _spec_parser(sub)
    c = sub.add_parser(
        "dags-folder", help="print the folder of the DAG files, for Airflow's dags_folder"
    )
    c.set_defaults(func=_dags_folder)
    c = sub.add_parser("demo", help="demo data, train, promote, score two snapshots: all of it")
    _rows_argument(c)
    _example_argument(c)
    c.add_argument("--events-per-second", type=float, default=50.0,
                   help="streaming example: live events sent per second (50)")  # fmt: skip
    c.add_argument("--stream-seconds", type=float, default=10.0,
                   help="streaming example: seconds of live events (10)")  # fmt: skip
    c.set_defaults(func=_demo)
    return p


def _rows_argument(c: argparse.ArgumentParser) -> None:
    c.add_argument(
        "--rows",
        type=int,
        default=DEFAULT_DEMO_ROWS,
        help=f"customers per snapshot (default {DEFAULT_DEMO_ROWS:,})",
    )


def _example_argument(c: argparse.ArgumentParser) -> None:
    c.add_argument(
        "--example",
        choices=EXAMPLES,
        default="gmsc",
        help="gmsc: the 'Give Me Some Credit' columns (default); lender: a loan book with "
        "its own key, 10 numeric and 5 categorical features (sql/specs/lender/); portfolio: "
        "3 products in 4 countries, a model per product segmented by country "
        "(sql/specs/portfolio/); streaming: GMSC features and streaming features of "
        "payment and card events (sql/specs/streaming/), then live events through Redis",
    )


def _demo_data_parser(sub) -> None:
    c = sub.add_parser("demo-data", help="write the generated demo warehouse")
    _rows_argument(c)
    _example_argument(c)
    c.add_argument(
        "--snapshots",
        type=int,
        default=DEFAULT_DEMO_SNAPSHOTS,
        help=f"monthly snapshots, the newest 2026-10-31 (default {DEFAULT_DEMO_SNAPSHOTS})",
    )
    c.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    c.add_argument(
        "--drift",
        action="store_true",
        help="plant a shift of credit-line utilization in the newest snapshot (drift demo)",
    )
    c.set_defaults(func=_demo_data)


def _load_csv_parser(sub) -> None:
    c = sub.add_parser("load-csv", help="load a real cs-training.csv as one snapshot")
    c.add_argument("path", help="the Kaggle 'Give Me Some Credit' cs-training.csv")
    c.add_argument("--snapshot-date", required=True, help="the snapshot it becomes, YYYY-MM-DD")
    c.set_defaults(func=_load_csv)


def _train_parser(sub) -> None:
    c = sub.add_parser("train", help="fit, evaluate and register a candidate model")
    c.add_argument("--until", required=True, help="last labeled snapshot to train on, YYYY-MM-DD")
    c.add_argument("--since", help="first snapshot to train on, YYYY-MM-DD (default: all)")
    c.add_argument(
        "--algorithm",
        choices=ALGORITHMS,
        help=f"the model (default {DEFAULT_ALGORITHM})",
    )
    c.add_argument(
        "--max-rows",
        type=int,
        help=f"labeled rows sampled at most (default {DEFAULT_TRAIN_MAX_ROWS:,})",
    )
    c.add_argument("--seed", type=int, help=f"default {DEFAULT_SEED}")
    c.add_argument("--promote", action="store_true", help="also make it the champion")
    _model_name_argument(c)
    c.add_argument(
        "--spec",
        help="feature spec file to train on (default: CREDIT_BATCH_SPEC, else the GMSC spec); "
        "the model keeps it",
    )
    c.set_defaults(func=_train)


def _candidate_parser(sub) -> None:
    c = sub.add_parser(
        "train-candidate",
        help="train on matured snapshots, validate out of time, gate: challenger or candidate",
    )
    c.add_argument(
        "--cutoff",
        required=True,
        help="the newest snapshot with outcomes at or before it is the validation snapshot; "
        "older ones are trained on (YYYY-MM-DD)",
    )
    c.add_argument("--since", help="first snapshot to train on, YYYY-MM-DD (default: all)")
    c.add_argument(
        "--algorithm", choices=ALGORITHMS, help=f"the model (default {DEFAULT_ALGORITHM})"
    )
    c.add_argument(
        "--max-rows", type=int, help=f"labeled rows at most (default {DEFAULT_TRAIN_MAX_ROWS:,})"
    )
    c.add_argument("--seed", type=int, help=f"default {DEFAULT_SEED}")
    c.add_argument("--spec", help="feature spec file (default: CREDIT_BATCH_SPEC)")
    _model_name_argument(c)
    c.set_defaults(func=_train_candidate)


def _register_parser(sub) -> None:
    c = sub.add_parser(
        "register",
        help="register a model trained elsewhere (skops, LightGBM text), validate it, gate it",
    )
    c.add_argument("file", help="the model: a .skops archive or a LightGBM text model (.txt)")
    c.add_argument("--trained-until", required=True,
                   help="the newest snapshot the model was trained on, YYYY-MM-DD")  # fmt: skip
    c.add_argument("--cutoff", required=True, help="validate on the newest snapshot with "
                   "outcomes at or before it (after --trained-until), YYYY-MM-DD")  # fmt: skip
    c.add_argument("--spec", help="the feature spec it reads (default: CREDIT_BATCH_SPEC)")
    c.add_argument("--by", help="who registers it (default: the user)")
    _model_name_argument(c)
    c.set_defaults(func=_register)


def _model_name_argument(c: argparse.ArgumentParser) -> None:
    c.add_argument(
        "--model-name",
        help="the model the version belongs to (default: the spec's name, gmsc for GMSC)",
    )
    c.add_argument(
        "--model-file",
        help="a model file (TOML): its name, spec, algorithm, seed, max rows and policy; "
        "the flags given beside it win",
    )
    c.add_argument(
        "--segment",
        help="of a segmented model file (segment_by): the segment to train on "
        "(default: every row, the pooled version)",
    )
    c.add_argument(
        "--each-segment",
        action="store_true",
        help="of a segmented model file: a version per segment its spec declares "
        '(and the pooled one with fallback = "pooled")',
    )


def _audit_arguments(c: argparse.ArgumentParser) -> None:
    c.add_argument("version", help="a version `credit-batch models` lists")
    c.add_argument("--reason", required=True, help="why (kept in the model_events audit trail)")
    c.add_argument("--by", help="who acts (default: your user name)")


def _backfill_parser(sub) -> None:
    c = sub.add_parser(
        "backfill", help="score every snapshot in a date range; unchanged slices are skipped"
    )
    c.add_argument("--from", dest="date_from", required=True, help="first date, YYYY-MM-DD")
    c.add_argument("--to", dest="date_to", required=True, help="last date, YYYY-MM-DD")
    c.add_argument("--model", help="model version (default: the champion)")
    c.add_argument(
        "--force", action="store_true", help="rescore slices already loaded from the same input"
    )
    c.add_argument("--workers", type=int, default=1, help="scoring processes (default 1)")
    c.set_defaults(func=_backfill)


def _fairness_search_parser(sub) -> None:
    c = sub.add_parser(
        "fairness-search",
        help="less discriminatory alternatives of a candidate: AUC against AIR (writes nothing)",
    )
    c.add_argument("--cutoff", required=True, help="as train-candidate: validate on the newest "
                   "matured snapshot at or before it, train on the ones before")  # fmt: skip
    c.add_argument("--model-file", help="the model file (default: the settings' spec)")
    c.add_argument("--algorithm", choices=ALGORITHMS, help="instead of the model file's")
    c.add_argument("--top", type=int, default=3, help="drivers of the disparity to try (3)")
    c.add_argument("--json", action="store_true", help="print JSON")
    c.set_defaults(func=_fairness_search)


def _adverse_action_parser(sub) -> None:
    c = sub.add_parser(
        "adverse-action",
        help="each declined customer's principal reasons for a snapshot (reads only)",
    )
    c.add_argument("--date", required=True, help="the snapshot, YYYY-MM-DD")
    c.add_argument("--model-name", help="only this model's declines (default: every model's)")
    c.add_argument("--model", help="this version's reasons (default: each champion's)")
    c.add_argument("--customer", help="only this customer's reasons")
    fmt = c.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="print CSV: one row per reason")
    fmt.add_argument("--json", action="store_true", help="print a JSON array: one per decline")
    c.set_defaults(func=_adverse_action)


def _lookup_parser(sub) -> None:
    c = sub.add_parser(
        "lookup",
        help="a customer's latest score and reasons from each model's champion (reads only)",
    )
    c.add_argument("customer_id", help="the customer's id (the key of the results)")
    c.add_argument("--as-of", help="the newest score at or before this date, YYYY-MM-DD")
    c.add_argument("--model-name", help="only this model's score (default: every model's)")
    c.add_argument("--history", action="store_true", help="every stored score, newest first")
    c.add_argument("--json", action="store_true", help="print JSON")
    c.set_defaults(func=_lookup)


def _score_now_parser(sub) -> None:
    c = sub.add_parser(
        "score-now",
        help="score a customer now from the stored batch features (the online store)",
    )
    c.add_argument("customer_id", help="the customer's id (the key of the feature set)")
    c.add_argument("--model-name", help="whose champion (default: the only model with one)")
    c.add_argument("--model", help="model version (default: the champion of the customer)")
    c.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FEATURE=VALUE",
        help='a request-time feature\'s value instead of the stored one (JSON: 5000, "web")',
    )
    c.set_defaults(func=_score_now)


def _score_now(settings: Settings, args) -> None:
    overrides = dict(_override(given) for given in args.set)
    from credit_batch import serve

    found = serve.score_now(
        settings, args.customer_id, model_name=args.model_name, version=args.model,
        overrides=overrides or None,
    )  # fmt: skip
    print(json.dumps(found, default=str, indent=1))


def _override(given: str) -> tuple[str, object]:
    """``NAME=VALUE`` of ``--set``: VALUE as JSON where it is JSON (a number, null,
    a quoted string), else as the text given (a category)."""
    name, sep, text = given.partition("=")
    if not sep or not name:
        raise ParameterError("--set", given, "must be FEATURE=VALUE")
    try:
        return name, json.loads(text)
    except json.JSONDecodeError:
        return name, text


def _stream_parser(sub) -> None:
    c = sub.add_parser(
        "stream-score",
        help="score events of a Redis stream as they arrive, with the stored batch features",
    )
    _stream_arguments(c)
    c.add_argument("--group", default="credit-batch", help="consumer group (default credit-batch)")
    c.add_argument("--consumer", help="this consumer's name (default: host-pid)")
    c.add_argument("--model-name", help="whose champion (default: the only model with one)")
    c.add_argument("--batch-size", type=int, default=500, help="events per micro-batch (500)")
    c.add_argument("--block-ms", type=int, default=200, help="wait for events, ms (200)")
    c.add_argument(
        "--claim-idle-ms",
        type=int,
        default=30_000,
        help="take over a dead consumer's events idle this long, ms (30000)",
    )
    c.add_argument("--max-events", type=int, help="stop after this many events")
    c.add_argument("--idle-exit", type=float, help="stop after this many seconds without events")
    c.add_argument("--metrics-port", type=int, help="serve Prometheus /metrics on this port")
    c.add_argument(
        "--processes", type=int, default=1, help="consumer processes, one group (default 1)"
    )
    c.set_defaults(func=_stream_score)
    c = sub.add_parser(
        "stream-warm",
        help="fill the stream consumers' windows from the warehouse's event history",
    )
    _stream_arguments(c)
    c.add_argument("--model-name", help="whose champion's spec (default: the only model)")
    c.add_argument("--until", required=True, help="ISO time: the history's end, UTC")
    c.set_defaults(func=_stream_warm)


def _stream_arguments(c: argparse.ArgumentParser) -> None:
    """``--stream`` and ``--redis-url``, as every stream command takes them."""
    c.add_argument(
        "--stream",
        default=os.environ.get("CREDIT_BATCH_STREAM"),
        required="CREDIT_BATCH_STREAM" not in os.environ,
        help="the events' stream key (default: CREDIT_BATCH_STREAM)",
    )
    c.add_argument(
        "--redis-url",
        help=f"redis://host:port/db (default: CREDIT_BATCH_REDIS_URL, else {_REDIS_URL})",
    )


_REDIS_URL = "redis://127.0.0.1:6379/0"


def _redis_url(given: str | None = None) -> str:
    """``--redis-url``, else ``CREDIT_BATCH_REDIS_URL``, else the local Redis."""
    return given or os.environ.get("CREDIT_BATCH_REDIS_URL", _REDIS_URL)


def _stream_score(settings: Settings, args) -> None:
    import os
    import signal
    import socket
    import threading

    from credit_batch import stream

    url = _redis_url(args.redis_url)
    consumer = args.consumer or f"{socket.gethostname()}-{os.getpid()}"
    if args.processes != 1:
        return _stream_processes(args, consumer)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    metrics = stream.StreamMetrics()
    server = metrics.serve(args.metrics_port) if args.metrics_port else None
    transport = stream.open_transport(url, args.stream, group=args.group, consumer=consumer)
    try:
        counts = stream.consume(
            settings, transport, model_name=args.model_name, batch_size=args.batch_size,
            block_ms=args.block_ms, claim_idle_ms=args.claim_idle_ms, metrics=metrics,
            max_events=args.max_events, idle_seconds=args.idle_exit, stop=stop,
        )  # fmt: skip
    finally:
        transport.close()
        if server is not None:
            server.shutdown()
    print(json.dumps({"consumer": consumer, **counts}))


def _stream_warm(settings: Settings, args) -> None:
    import datetime as dt

    from credit_batch import stream

    url = _redis_url(args.redis_url)
    try:
        until = dt.datetime.fromisoformat(args.until)
    except ValueError:
        raise ParameterError("--until", args.until, "must be an ISO 8601 time") from None
    if until.tzinfo is not None:
        until = until.astimezone(dt.UTC).replace(tzinfo=None)
    done = stream.warm(settings, url, args.stream, until=until, model_name=args.model_name)
    print(json.dumps({"stream": args.stream, **done}))


def _stream_processes(args, consumer: str) -> None:
    """Run ``--processes`` consumers of one group, each this command with its own name
    (and metrics port, from ``--metrics-port`` on); SIGTERM stops them all."""
    import signal
    import subprocess
    import sys

    if args.processes < 1:
        raise ParameterError("--processes", args.processes, "must be at least 1")
    children = []
    for i in range(args.processes):
        argv = [*sys.argv[1:], "--processes", "1", "--consumer", f"{consumer}-{i}"]
        if args.metrics_port:
            argv += ["--metrics-port", str(args.metrics_port + i)]
        command = [sys.executable, "-m", "credit_batch.cli", *argv]
        children.append(subprocess.Popen(command, stdout=subprocess.PIPE, text=True))
    signal.signal(signal.SIGTERM, lambda *_: [c.terminate() for c in children])
    totals: dict = {}
    for i, child in enumerate(children):
        out, _ = child.communicate()
        for name, value in json.loads(out.strip().splitlines()[-1]).items():
            if name != "consumer":
                totals[name] = totals.get(name, 0) + value
        if child.returncode:
            raise CreditBatchError(f"stream consumer {consumer}-{i} exited {child.returncode}")
    print(json.dumps({"consumers": args.processes, **totals}))


def _serve_parsers(sub) -> None:
    c = sub.add_parser("serve", help="the HTTP API: lookups and online scoring (uvicorn)")
    c.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    c.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    c.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    c.set_defaults(func=_serve)
    c = sub.add_parser("api-key", help="API keys of the HTTP API: create, revoke")
    actions = c.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="create or revoke"
    )
    create = actions.add_parser("create", help="a new key, printed once on the last line")
    create.add_argument("--name", required=True, help="who or what uses it, e.g. dialer")
    create.set_defaults(func=_api_key_create)
    revoke = actions.add_parser("revoke", help="revoke a key by its name")
    revoke.add_argument("--name", required=True, help="the key's name")
    revoke.set_defaults(func=_api_key_revoke)


def _serve(settings: Settings, args) -> None:
    import uvicorn

    check_rows("workers", args.workers, maximum=64)
    check_rows("port", args.port, maximum=65_535)
    _check_port_free(args.host, args.port)
    uvicorn.run(
        "credit_batch.serve:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="warning",
    )


def _check_port_free(host: str, port: int) -> None:
    """Refuse a port another process listens on, before uvicorn prints its own traceback."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ParameterError(
                "--port", port, f"is not free on {host} ({exc.strerror}): pick another with --port"
            ) from exc


def _api_key_create(settings: Settings, args) -> None:
    key = access.create_api_key(settings, args.name)
    print(f"API key {args.name!r} (shown once; only its sha256 is kept):")
    print(key)


def _api_key_revoke(settings: Settings, args) -> None:
    access.revoke_api_key(settings, args.name)
    print(f"revoked API key {args.name!r}")


def _spec_parser(sub) -> None:
    c = sub.add_parser("spec", help="feature spec files: check one against the warehouse")
    actions = c.add_subparsers(
        dest="spec_command", required=True, metavar="ACTION", help="check: the one action"
    )
    check = actions.add_parser(
        "check", help="check a spec: columns, types, snapshots, a sample against its rules"
    )
    check.add_argument("file", help="the spec's TOML file (e.g. sql/specs/gmsc/spec.toml)")
    check.add_argument("--date", help="snapshot to sample, YYYY-MM-DD (default: the newest)")
    check.set_defaults(func=_spec_check)


def _sql_parser(sub) -> None:
    c = sub.add_parser("sql", help="run a read-only query on the results (text or .sql file)")
    c.add_argument("query", help="a SELECT, or the path of a .sql file (e.g. sql/analyst/...)")
    fmt = c.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    fmt.add_argument("--json", action="store_true", help="print a JSON array of rows")
    c.set_defaults(func=_sql)


class _OldFlag(argparse.Action):
    """Stores the value; an old flag name also prints a one-line deprecation notice."""

    def __init__(self, *args, new_flag: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.new_flag = new_flag

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        if option_string != self.new_flag:
            print(
                f"credit-batch: {option_string} is deprecated; use {self.new_flag}", file=sys.stderr
            )
        setattr(namespace, self.dest, values)


def _option_argument(c, option) -> None:
    """The flag of one :data:`~credit_batch.config.RUN_OPTIONS` entry (its name, hyphenated)."""
    kinds = option.schema["type"]
    kinds = kinds if isinstance(kinds, list) else [kinds]
    default = option.schema["default"]
    help_text = f"{option.help[0].lower()}{option.help[1:]} (default: {default})"
    if "boolean" in kinds:
        action = argparse.BooleanOptionalAction
        c.add_argument(
            option.flag, dest=option.name, action=action, default=default, help=help_text
        )
        return
    kind = {"integer": int, "number": float}.get(next(k for k in kinds if k != "null"), str)
    metavar = {int: "N", float: "F"}.get(kind, "D" if "format" in option.schema else "V")
    common = {"dest": option.name, "type": kind, "metavar": metavar, "action": _OldFlag}
    c.add_argument(option.flag, default=default, help=help_text, new_flag=option.flag, **common)
    for old in option.old_flags:  # accepted, not shown
        c.add_argument(
            old, default=argparse.SUPPRESS, help=argparse.SUPPRESS, new_flag=option.flag, **common
        )


def _run_arguments(c: argparse.ArgumentParser) -> None:
    from credit_batch.config import RUN_OPTIONS

    when = c.add_mutually_exclusive_group()
    for option in RUN_OPTIONS:
        _option_argument(when if option.name == "snapshot_date" else c, option)
    when.add_argument(
        "--as-of", help="score the newest snapshot at or before this date, YYYY-MM-DD"
    )
    c.add_argument("--run-id", help="resume this run: reuse its complete scored partitions")
    c.add_argument(
        "--workers",
        type=int,
        default=1,
        help="score partitions in this many processes, as Airflow's mapped tasks (default 1)",
    )


def _demo_data(settings: Settings, args) -> None:
    written = pipeline.demo_data(
        settings,
        rows=args.rows,
        snapshots=args.snapshots,
        seed=args.seed,
        plant_drift=args.drift,
        example=args.example,
    )
    for s in written:
        labeled = "" if s["labeled"] else " (no outcomes yet)"
        print(f"snapshot {s['snapshot_date']}: {s['rows']:,} rows{labeled}")
    print(f"warehouse: {catalog.describe_url(settings.warehouse_url)}")


def _load_csv(settings: Settings, args) -> None:
    n = pipeline.load_csv(settings, args.path, snapshot_date=args.snapshot_date)
    print(f"loaded {n:,} rows of {args.path} as snapshot {args.snapshot_date}")


def _training(settings: Settings, args) -> tuple[Settings, dict]:
    """The settings (with ``--spec``) and the options both training commands take."""
    from credit_batch.model_file import training_options

    if args.spec:
        if args.model_file:
            raise ParameterError("--spec", args.spec, "must not be given with --model-file")
        settings = dataclasses.replace(settings, spec_path=Path(args.spec))
    given = {k: getattr(args, k) for k in ("algorithm", "max_rows", "seed", "model_name")}
    # the file's name, spec, policy and options; a flag beside it wins
    return settings, {"since": args.since, **training_options(args.model_file, **given)}


def _segments(args) -> list[str | None]:
    """The segments to train: ``--each-segment``'s, else ``--segment`` (None: every row)."""
    from credit_batch.model_file import each_segment

    if args.segment is not None and not args.model_file:
        raise ParameterError("--segment", args.segment, "needs --model-file (with segment_by)")
    if not args.each_segment:
        return [args.segment]
    if args.segment is not None or not args.model_file:
        raise ParameterError("--each-segment", True, "needs --model-file, without --segment")
    return each_segment(args.model_file)


def _train(settings: Settings, args) -> None:
    settings, options = _training(settings, args)
    for segment in _segments(args):
        record = pipeline.train(settings, until=args.until, segment=segment, **options)
        label = f" ({record.label})" if record.segment_by else ""
        print(
            f"registered {record.model_version}{label}: ROC AUC {record.roc_auc:.4f}, "
            f"log loss {record.log_loss:.4f}, KS {record.ks:.4f} ({record.training_rows:,} rows)"
        )
        if args.promote:
            print(f"champion: {pipeline.promote(settings, record.model_version).model_version}")


def _spec_check(settings: Settings, args) -> None:
    found = pipeline.check_spec(settings, args.file, snapshot_date=args.date)
    derived = ", ".join(found["derived"]) or "none"
    labeled = "no outcomes table" if found["labeled_rows"] is None else f"{found['labeled_rows']:,}"
    print(f"spec {found['spec']} ({found['path']}): valid, sha256 {found['digest'][:12]}")
    print(f"  table {found['table']}: {found['features']} features fit (query-derived: {derived})")
    print(
        f"  {found['snapshots']} snapshots; sampled {found['sample_rows']:,} rows "
        f"of {found['snapshot_date']}"
    )
    print(
        f"  {found['rows_breaking_rules']:,} sampled rows break a rule; outcomes known: {labeled}"
    )
    for rule, n in found["broken_rules"].items():
        print(f"    {n:>8,}  {rule}")
    for name, values in found["undeclared"].items():
        if values:
            seen = ", ".join(f"{v} ({n:,})" for v, n in values.items())
            policy = {"other": "scored as other", "quarantine": "quarantined"}
            print(f"  {name}: undeclared categories ({policy[found['unseen'][name]]}): {seen}")


def _train_candidate(settings: Settings, args) -> None:
    settings, options = _training(settings, args)
    for segment in _segments(args):
        record = lifecycle.train_candidate(settings, cutoff=args.cutoff, segment=segment, **options)
        _print_candidate(record)


def _register(settings: Settings, args) -> None:
    from credit_batch.model_file import training_options

    if args.spec:
        if args.model_file:
            raise ParameterError("--spec", args.spec, "must not be given with --model-file")
        settings = dataclasses.replace(settings, spec_path=Path(args.spec))
    options = training_options(args.model_file, model_name=args.model_name)
    record = lifecycle.register_outside(
        settings, args.file, cutoff=args.cutoff, trained_until=args.trained_until,
        actor=args.by, **options,
    )  # fmt: skip
    _print_candidate(record)


def _print_candidate(record) -> None:
    found = json.loads(record.validation)
    segment = f"{record.label}, " if record.segment_by else ""
    print(
        f"registered {record.model_version} ({segment}{record.role}): trained "
        f"{record.train_from} .. {record.train_until}, {record.training_rows:,} rows"
    )
    print(
        f"  out of time on {record.validation_date}: ROC AUC {_f(found['roc_auc'])}, "
        f"KS {_f(found['ks'])}, Brier {_f(found['brier'])}, score PSI {_f(found['psi'])}"
    )
    print(f"  gates: {record.gate_status}")
    print(f"  model card: {record.model_card}")


def _f(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _promote(settings: Settings, args) -> None:
    record = lifecycle.promote(
        settings,
        args.version,
        actor=args.by,
        reason=args.reason,
        override_gates=args.override_gates,
    )
    print(f"champion: {record.model_version}")


def _retire(settings: Settings, args) -> None:
    record = lifecycle.retire(settings, args.version, actor=args.by, reason=args.reason)
    print(f"retired: {record.model_version}")


def _models(settings: Settings, args) -> None:
    if args.as_of is not None:
        return _champions_as_of(settings, args.as_of)
    found = catalog.models(settings)
    if not found:
        print("no models registered yet: `credit-batch demo` trains one on demo data")
        return
    for m in found:
        name = m["model_name"] if m["segment"] is None else f"{m['model_name']}/{m['segment']}"
        print(
            f"{name:<12} {m['model_version']:<36} {m['role']:<10} {m['algorithm']:<7} "
            f"until {m['train_until']}  held-out AUC {m['roc_auc']:.4f}  KS {m['ks']:.4f}  "
            f"gates {m['gate_status'] or '-'}"
        )
    print("(held-out AUC and KS: rows of the training window kept out of training;")
    print(" out-of-time figures: `credit-batch train-candidate` and the model card)")


def _inventory(settings: Settings, args) -> None:
    catalog.require_results(settings)
    print(lifecycle.inventory_page(settings))


def _fairness_search(settings: Settings, args) -> None:
    found = lifecycle.fairness_search(
        settings, args.model_file, cutoff=args.cutoff, algorithm=args.algorithm, top=args.top
    )
    if args.json:
        print(json.dumps(found, default=str, indent=1))
        return
    print(f"less discriminatory alternatives, validated on {found['validation_date']} "
          f"(approved: score <= {found['cutoff']})")  # fmt: skip
    print("(*: on the frontier, no other variant has both a higher ROC AUC and a higher AIR)")
    print(f"  {'variant':<44} {'features':>8} {'ROC AUC':>8} {'lowest AIR':>10}")
    for v in found["variants"]:
        air = "n/a" if v["min_air"] is None else f"{v['min_air']:.4f}"
        mark = " *" if v["frontier"] else ""
        print(f"  {v['variant']:<44} {v['features']:>8} {v['roc_auc']:>8.4f} {air:>10}{mark}")


def _adverse_action(settings: Settings, args) -> None:
    found = catalog.adverse_action(
        settings,
        args.date,
        model_name=args.model_name,
        model_version=args.model,
        customer_id=args.customer,
    )
    if args.csv:
        import pyarrow.csv as pacsv

        pacsv.write_csv(_as_table(found, catalog.ADVERSE_ACTION_COLUMNS), sys.stdout.buffer)
    elif args.json:
        print(json.dumps(catalog.notices(found), default=str, indent=1))
    elif not found:
        print(f"no declines with reasons stored for {args.date}")
    else:
        for notice in catalog.notices(found):
            print(
                f"{notice['model_name']} {notice['model_version']} customer "
                f"{notice['customer_id']}: score {notice['score']:.4f} > cutoff {notice['cutoff']}"
            )
            for i, r in enumerate(notice["reasons"], 1):
                print(f"  {i}. {r['reason_text']} ({r['feature']} = {_scored_value(r)})")


def _scored_value(reason: dict) -> str:
    if reason["category"] is not None:
        return reason["category"]
    return "missing" if reason["value"] is None else f"{reason['value']:g}"


def _as_table(rows: list[dict], columns: list[str]):
    import pyarrow as pa

    return pa.Table.from_pylist(rows) if rows else pa.table({c: [] for c in columns})


def _champions_as_of(settings: Settings, day: str) -> None:
    found = catalog.champions_as_of(settings, day)
    if not found:
        print(f"no model had a champion at the end of {day}")
        return
    print(f"champions at the end of {day} (UTC), from model_events:")
    for m in found:
        name = m["model_name"] if m["segment"] is None else f"{m['model_name']}/{m['segment']}"
        until = m["champion_until"] or "now"
        print(
            f"  {name:<16} {m['model_version']:<36} from {m['champion_from']:%Y-%m-%d %H:%M} "
            f"until {until if isinstance(until, str) else f'{until:%Y-%m-%d %H:%M}'}  "
            f"promoted by {m['promoted_by']}: {m['reason'] or '-'}"
        )


def _lineage(settings: Settings, args) -> None:
    found = catalog.lineage(settings, args.model)
    pairs = [(up, n) for n, ups in sorted(found["edges"].items()) for up in sorted(ups)]
    if not pairs:
        print("no model reads another model's score")
        return
    for up, name in pairs:
        print(f"{name} reads {up}")
    what = f"changing {args.model} affects" if args.model else "versions trained on"
    print(f"{what}:" if found["versions"] else f"{what}: no registered version")
    for r in found["versions"]:
        print(
            f"  {r['model_name']} {r['model_version']} ({r['status']}) "
            f"trained on {r['upstream_model']} {r['upstream_version']}"
        )


def _upgrade(settings: Settings, args) -> None:
    before, after = pipeline.upgrade(settings)
    where = catalog.describe_url(settings.results_url)
    if before == after:
        print(f"results database {where}: schema version {after}, nothing to migrate")
    else:
        print(f"results database {where}: schema version {before} -> {after}")


def _events(settings: Settings, args) -> None:
    found = lifecycle.events(settings, args.version)
    if not found:
        print("no model events yet")
    for e in found:
        print(
            f"{e['event_at']:%Y-%m-%d %H:%M:%S}  {e['model_version']:<36} {e['event']:<13} "
            f"by {e['actor']}: {e['reason'] or '-'}"
        )


def _monitor(settings: Settings, args) -> None:
    _performance(lifecycle.monitor(settings, snapshot_date=args.date))
    print(f"monitoring page: {lifecycle.monitoring_page(settings)}")


def _performance(rows: list[dict]) -> None:
    if not rows:
        print("realized performance: no scored snapshot has known outcomes yet")
        return
    print("realized performance (scores against the outcomes known since):")
    print(
        f"  {'snapshot':<10} {'model':<36} {'role':<10} {'sample':<11} {'rows':>9} {'bad rate':>8} "
        f"{'AUC':>6} {'Gini':>6} {'KS':>6} {'Brier':>6}"
    )
    for r in rows:
        print(
            f"  {r['snapshot_date']!s:<10} {r['model_version']:<36} {r['role']:<10} "
            f"{lifecycle.sample_in_words(r.get('in_sample')):<11} "
            f"{r['rows_known']:>9,} {_f(r['bad_rate']):>8} {_f(r['roc_auc']):>6} "
            f"{_f(r['gini']):>6} {_f(r['ks']):>6} {_f(r['brier']):>6}"
        )


def _lookup(settings: Settings, args) -> None:
    catalog.require_results(settings)
    if args.history:
        found = catalog.history(settings, args.customer_id)
    else:
        found = catalog.lookups(
            settings, args.customer_id, as_of=args.as_of, model_name=args.model_name
        )
    if not found:
        when = f" at or before {args.as_of}" if args.as_of else ""
        raise DataError(
            f"no score of customer {args.customer_id}{when} in "
            f"{catalog.describe_url(settings.results_url)}",
            customer_id=args.customer_id,
        )
    if args.json:  # one model: its score; several: a list, one per model
        one = not args.history and len(found) == 1
        print(json.dumps(found[0] if one else found, default=str, indent=1))
    elif args.history:
        print(_pretty(_arrow(found)))
    else:
        for score in found:
            _print_score(score, named=len(found) > 1)


def _print_score(s: dict, *, named: bool = False) -> None:
    model = f"{s['model_name']}: " if named else ""
    print(
        f"{model}customer {s['customer_id']}: score {s['score']:.4f}, band {s['risk_band']}, "
        f"{_points(s['points'])}snapshot {s['snapshot_date']}, model {s['model_version']}, "
        f"run {s['run_id']}"
    )
    for i in (1, 2, 3):
        if s[f"reason_{i}"]:
            text = s[f"reason_{i}_text"] or s[f"reason_{i}"]
            print(f"  reason {i}: {text} ({s[f'reason_{i}']}: {s[f'reason_{i}_value']:+.4f})")


def _points(value) -> str:
    return "" if value is None else f"{value:.0f} points, "


def _arrow(rows: list[dict]):
    import pyarrow as pa

    return pa.Table.from_pylist(rows)


def _backfill(settings: Settings, args) -> None:
    done = lifecycle.backfill(
        settings,
        args.date_from,
        args.date_to,
        model_version=args.model,
        force=args.force,
        workers=args.workers,
    )
    for result in done:
        run = result.run
        what = (
            "skipped: already loaded from the same input"
            if result.loaded.get("skipped")
            else f"{result.loaded['rows_loaded']:,} scored in {result.seconds:.1f} s"
        )
        print(f"{run.snapshot_date}  {run.model_version}  {what}")


def _run(settings: Settings, args) -> None:
    from credit_batch.config import RUN_OPTIONS

    given = {option.name: getattr(args, option.name) for option in RUN_OPTIONS}
    options = RunOptions(**given, as_of=args.as_of, run_id=args.run_id)
    night = portfolio.run_night(settings, options, workers=args.workers, progress=_progress)
    for done in night.results.values():  # every model of the night (one: as it always was)
        _summary(settings, done)
    for name in night.skipped:
        print(f"model {name}: skipped, its slice is already loaded from the same input")
    if len(night.results) + len(night.failed) + len(night.skipped) > 1:
        print(f"portfolio page: {night.page}")
    if len(night.failed) == 1 and not (night.results or night.skipped):
        raise next(iter(night.failed.values()))  # the night's one model: its own error
    if night.failed:
        for name, exc in night.failed.items():
            print(f"model {name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        names = ", ".join(night.failed)
        raise CreditBatchError(f"failed tonight: {names}; the other models loaded")


def _progress(scored, total: int):
    from tqdm import tqdm

    return tqdm(scored, total=total, desc="score", unit="part", file=sys.stderr)


def _summary(settings: Settings, done: pipeline.RunResult) -> None:
    run, loaded = done.run, done.loaded
    print(f"run {run.run_id}: snapshot {run.snapshot_date}, model {run.model_version}")
    print(
        f"  {loaded['rows_loaded']:,} customers scored, {loaded['rows_quarantined']:,} "
        f"quarantined (see the quarantine table); done in {done.seconds:.1f} s"
    )
    other = sum(s.get("rows_other_category", 0) for s in done.scored)
    if other:
        print(f"  {other:,} scored with a category the spec does not declare, as 'other'")
    summary = catalog.run_summary(settings, run.snapshot_date, run.model_version)
    print("  risk band  customers  mean score")
    for b in summary["bands"]:
        print(f"  {b['risk_band']:<9} {b['customers']:>10,}  {b['mean_score']:>10.4f}")
    top = ", ".join(f["feature"] for f in summary["top_features"])
    print(f"  top features (mean |SHAP|): {top}")
    print(f"  importance: {done.importance['importance_status']}")
    print(f"  report: {done.report['report_path']}")
    print(f"  results: {catalog.describe_url(loaded['results'])}")
    view = catalog.scores_view(settings, run.spec.key_type)
    where = f" WHERE model_name = '{run.model_name}'" if run.model_name else ""
    print(f"  look further: {_prog()} {_LOOK_FURTHER.format(view=view, where=where)}")


def _runs(settings: Settings, args) -> None:
    found = catalog.runs(settings, limit=args.limit)
    if not found:
        print(
            "no runs yet: `credit-batch run` scores a snapshot; "
            "on a fresh home, `credit-batch demo`"
        )
        return
    print(
        f"{'snapshot':<10} {'model':<28} {'status':<7} {'started (UTC)':<19} {'rows in':>10} "
        f"{'scored':>10} {'quar.':>6} {'extract s':>9} {'score s':>8} {'load s':>7} "
        f"{'import. s':>9} {'drift':<6} origin"
    )
    for r in found:
        seconds = [
            r[k] or 0.0
            for k in ("extract_seconds", "score_seconds", "load_seconds", "importance_seconds")
        ]
        print(
            f"{r['snapshot_date']!s:<10} {r['model_version']:<28} {r['status']:<7} "
            f"{r['started_at']:%Y-%m-%d %H:%M:%S} {r['rows_in']:>10,} {r['rows_scored']:>10,} "
            f"{r['rows_quarantined']:>6,} {seconds[0]:>9.2f} {seconds[1]:>8.2f} "
            f"{seconds[2]:>7.2f} {seconds[3]:>9.2f} {r['drift_status'] or '-':<6} {r['origin']}"
        )


def _report(settings: Settings, args) -> None:
    catalog.require_results(settings)  # a read: never creates a database
    print(
        pipeline.report_of(
            settings, snapshot_date=args.date, model_version=args.model, model_name=args.model_name
        )
    )


def _dags_folder(settings: Settings, args) -> None:
    from credit_batch.config import DAGS_FOLDER

    print(DAGS_FOLDER)


def _sql(settings: Settings, args) -> None:
    table = catalog.query(settings, args.query)
    if args.csv:
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, sys.stdout.buffer)
    elif args.json:
        print(json.dumps(table.to_pylist(), default=str, indent=1))
    else:
        print(_pretty(table))


def _pretty(table) -> str:
    """A fixed-width text table of a (small) Arrow table."""
    names = table.column_names
    rows = [[_cell(v) for v in row.values()] for row in table.to_pylist()]
    widths = [max([len(n), *(len(r[i]) for r in rows)]) for i, n in enumerate(names)]
    lines = ["  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines)


def _cell(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _demo(settings: Settings, args) -> None:
    if args.example == "portfolio":
        return _portfolio_demo(settings, args)
    record, done, realized = lifecycle.demo(
        settings, rows=args.rows, example=args.example, progress=_progress
    )
    print(f"demo warehouse and champion {record.model_version} (ROC AUC {record.roc_auc:.4f})")
    for result in done:
        _summary(settings, result)
    _performance(realized)
    if args.example == "streaming":
        _stream_demo(settings, args)


def _stream_demo(settings: Settings, args) -> None:
    """The streaming example's live part: events through Redis, scores moving."""

    from credit_batch import stream
    from credit_batch.config import safe_url

    url = _redis_url()
    seconds, rate = args.stream_seconds, args.events_per_second
    print(f"live: {rate:g} payment and card events/s for {seconds:g} s through {safe_url(url)}")
    done = stream.run_demo(settings, url, rate=rate, seconds=seconds)
    counts = done["counts"]
    print(f"  events {counts['events']}, scored {counts['scored']}, dead {counts['dead']}")
    print(f"  {'customer':>10} {'night score':>12} {'score now':>10} {'events':>7}")
    for row in done["customers"]:
        now = "-" if row["now"] is None else f"{row['now']:.4f}"
        print(f"  {row['customer_id']:>10} {row['night']:>12.4f} {now:>10} {row['events']:>7}")


def _portfolio_demo(settings: Settings, args) -> None:
    champions, nights, realized = lifecycle.portfolio_demo(
        settings, rows=args.rows, progress=_progress
    )
    models = sorted({r.model_name for r in champions})
    print(
        f"demo portfolio: {len(champions)} champions of {len(models)} models ({', '.join(models)})"
    )
    for night in nights:
        _night_table(night)
    _performance(realized)
    print(f"  look further: {_prog()} models")
    failed = sorted({label for night in nights for label in night.failed})
    if failed:
        raise CreditBatchError(f"failed in the demo's nights: {', '.join(failed)}")


def _night_table(night) -> None:
    """One line per model and segment of a night: version, rows scored and quarantined."""
    first = next(iter(night.results.values()), None)
    print(f"night {first.run.snapshot_date if first else '-'}:")
    print(f"  {'model/segment':<22} {'version':<36} {'scored':>9} {'quarantined':>11}")
    for label, done in sorted(night.results.items()):
        loaded = done.loaded
        print(
            f"  {label:<22} {done.run.model_version:<36} {loaded['rows_loaded']:>9,} "
            f"{loaded['rows_quarantined']:>11,}"
        )
    for name, exc in night.failed.items():
        print(f"  {name:<22} failed: {type(exc).__name__}: {exc}")
    print(f"  portfolio page: {night.page}")


if __name__ == "__main__":
    sys.exit(main())
