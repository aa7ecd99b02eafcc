"""
### credit_batch_nightly

Scores every customer of a warehouse snapshot with a pinned model and stores
the scores and their permutation importance in SQL for later lookup.

* **extract**: the snapshot's features, keyed by feature set (the spec) and date ->
  `lake/features/feature_set=F/snapshot_date=D/part-*.parquet`
* **score**: one mapped task per partition: validate, score, reason codes, drift counts,
  with the champion and then with every active challenger (shadow scoring)
* **load**: one writer, one transaction per slice: replaces the (date, model) slice of
  `predictions`, then each challenger's, and compares them (`challenger_comparison`)
* **importance**: permutation importance (with and without labels), partial dependence
* **report**: one self-contained HTML report of the run in the lake

The nightly run scores the newest snapshot at or before its logical date with
the champion. Trigger by hand with `snapshot_date` and `model_version` to
score or backfill a given date; reruns replace their slice, never duplicate it.
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.sdk import Asset, Param, dag, get_current_context, task

from credit_batch.config import ASSETS, RUN_PARAMS, deployment, task_defaults
from credit_batch.run import Run, RunOptions

TZ = "Europe/London"
WHERE = deployment()  # the load's pool, the scoring queue and concurrency (CREDIT_BATCH_...)


@dag(
    schedule=WHERE.schedule,
    start_date=pendulum.datetime(2026, 1, 1, tz=TZ),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["credit-risk", "batch-prediction"],
    default_args=task_defaults(),
    params={name: Param(**schema) for name, schema in RUN_PARAMS.items()},
)
def credit_batch_nightly():
    @task(inlets=[Asset(ASSETS["warehouse"])], outlets=[Asset(ASSETS["features"])])
    def extract() -> list[dict]:
        from credit_batch import pipeline

        ctx = get_current_context()
        dag_run = ctx["dag_run"]
        when = pendulum.instance(ctx.get("logical_date") or dag_run.run_after)
        options = RunOptions.from_params(
            ctx["params"],
            as_of=when.in_timezone(TZ).date(),
            airflow_dag_id=dag_run.dag_id,
            airflow_run_id=dag_run.run_id,
        )
        return _fail_fast(pipeline.extract, options).to_xcom()  # [{"run", "partition"}, ...]

    @task(queue=WHERE.score_queue, max_active_tis_per_dagrun=WHERE.score_concurrency)
    def score(run: dict, partition: dict, shadows: list | None = None) -> dict:
        from credit_batch import pipeline

        shadows = [Run.from_xcom(s) for s in shadows or ()]  # challengers, same partition
        return _fail_fast(pipeline.score_partition, Run.from_xcom(run), partition, shadows)

    @task(pool=WHERE.load_pool, outlets=[Asset(ASSETS["predictions"])])
    def load(plan: list[dict], scored: list[dict]) -> dict:
        from credit_batch import pipeline
        from credit_batch.run import Plan

        whole = Plan.from_xcom(plan)
        # One slice request: iterating a lazy sequence asks past its end (an "XCom not found").
        return _fail_fast(pipeline.load, whole.run, scored[:], whole.shadows)

    @task(execution_timeout=dt.timedelta(minutes=30))
    def importance(plan: list[dict]) -> dict:
        from credit_batch import pipeline

        return _fail_fast(pipeline.importance, Run.from_xcom(plan[0]["run"]))

    @task
    def report(plan: list[dict]) -> dict:
        from credit_batch import pipeline

        return _fail_fast(pipeline.report, Run.from_xcom(plan[0]["run"]))

    plan = extract()  # one item per partition: one mapped score task each
    scored = score.expand_kwargs(plan)
    load(plan, scored) >> importance(plan) >> report(plan)


def _fail_fast(step, *args):
    """Call ``step(settings, *args)``; fail the task at once where a retry cannot help.

    Connections are looked up when a task runs (passwords stay masked in logs).
    """
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowFailException

    from credit_batch.run import call_step

    return call_step(step, *args, connection=Connection.get, fail=AirflowFailException)


credit_batch_nightly()
