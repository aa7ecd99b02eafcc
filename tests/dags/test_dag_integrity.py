"""DagBag integrity: the DAG parses, is wired as designed, and touches nothing at parse time."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest

from credit_batch.config import DAGS_FOLDER

pytestmark = pytest.mark.airflow

DAG_ID = "credit_batch_nightly"
DAG_IDS = ["credit_batch_monitor", "credit_batch_nightly", "credit_batch_train"]


@pytest.fixture(scope="module")
def dagbag(airflow_env):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_FOLDER))


def test_dags_folder_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert sorted(dagbag.dags) == DAG_IDS


def test_lifecycle_dags_have_exact_tasks_and_wiring(dagbag):
    train, monitor = dagbag.dags["credit_batch_train"], dagbag.dags["credit_batch_monitor"]
    assert set(train.task_dict) == {"train", "approve"}
    assert train.task_dict["train"].downstream_task_ids == {"approve"}
    assert set(monitor.task_dict) == {"realized_performance"}
    assert train.catchup is False and monitor.catchup is False
    assert {"credit-risk", "model-lifecycle"} <= set(train.tags) & set(monitor.tags)
    assert train.params.get_param("approve").resolve(False) is False


def test_assets_trace_the_flow_and_schedule_the_monitor(dagbag):
    nightly, monitor = dagbag.dags[DAG_ID], dagbag.dags["credit_batch_monitor"]
    outlets = {t: [a.name for a in nightly.task_dict[t].outlets] for t in ("extract", "load")}
    assert outlets == {
        "extract": ["credit_batch_lake_features"],
        "load": ["credit_batch_predictions", "credit_batch_model_scores"],  # + one per model
    }
    assert type(nightly.task_dict["load"].outlets[1]).__name__ == "AssetAlias"
    watched = {a.name for a in monitor.timetable.asset_condition.objects}
    assert watched == {"credit_batch_outcomes", "credit_batch_predictions"}
    assert [a.name for a in dagbag.dags["credit_batch_train"].task_dict["train"].outlets] == [
        "credit_batch_model_registry"
    ]


def test_nightly_dag_has_exact_tasks_and_wiring(dagbag):
    """Wave 0 as one model's night always was; waves 1 and 2 (models reading models'
    scores) wait for the wave before to be done, failed models included."""
    dag = dagbag.dags[DAG_ID]
    tasks = {"plan", "extract", "score", "load", "importance", "report", "portfolio_page"}
    tasks |= {"every_model_loaded", "models_of_wave_0", "materialize"}
    for w in (1, 2):
        tasks |= {f"models_of_wave_{w}", f"extract_wave_{w}", f"score_wave_{w}"}
        tasks |= {f"materialize_wave_{w}"}
        tasks |= {f"wave_{w}.load", f"wave_{w}.importance", f"wave_{w}.report"}
        tasks |= {f"wave_{w - 1}_done"}
    assert set(dag.task_dict) == tasks
    waves = {f"models_of_wave_{w}" for w in (0, 1, 2)}
    assert dag.task_dict["plan"].downstream_task_ids == waves
    assert dag.task_dict["models_of_wave_0"].downstream_task_ids == {"extract", "load"}
    assert dag.task_dict["extract"].downstream_task_ids == {"score", "load", "materialize"}
    for name in ("materialize", "materialize_wave_1", "materialize_wave_2"):  # beside scoring
        task = dag.task_dict[name]
        assert task.downstream_task_ids == {"every_model_loaded"}, name  # its failure fails it
        assert task.pool == dag.task_dict["load"].pool  # a writer of the results, as a load
    assert dag.task_dict["score"].downstream_task_ids == {"load"}
    assert dag.task_dict["load"].downstream_task_ids == {"importance"}
    assert dag.task_dict["importance"].downstream_task_ids == {"report"}
    ends = {"portfolio_page", "every_model_loaded"}  # every wave's failure fails the run
    for w in (0, 1):
        report = dag.task_dict["report" if w == 0 else f"wave_{w}.report"]
        assert report.downstream_task_ids == {f"wave_{w}_done"} | ends
        barrier = dag.task_dict[f"wave_{w}_done"]  # the wave before done, failed models too
        assert barrier.trigger_rule == "all_done"
        assert barrier.downstream_task_ids == {f"extract_wave_{w + 1}"}
        assert dag.task_dict[f"extract_wave_{w + 1}"].trigger_rule == "all_success"
    assert dag.task_dict["wave_2.report"].downstream_task_ids == ends
    assert dag.task_dict["portfolio_page"].trigger_rule == "all_done"  # failed models too
    assert dag.task_dict["every_model_loaded"].trigger_rule == "one_failed"  # fails the run
    from airflow.sdk.definitions.mappedoperator import MappedOperator
    from airflow.sdk.definitions.taskgroup import MappedTaskGroup

    mapped = {t for t, op in dag.task_dict.items() if isinstance(op, MappedOperator)}
    assert mapped == {"score", "score_wave_1", "score_wave_2"}  # one per partition
    group = dag.task_dict["load"].task_group  # one per model
    assert isinstance(group, MappedTaskGroup) and group is dag.task_dict["report"].task_group
    labels = {t: dag.task_dict[t].map_index_template for t in ("load", "importance", "report")}
    assert set(labels.values()) == {"{{ model_name }}"}


def test_nightly_dag_schedule_and_run_limits(dagbag):
    dag = dagbag.dags[DAG_ID]
    assert dag.catchup is False and dag.max_active_runs == 1
    assert str(dag.timezone.name) == "Europe/London"
    assert dag.doc_md and "credit_batch_nightly" in dag.doc_md
    assert {"credit-risk", "batch-prediction"} <= set(dag.tags)


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_every_task_retries_with_a_delay_and_has_a_timeout_and_owner(dagbag, dag_id):
    for task in dagbag.dags[dag_id].tasks:
        assert task.retries >= 2, task.task_id
        assert task.retry_delay >= dt.timedelta(minutes=1), task.task_id
        assert task.execution_timeout is not None, task.task_id
        assert task.execution_timeout <= dt.timedelta(hours=2), task.task_id
        assert task.owner == "credit-risk", task.task_id


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("snapshot_date", "2026-09-30"),
        ("snapshot_date", None),
        ("model_version", "logreg-20260831-abc123"),
        ("model_version", None),
        ("chunk_rows", 1_000),
        ("chunk_rows", None),
        ("rows_per_partition", 5_000),
        ("rows_per_partition", None),
        ("importance_repeats", 3),
    ],
)
def test_params_accept_good_manual_trigger_values(dagbag, name, value):
    param = dagbag.dags[DAG_ID].params.get_param(name)
    assert param.resolve(value) == value


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("snapshot_date", 20260930),
        ("snapshot_date", "yesterday"),
        ("model_version", "../x"),
        ("model_version", "a'; DROP TABLE p;--"),
        ("chunk_rows", -5),
        ("chunk_rows", 10**9),
        ("chunk_rows", "100"),
        ("rows_per_partition", 10),
        ("importance_repeats", 0),
    ],
)
def test_params_refuse_bad_manual_trigger_values(dagbag, name, value):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError):
        dagbag.dags[DAG_ID].params.get_param(name).resolve(value)


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_parsing_imports_no_heavy_library_and_touches_no_database(tmp_path, dag_id):
    dag_file = DAGS_FOLDER / f"{dag_id}.py"
    probe = f"""
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("dagfile", {str(dag_file)!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
heavy = ["pandas", "numpy", "sklearn", "duckdb", "shap", "pyarrow", "psycopg", "joblib"]
print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
"""
    env = {
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "CREDIT_BATCH_HOME": str(tmp_path / "home"),
        "CREDIT_BATCH_WAREHOUSE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "CREDIT_BATCH_RESULTS_URL": "postgresql://nobody@127.0.0.1:1/none",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize(("setting", "expected"), [(None, None), ("2", 2)])
def test_score_concurrency_caps_the_mapped_score_task_per_run(tmp_path, setting, expected):
    probe = f"""
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder={str(DAGS_FOLDER / f"{DAG_ID}.py")!r})
print(bag.dags[{DAG_ID!r}].task_dict["score"].max_active_tis_per_dagrun)
"""
    env = {"AIRFLOW_HOME": str(tmp_path / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    if setting is not None:
        env["CREDIT_BATCH_SCORE_CONCURRENCY"] = setting
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == str(expected)
