"""
### credit_batch_nightly

Scores every customer of a warehouse snapshot with every model of the portfolio
(each model's champion, its challengers in shadow) and stores the scores and
their permutation importance in SQL for later lookup.

* **plan**: the night's models (`model_name` or `model_version`: one only), versions pinned
* **waves**: a model reading another model's scores (a spec feature's `upstream_model`) is
  in a later wave: `extract_wave_1` starts once wave 0 is done (`wave_0_done`: loaded or
  failed; task order, not Asset events); each model's load emits the Asset
  `credit_batch://scores/NAME` (extra: `reads`)
* **extract**: each feature set once (models with equal specs share it) ->
  `lake/features/feature_set=F/snapshot_date=D/part-*.parquet`
* **materialize**: beside the scoring, each feature set's rows into the online store
  (`online_features`: each customer's newest features, for scoring a customer now)
* **score**: one mapped task per partition: validate, score, reason codes, drift counts,
  with every model reading that feature set, each into its own slice
* **load**, **importance**, **report**: one mapped group per model (labelled by its name):
  replaces the (date, model) slices of `predictions`, permutation importance and partial
  dependence, one HTML report. A model's failure fails its own group; the others load.
* **portfolio_page**: the portfolio page (every model: champion, last night, drift, realized AUC)
  -> `lake/reports/portfolio/as_of=D/portfolio.html`; **every_model_loaded** runs (and
  fails the run) only when a model failed, skipped otherwise

The nightly run scores the newest snapshot at or before its logical date.
Trigger by hand with `snapshot_date` (and `model_name` or `model_version`) to
score or backfill a given date; reruns replace their slice, never duplicate it.
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import Asset, AssetAlias, Param, dag, get_current_context, task, task_group

from credit_batch.config import ASSETS, RUN_PARAMS, deployment, task_defaults
from credit_batch.dags._tasks import TZ, fail_fast, run_options
from credit_batch.graph import MAX_WAVES

WHERE = deployment()  # the load's pool, the scoring queue and concurrency (CREDIT_BATCH_...)
LABEL = {"map_index_template": "{{ model_name }}"}  # a model's mapped tasks show its name
SCORES = AssetAlias("credit_batch_model_scores")  # one Asset per model: credit_batch://scores/NAME


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
    @task
    def plan() -> list[dict]:
        from credit_batch import portfolio

        return fail_fast(portfolio.plan_night, run_options())  # one entry per model

    @task
    def models_of_wave(models: list[dict], wave: int) -> list[dict]:
        from credit_batch import portfolio

        return portfolio.models_of_wave(models, wave)

    @task(inlets=[Asset(ASSETS["warehouse"])], outlets=[Asset(ASSETS["features"])])
    def extract(models: list[dict]) -> list[dict]:
        from credit_batch import portfolio

        return fail_fast(portfolio.extract_night, run_options(), models)  # one per partition

    @task(pool=WHERE.load_pool)  # beside the scoring; a writer of the results, as a load
    def materialize(items: list[dict]) -> list[dict]:
        from credit_batch import portfolio

        return fail_fast(portfolio.materialize_night, items[:])  # one per feature set

    @task(queue=WHERE.score_queue, max_active_tis_per_dagrun=WHERE.score_concurrency)
    def score(feature_set: str, partition: dict | None, plans: list[dict]) -> dict:
        from credit_batch import portfolio

        item = {"feature_set": feature_set, "partition": partition, "plans": plans}
        return fail_fast(portfolio.score_night, item)

    @task_group(prefix_group_id=False)
    def model_night(model: dict, items: list[dict], scored: list[dict]):
        @task(pool=WHERE.load_pool, outlets=[Asset(ASSETS["predictions"]), SCORES], **LABEL)
        def load(model: dict, items: list[dict], scored: list[dict]) -> dict:
            from credit_batch import portfolio

            ctx = get_current_context()
            ctx["model_name"] = model["model_name"]
            # One slice request: iterating a lazy sequence asks past its end ("XCom not found").
            loaded = fail_fast(portfolio.load_model, model, items[:], scored[:])
            asset = Asset(f"credit_batch://scores/{model['model_name']}")  # reads: the edges
            ctx["outlet_events"][SCORES].add(asset, extra={"reads": model.get("reads", [])})
            return loaded

        @task(execution_timeout=dt.timedelta(minutes=30), **LABEL)
        def importance(loaded: dict) -> dict:
            from credit_batch import portfolio

            get_current_context()["model_name"] = loaded["model_name"]
            return fail_fast(portfolio.importance_of, loaded)

        @task(**LABEL)
        def report(loaded: dict) -> dict:
            from credit_batch import portfolio

            get_current_context()["model_name"] = loaded["model_name"]
            return fail_fast(portfolio.report_of, loaded)

        report(importance(load(model, items, scored)))

    @task(trigger_rule="all_done")  # every model's row, loaded or failed
    def portfolio_page() -> dict:
        from credit_batch import portfolio

        return fail_fast(portfolio.page, run_options())

    @task(trigger_rule="one_failed")  # the run ends failed when a model did (the page ran)
    def every_model_loaded() -> None:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException("a model of the night failed: its load task says why")

    models, nights, stored = plan(), [], []
    for wave in range(MAX_WAVES):  # models reading models' scores: after those models load
        mine = models_of_wave.override(task_id=f"models_of_wave_{wave}")(models, wave)
        items = extract.override(**_named("extract", wave))(mine)
        stored.append(materialize.override(**_named("materialize", wave))(items))
        if nights:  # a barrier: the wave before is done, loaded or failed
            done = EmptyOperator(task_id=f"wave_{wave - 1}_done", trigger_rule="all_done")
            nights[-1] >> done >> items
        scored = score.override(**_named("score", wave)).expand_kwargs(items)
        group = model_night.override(**_named("wave", wave, group=True))
        nights.append(group.partial(items=items, scored=scored).expand(model=mine))
    nights >> portfolio_page()
    [*nights, *stored] >> every_model_loaded()  # a failed write of the online store fails it


def _named(name: str, wave: int, *, group: bool = False) -> dict:
    """Wave 0 keeps the plain names (extract, score, load...); wave n: extract_wave_n..."""
    if group:
        return {"group_id": f"wave_{wave}", "prefix_group_id": True} if wave else {}
    return {"task_id": f"{name}_wave_{wave}"} if wave else {}


credit_batch_nightly()
