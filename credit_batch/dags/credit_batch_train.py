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
model file: the segment to train), `outside_model` and `trained_until` (register a
model trained elsewhere instead), `approve` and `reason`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, Param, dag, get_current_context, task

from credit_batch.config import ASSETS, DEFAULT_TRAIN_SCHEDULE, TRAIN_PARAMS, task_defaults
from credit_batch.dags._tasks import TZ, actor, fail_fast, logical_day


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

        params = get_current_context()["params"]
        record = fail_fast(
            lifecycle.train_from_model_file,
            params["model_file"],
            cutoff=params["cutoff"] or logical_day(),
            since=params["since"],
            algorithm=params["algorithm"],
            model_name=params["model_name"],
            segment=params["segment"],
            actor=actor(),
            outside_model=params["outside_model"],
            trained_until=params["trained_until"],
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

        params = get_current_context()["params"]
        return fail_fast(
            lifecycle.approve,
            trained["model_version"],
            approve=params["approve"],
            actor=actor(),
            reason=params["reason"],
        )

    approve(train())


credit_batch_train()
