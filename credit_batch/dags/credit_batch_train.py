"""
### credit_batch_train

Trains a candidate model on the snapshots whose outcomes have matured, and
validates it **out of time** on the newest matured snapshot at the cutoff,
which it never saw. Gates (`CREDIT_BATCH_GATE_*`: minimum ROC AUC, maximum
score PSI, no worse than the champion by more than a margin) decide whether
it becomes a **challenger**; a failing one stays a candidate with the failed
gate recorded. The registry keeps its figures and its model card.

* **train**: train, validate out of time, gate, write the model card
* **approve**: promote it to champion only if the Param `approve` is set and
  its gates passed; who and why go into `model_events`

Monthly; trigger by hand with `cutoff`, `model_file` (a model's file: its spec,
algorithm, policy and name), `model_name`, `algorithm`, `segment` (of a segmented
model file: the segment to train), `approve` and `reason`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, Param, dag, get_current_context, task

from credit_batch.config import ASSETS, DEFAULT_TRAIN_SCHEDULE, TRAIN_PARAMS, task_defaults

TZ = "Europe/London"


@dag(
    schedule=DEFAULT_TRAIN_SCHEDULE,
    start_date=pendulum.datetime(2026, 1, 1, tz=TZ),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["credit-risk", "model-lifecycle"],
    default_args=task_defaults(timeout_hours=2),
    params={name: Param(**schema) for name, schema in TRAIN_PARAMS.items()},
)
def credit_batch_train():
    @task(outlets=[Asset(ASSETS["models"])])
    def train() -> dict:
        from credit_batch import lifecycle

        ctx = get_current_context()
        when = pendulum.instance(ctx.get("logical_date") or ctx["dag_run"].run_after)
        params = ctx["params"]
        record = _fail_fast(
            lifecycle.train_from_model_file,
            params["model_file"],
            cutoff=params["cutoff"] or when.in_timezone(TZ).date(),
            since=params["since"],
            algorithm=params["algorithm"],
            model_name=params["model_name"],
            segment=params["segment"],
            actor=_actor(ctx),
        )
        return {
            "model_version": record.model_version,
            "role": record.role,
            "gate_status": record.gate_status,
            "model_card": record.model_card,
        }

    @task
    def approve(trained: dict) -> dict:
        from credit_batch import lifecycle

        ctx = get_current_context()
        params = ctx["params"]
        return _fail_fast(
            lifecycle.approve,
            trained["model_version"],
            approve=params["approve"],
            actor=_actor(ctx),
            reason=params["reason"],
        )

    approve(train())


def _actor(ctx) -> str:
    """Who acts: the user who triggered the run (if Airflow knows), and the DAG run."""
    run = ctx["dag_run"]
    where = f"airflow:{run.dag_id}/{run.run_id}"
    user = getattr(run, "triggering_user_name", None)
    return f"{user} ({where})" if user else where


def _fail_fast(step, *args, **kwargs):
    """Call ``step(settings, *args, **kwargs)``; fail at once where a retry cannot help."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowFailException

    from credit_batch.run import call_step

    return call_step(step, *args, connection=Connection.get, fail=AirflowFailException, **kwargs)


credit_batch_train()
