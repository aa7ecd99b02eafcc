"""What the three DAG files share: a ``credit_batch`` step called as a task.

Not a DAG (``.airflowignore`` keeps the scheduler from parsing it); imported
inside tasks, so a DAG file's parse stays light.
"""

from __future__ import annotations

TZ = "Europe/London"  # the DAGs' schedules and the dates they score


def fail_fast(step, *args, **kwargs):
    """Call ``step(settings, *args, **kwargs)``; fail the task at once where a retry cannot
    help (Airflow's ``AirflowFailException``). Connections are looked up when the task runs,
    so passwords stay masked in its log."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowFailException

    from credit_batch.run import call_step

    return call_step(step, *args, connection=Connection.get, fail=AirflowFailException, **kwargs)


def run_options():
    """The nightly run's options from its Params, logical day and ids."""
    from airflow.sdk import get_current_context

    from credit_batch.run import RunOptions

    ctx = get_current_context()
    dag_run = ctx["dag_run"]
    return RunOptions.from_params(
        ctx["params"],
        as_of=logical_day(),
        airflow_dag_id=dag_run.dag_id,
        airflow_run_id=dag_run.run_id,
    )


def logical_day():
    """The run's logical date (a manual run without one: when it was queued) in :data:`TZ`."""
    import pendulum
    from airflow.sdk import get_current_context

    ctx = get_current_context()
    return (
        pendulum.instance(ctx.get("logical_date") or ctx["dag_run"].run_after)
        .in_timezone(TZ)
        .date()
    )


def actor() -> str:
    """Who acts: the user who triggered the run (if Airflow knows), and the DAG run."""
    from airflow.sdk import get_current_context

    run = get_current_context()["dag_run"]
    where = f"airflow:{run.dag_id}/{run.run_id}"
    user = getattr(run, "triggering_user_name", None)
    return f"{user} ({where})" if user else where
