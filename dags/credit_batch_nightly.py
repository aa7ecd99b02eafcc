"""
### credit_batch_nightly

Scores every customer of a warehouse snapshot with a pinned model and stores
the scores and their permutation importance in SQL for later lookup.

* **extract**: the snapshot's features -> `lake/features/snapshot_date=D/part-*.parquet`
* **score**: one mapped task per partition -> `lake/scores/.../part-*.parquet`
* **load**: one writer, one transaction, replaces the (date, model) slice of `predictions`
* **importance**: permutation importance on the snapshot's labeled rows

The nightly run scores the newest snapshot at or before its logical date with
the champion. Trigger by hand with `snapshot_date` and `model_version` to
score or backfill a given date; reruns replace their slice, never duplicate it.
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from credit_batch.config import DEFAULT_CHUNK_ROWS, DEFAULT_PARTITION_ROWS

TZ = "Europe/London"
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


@dag(
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz=TZ),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["credit-risk", "batch-prediction"],
    default_args={"owner": "credit-risk", "retries": 2, "retry_delay": dt.timedelta(minutes=2),
                  "execution_timeout": dt.timedelta(hours=1)},
    params={
        "snapshot_date": Param(None, type=["null", "string"], format="date",
                               description="Snapshot to score (YYYY-MM-DD); empty: newest"),
        "model_version": Param(None, type=["null", "string"], pattern=VERSION_PATTERN,
                               description="Registered model version; empty: the champion"),
        "chunk_rows": Param(DEFAULT_CHUNK_ROWS, type="integer", minimum=1, maximum=5_000_000),
        "rows_per_partition": Param(DEFAULT_PARTITION_ROWS, type="integer", minimum=100,
                                    maximum=50_000_000),
        "importance_sample_rows": Param(20_000, type="integer", minimum=100, maximum=1_000_000),
        "importance_repeats": Param(5, type="integer", minimum=1, maximum=50),
    },
)
def credit_batch_nightly():
    @task
    def extract() -> list[dict]:
        ctx = get_current_context()
        params, run = ctx["params"], ctx["dag_run"]
        when = pendulum.instance(ctx.get("logical_date") or run.run_after).in_timezone(TZ)
        plan = _call("extract", snapshot_date=params["snapshot_date"], as_of=when.date(),
                     model_version=params["model_version"], chunk_rows=params["chunk_rows"],
                     rows_per_partition=params["rows_per_partition"],
                     airflow_dag_id=run.dag_id, airflow_run_id=run.run_id)
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
        params = get_current_context()["params"]
        return _call("explain", run, sample_rows=params["importance_sample_rows"],
                     repeats=params["importance_repeats"])

    partitions = extract()
    run = partitions["run"]
    scored = score.partial(run=run).expand(partition=partitions)
    load(run, scored) >> importance(run)


def _call(step: str, *args, **kwargs):
    """Run ``credit_batch.pipeline.<step>``; fail without retrying where a retry cannot help."""
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
