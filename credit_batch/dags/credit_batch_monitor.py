"""
### credit_batch_monitor

Realized performance: when outcomes mature for a past snapshot (the Asset
`credit_batch_outcomes`, which a lender's outcomes load emits) or new scores
are loaded (`credit_batch_predictions`), measures every stored (snapshot,
model) slice whose outcomes are known: ROC AUC, Gini, KS, Brier, bad rate by
risk band and calibration by decile, into `realized_performance` and
`calibration`. Also daily, in case an event was missed.

Trigger by hand with `snapshot_date` to recompute one snapshot.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import (
    Asset,
    AssetOrTimeSchedule,
    CronTriggerTimetable,
    Param,
    dag,
    get_current_context,
    task,
)

from credit_batch.config import ASSETS, task_defaults
from credit_batch.dags._tasks import TZ, fail_fast


@dag(
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 6 * * *", timezone=TZ),
        assets=Asset(ASSETS["outcomes"]) | Asset(ASSETS["predictions"]),
    ),
    start_date=pendulum.datetime(2026, 1, 1, tz=TZ),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["credit-risk", "model-lifecycle"],
    default_args=task_defaults(),
    params={
        "snapshot_date": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Recompute this snapshot only (empty: every new one)",
        ),
    },
)
def credit_batch_monitor():
    @task(inlets=[Asset(ASSETS["outcomes"]), Asset(ASSETS["predictions"])])
    def realized_performance() -> list[dict]:
        from credit_batch import lifecycle

        date = get_current_context()["params"]["snapshot_date"]
        found = fail_fast(lifecycle.monitor, snapshot_date=date, only_new=date is None)
        return [
            {k: str(r[k]) for k in ("snapshot_date", "model_version", "roc_auc")} for r in found
        ]

    realized_performance()


credit_batch_monitor()
