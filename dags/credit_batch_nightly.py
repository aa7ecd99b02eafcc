"""
### credit_batch_nightly

Scores every customer of a warehouse snapshot with a pinned model and stores
the scores and their permutation importance in SQL for later lookup.

* **extract**: the snapshot's features -> `lake/features/snapshot_date=D/part-*.parquet`
* **score**: one mapped task per partition: validate, score, reason codes, drift counts
* **load**: one writer, one transaction, replaces the (date, model) slice of `predictions`
* **importance**: permutation importance (with and without labels), partial dependence
* **report**: one self-contained HTML report of the run in the lake

The nightly run scores the newest snapshot at or before its logical date with
the champion. Trigger by hand with `snapshot_date` and `model_version` to
score or backfill a given date; reruns replace their slice, never duplicate it.
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from credit_batch.config import RUN_PARAMS

TZ = "Europe/London"


@dag(
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz=TZ),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["credit-risk", "batch-prediction"],
    default_args={
        "owner": "credit-risk",
        "retries": 2,
        "retry_delay": dt.timedelta(minutes=2),
        "execution_timeout": dt.timedelta(hours=1),
    },
    params={name: Param(**schema) for name, schema in RUN_PARAMS.items()},
)
def credit_batch_nightly():
    @task
    def extract() -> list[dict]:
        ctx = get_current_context()
        p, dag_run = ctx["params"], ctx["dag_run"]
        when = pendulum.instance(ctx.get("logical_date") or dag_run.run_after)
        plan = _call(
            "extract",
            snapshot_date=p["snapshot_date"],
            as_of=when.in_timezone(TZ).date(),
            model_version=p["model_version"],
            chunk_rows=p["chunk_rows"],
            rows_per_partition=p["rows_per_partition"],
            max_quarantine_fraction=p["max_quarantine_fraction"],
            fail_on_drift=p["fail_on_drift"],
            airflow_dag_id=dag_run.dag_id,
            airflow_run_id=dag_run.run_id,
        )
        ctx["ti"].xcom_push(key="run", value=plan["run"])  # the run's keys, for later tasks
        return plan["partitions"]  # mapped over: one score task per partition

    @task
    def score(run: dict, partition: dict) -> dict:
        return _call("score_partition", run, partition)

    @task
    def load(run: dict, scored: list[dict]) -> dict:
        return _call("load", run, list(scored))

    @task(execution_timeout=dt.timedelta(minutes=30))
    def importance(run: dict) -> dict:
        p = get_current_context()["params"]
        return _call(
            "explain", run, sample_rows=p["importance_sample_rows"], repeats=p["importance_repeats"]
        )

    @task
    def report(run: dict) -> dict:
        return _call("report", run)

    partitions = extract()
    run = partitions["run"]
    scored = score.partial(run=run).expand(partition=partitions)
    load(run, scored) >> importance(run) >> report(run)


def _call(step: str, *args, **kwargs):
    """Run ``credit_batch.pipeline.<step>``; fail at once where a retry cannot help."""
    from airflow.sdk.exceptions import AirflowFailException

    from credit_batch import pipeline
    from credit_batch.config import Settings
    from credit_batch.errors import CreditBatchError

    try:
        return getattr(pipeline, step)(Settings.from_env(), *args, **kwargs)
    except CreditBatchError as exc:
        if exc.retryable:
            raise
        raise AirflowFailException(str(exc)) from exc


credit_batch_nightly()
