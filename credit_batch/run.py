"""What a run is: the options a caller gives, and the run they resolve to.

A caller (a DAG run's Params, the command line, a test) describes a run as
:class:`RunOptions`, checked and parsed once when it is built. The extract
step resolves it against the warehouse and the registry into a :class:`Run`:
the snapshot date, the model and everything later steps need. A run travels
between Airflow tasks as :meth:`Run.to_xcom` (plain JSON) and is parsed back
once per task with :meth:`Run.from_xcom`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from credit_batch.checks import (
    check_fraction,
    check_model_name,
    check_model_version,
    check_rows,
    check_run_id,
    parse_date,
)
from credit_batch.config import (
    DEFAULT_IMPORTANCE_REPEATS,
    DEFAULT_IMPORTANCE_SAMPLE_ROWS,
    DEFAULT_MAX_QUARANTINE_FRACTION,
    MAX_CHUNK_ROWS,
    MAX_IMPORTANCE_REPEATS,
    MAX_IMPORTANCE_SAMPLE_ROWS,
    MAX_PARTITION_ROWS,
    Policy,
    Settings,
)
from credit_batch.errors import CreditBatchError, ParameterError
from credit_batch.features import FeatureSpec, default_spec

__all__ = ["Plan", "Run", "RunOptions", "RunResult", "call_step", "new_run_id", "night_run_id"]


def new_run_id(airflow_dag_id: str | None = None, airflow_run_id: str | None = None) -> str:
    """A run id: stable for one Airflow DAG run (so task retries share it), else random."""
    if airflow_dag_id and airflow_run_id:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"airflow:{airflow_dag_id}/{airflow_run_id}").hex
    return uuid.uuid4().hex


def night_run_id(airflow_dag_id: str | None, airflow_run_id: str | None, model_name: str) -> str:
    """A model's run id in a night: stable for one Airflow DAG run and model, else random."""
    if not (airflow_dag_id and airflow_run_id):
        return new_run_id()
    base = new_run_id(airflow_dag_id, airflow_run_id)
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{base}/{model_name}").hex


@dataclass(frozen=True)
class RunOptions:
    """What a caller asks of a run; every field is checked when the options are built.

    Attributes
    ----------
    snapshot_date : date or str, optional
        The snapshot to score (must exist). Default: the newest at ``as_of``.
    as_of : date or str, optional
        Score the newest snapshot at or before this date (a DAG run's logical
        date). Default, with no ``snapshot_date`` either: the newest snapshot.
    model_version : str, optional
        A registered version. Default: the champion of ``model_name``.
    model_name : str, optional
        The model whose champion is scored. Default: the only model with a
        champion (refused, naming them, when several have one).
    chunk_rows, rows_per_partition : int, optional
        Rows per scoring chunk and per Parquet partition. Default: the settings'.
    max_quarantine_fraction : float
        Error budget: the share of rows that may break the rules.
    fail_on_drift : bool
        Fail, loading nothing, when the score's PSI is in the act band.
    importance_sample_rows, importance_repeats : int
        Rows sampled and shuffles per feature for permutation importance.
    run_id : str, optional
        Resume this run (reuse its complete scored partitions).
    skip_unchanged : bool
        Score nothing when the slice is already loaded from the same
        extracted features (input fingerprint) and model (a backfill's rerun).
    challengers : bool
        Also score every active challenger in shadow, each into its own
        slice, over the same extracted features (only when the model is the
        champion, i.e. no ``model_version`` is given).
    airflow_dag_id, airflow_run_id : str, optional
        The Airflow DAG run this run belongs to (its run id derives from them).
    """

    snapshot_date: dt.date | None = None
    as_of: dt.date | None = None
    model_version: str | None = None
    model_name: str | None = None
    chunk_rows: int | None = None
    rows_per_partition: int | None = None
    max_quarantine_fraction: float = DEFAULT_MAX_QUARANTINE_FRACTION
    fail_on_drift: bool = False
    importance_sample_rows: int = DEFAULT_IMPORTANCE_SAMPLE_ROWS
    importance_repeats: int = DEFAULT_IMPORTANCE_REPEATS
    run_id: str | None = None
    skip_unchanged: bool = False
    challengers: bool = True
    airflow_dag_id: str | None = None
    airflow_run_id: str | None = None

    def __post_init__(self) -> None:
        checked = {
            "snapshot_date": _maybe(parse_date, self.snapshot_date),
            "as_of": _maybe(lambda v: parse_date(v, name="as-of date"), self.as_of),
            "model_version": _maybe(check_model_version, self.model_version),
            "model_name": _maybe(check_model_name, self.model_name),
            "chunk_rows": _maybe(
                lambda v: check_rows("chunk_rows", v, maximum=MAX_CHUNK_ROWS), self.chunk_rows
            ),
            "rows_per_partition": _maybe(
                lambda v: check_rows(
                    "rows_per_partition", v, maximum=MAX_PARTITION_ROWS, minimum=100
                ),
                self.rows_per_partition,
            ),
            "max_quarantine_fraction": check_fraction(
                "max_quarantine_fraction", self.max_quarantine_fraction
            ),
            "importance_sample_rows": check_rows(
                "importance sample rows",
                self.importance_sample_rows,
                maximum=MAX_IMPORTANCE_SAMPLE_ROWS,
            ),
            "importance_repeats": check_rows(
                "importance repeats", self.importance_repeats, maximum=MAX_IMPORTANCE_REPEATS
            ),
            "run_id": _maybe(check_run_id, self.run_id),
        }
        for flag in ("fail_on_drift", "skip_unchanged", "challengers"):
            if not isinstance(getattr(self, flag), bool):
                raise ParameterError(flag, getattr(self, flag), "must be true or false")
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_params(cls, params: Mapping, **given: object) -> RunOptions:
        """Options from a DAG run's Params (names as in :data:`~credit_batch.config.RUN_PARAMS`)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in params.items() if k in names}, **given)

    def partition_rows(self, settings: Settings) -> int:
        """Rows per partition: the option, else the settings'."""
        return self.rows_per_partition or settings.partition_rows

    def chunk(self, settings: Settings) -> int:
        """Rows per scoring chunk: the option, else the settings'."""
        return self.chunk_rows or settings.chunk_rows


def _maybe(check, value):
    return None if value is None else check(value)


@dataclass(frozen=True)
class Run:
    """One snapshot scored by one model version: what every step after extract needs."""

    run_id: str
    snapshot_date: dt.date
    model_version: str
    artifact_path: str
    sha256: str
    features: tuple[str, ...]
    chunk_rows: int
    max_quarantine_fraction: float
    fail_on_drift: bool
    importance_sample_rows: int
    importance_repeats: int
    rows_in: int
    started_at: dt.datetime
    extract_seconds: float
    duplicate_ids: tuple[int, ...] = ()
    spec: FeatureSpec = field(default_factory=default_spec)
    explainer_background: tuple[float, ...] | None = None
    drift_reference: Mapping | None = field(default=None, hash=False)
    airflow_dag_id: str | None = None
    airflow_run_id: str | None = None
    input_fingerprint: str | None = None
    role: str = "champion"  # the model's role when the run started
    shadow: bool = False  # a challenger scored beside the champion (no importance, no report)
    policy: Policy = field(default_factory=Policy)  # the version's: bands, points, gates
    model_name: str | None = None
    # a segmented model's run reads the rows of its segment (credit_batch.steps.segments);
    # ``covered``: the segments with a champion tonight, given to the run that takes the
    # other rows (the pooled one scores them, a segment's quarantines them); else None
    segment_by: str | None = None
    segment: str | None = None
    covered: tuple[str, ...] | None = None

    @classmethod
    def start(
        cls,
        options: RunOptions,
        model,
        *,
        snapshot_date: dt.date,
        chunk_rows: int,
        rows_in: int,
        started_at: dt.datetime,
        extract_seconds: float,
        duplicate_ids: Iterable[int] = (),
        input_fingerprint: str | None = None,
        policy: Policy | None = None,
        run_id: str | None = None,
        covered: Iterable[str] | None = None,
    ) -> Run:
        """The run of ``options`` with ``model`` (a registry record) and what extract resolved.

        ``policy``: the version's (``ModelRecord.policy_or``); ``run_id``: given by a
        portfolio night (one per model), else the options' or a new one; ``covered``:
        see the attribute.
        """
        background = model.background
        return cls(
            run_id=run_id
            or options.run_id
            or new_run_id(options.airflow_dag_id, options.airflow_run_id),
            snapshot_date=snapshot_date,
            chunk_rows=chunk_rows,
            rows_in=rows_in,
            started_at=started_at,
            extract_seconds=extract_seconds,
            duplicate_ids=tuple(sorted(duplicate_ids)),
            model_version=model.model_version,
            artifact_path=model.artifact_path,
            sha256=model.sha256,
            features=tuple(model.features),
            spec=model.feature_spec,
            max_quarantine_fraction=options.max_quarantine_fraction,
            fail_on_drift=options.fail_on_drift,
            importance_sample_rows=options.importance_sample_rows,
            importance_repeats=options.importance_repeats,
            explainer_background=None if background is None else tuple(background),
            drift_reference=model.reference_bins,
            airflow_dag_id=options.airflow_dag_id,
            airflow_run_id=options.airflow_run_id,
            input_fingerprint=input_fingerprint,
            role=getattr(model, "role", "champion"),
            policy=policy or Policy(),
            model_name=getattr(model, "model_name", None),
            segment_by=getattr(model, "segment_by", None),
            segment=getattr(model, "segment", None),
            covered=None if covered is None else tuple(sorted(covered)),
        )

    def twin_for(self, model, *, policy: Policy) -> Run:
        """This run's twin for a challenger ``model`` (a registry record): same snapshot,
        same extracted features, its own slice, its own ``policy`` and a run id derived
        from this one's."""
        background = model.background
        return dataclasses.replace(
            self,
            run_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{self.run_id}/{model.model_version}").hex,
            model_version=model.model_version,
            artifact_path=model.artifact_path,
            sha256=model.sha256,
            features=tuple(model.features),
            spec=model.feature_spec,
            explainer_background=None if background is None else tuple(background),
            drift_reference=model.reference_bins,
            role="challenger",
            shadow=True,
            policy=policy,
        )

    @property
    def key(self) -> dict:
        """The (snapshot, model) slice this run replaces, as SQL parameters."""
        return {"snapshot_date": self.snapshot_date, "model_version": self.model_version}

    def to_xcom(self) -> dict:
        """Plain JSON: dates as ISO strings, tuples as lists."""
        out = dataclasses.asdict(self)
        out["snapshot_date"] = self.snapshot_date.isoformat()
        out["started_at"] = self.started_at.isoformat()
        out["policy"] = self.policy.to_dict()
        return out

    @classmethod
    def from_xcom(cls, value: Mapping) -> Run:
        """The run :meth:`to_xcom` wrote (also takes a :class:`Run`, unchanged)."""
        if isinstance(value, Run):
            return value
        data = dict(value)
        data["snapshot_date"] = parse_date(data["snapshot_date"])
        data["started_at"] = dt.datetime.fromisoformat(data["started_at"])
        data["features"] = tuple(data["features"])
        data["duplicate_ids"] = tuple(data.get("duplicate_ids") or ())
        if isinstance(data.get("spec"), Mapping):
            data["spec"] = FeatureSpec.from_dict(data["spec"])
        if data.get("explainer_background") is not None:
            data["explainer_background"] = tuple(data["explainer_background"])
        if isinstance(data.get("policy"), Mapping):
            data["policy"] = Policy.from_dict(data["policy"])
        if data.get("covered") is not None:
            data["covered"] = tuple(data["covered"])
        return cls(**data)


@dataclass(frozen=True)
class Plan:
    """What extract returns: the run, and its partitions ``{"index", "path", "rows"}``."""

    run: Run
    partitions: tuple[dict, ...]
    shadows: tuple[Run, ...] = ()

    def to_xcom(self) -> list[dict]:
        """One ``{"run", "partition"}`` per partition (and ``"shadows"``), as plain JSON.

        The shape Airflow's ``expand_kwargs`` maps over: one score task per
        partition, each given the run it belongs to and the challengers' runs.
        """
        run = self.run.to_xcom()
        extra = {"shadows": [s.to_xcom() for s in self.shadows]} if self.shadows else {}
        return [{"run": run, "partition": dict(p), **extra} for p in self.partitions]

    @classmethod
    def from_xcom(cls, value) -> Plan:
        """The plan :meth:`to_xcom` wrote (any sequence of its items; needs one at least)."""
        items = list(value)
        if not items:
            raise ParameterError("plan", items, "must hold at least one partition")
        shadows = tuple(Run.from_xcom(r) for r in items[0].get("shadows") or ())
        return cls(Run.from_xcom(items[0]["run"]), tuple(i["partition"] for i in items), shadows)


def call_step(step, *args, connection=None, fail: type[Exception] = RuntimeError, **kwargs):
    """``step(Settings.from_env(connection=connection), *args, **kwargs)``, as a task calls it.

    A :class:`~credit_batch.errors.CreditBatchError` a retry cannot mend is
    raised again as ``fail`` (a DAG passes Airflow's ``AirflowFailException``,
    which fails the task at once instead of retrying it); retryable ones pass.
    """
    try:
        return step(Settings.from_env(connection=connection), *args, **kwargs)
    except CreditBatchError as exc:
        if exc.retryable:
            raise
        raise fail(str(exc)) from exc


@dataclass(frozen=True)
class RunResult:
    """A whole run done in one process: the run and what each step returned."""

    run: Run
    scored: tuple[dict, ...]
    loaded: dict
    importance: dict
    report: dict
    seconds: float
