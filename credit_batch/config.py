"""Settings read from the environment, with defaults that need nothing.

Read :func:`Settings.from_env` inside a task or a command, never at import
time, so that a DAG file parses without touching the environment's services.

Every variable, its default and meaning is in :data:`ENVIRONMENT` (the
documentation's configuration reference is generated from it).

A connection, where one is named, wins over the URL variable of the same
store: ``CREDIT_BATCH_WAREHOUSE_CONN_ID`` and ``CREDIT_BATCH_RESULTS_CONN_ID``
(type ``postgres``) give the database URLs, ``CREDIT_BATCH_LAKE_CONN_ID``
(type ``aws``: login = access key id, password = secret key, extra
``endpoint_url`` and ``region_name``) the lake's credentials. The caller
looks connections up (the DAG through Airflow); this module only reads what
it is given.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from credit_batch.checks import (
    MODEL_NAME_PATTERN,
    MODEL_VERSION_PATTERN,
    check_identifier_name,
    check_rows,
)
from credit_batch.errors import ParameterError
from credit_batch.storage import Location, S3Options, is_remote, location

__all__ = [
    "ALGORITHMS",
    "Policy",
    "ASSETS",
    "DEFAULT_DUCKDB_MEMORY_LIMIT",
    "DEFAULT_TRAIN_SCHEDULE",
    "TRAIN_PARAMS",
    "DEFAULT_ALGORITHM",
    "DEFAULT_CHUNK_ROWS",
    "DEFAULT_DEMO_ROWS",
    "DEFAULT_DEMO_SNAPSHOTS",
    "DEFAULT_HOME",
    "DEFAULT_IMPORTANCE_REPEATS",
    "DEFAULT_IMPORTANCE_SAMPLE_ROWS",
    "DEFAULT_MAX_QUARANTINE_FRACTION",
    "DEFAULT_PARTITION_ROWS",
    "DEFAULT_RETRY_DELAY_SECONDS",
    "DEFAULT_RISK_BANDS",
    "DEFAULT_SCORE_THREADS",
    "DEFAULT_SEED",
    "DAGS_FOLDER",
    "ENVIRONMENT",
    "DEFAULT_SPEC_PATH",
    "EXAMPLES",
    "EXAMPLE_SPECS",
    "STREAM_MODEL_FILE",
    "LENDER_SPEC_PATH",
    "DEFAULT_TRAIN_MAX_ROWS",
    "MAX_CHUNK_ROWS",
    "MAX_DUPLICATE_IDS",
    "MAX_IMPORTANCE_REPEATS",
    "MAX_IMPORTANCE_SAMPLE_ROWS",
    "MAX_PARTITION_ROWS",
    "MAX_RETRY_DELAY_SECONDS",
    "MAX_SCORE_THREADS",
    "MAX_WORKERS",
    "RUN_OPTIONS",
    "RUN_PARAMS",
    "RunOption",
    "CONNECTION_VARIABLES",
    "DEFAULT_RESULTS_SCHEMA",
    "DEFAULT_GATES",
    "DEFAULT_SWAP_CUTOFF",
    "DEFAULT_SCORECARD",
    "Scorecard",
    "Deployment",
    "Gates",
    "Settings",
    "deployment",
    "retry_delay_seconds",
    "safe_url",
    "task_defaults",
]

DEFAULT_HOME = "./data"
#: PostgreSQL schema of the results tables (``CREDIT_BATCH_RESULTS_SCHEMA``).
DEFAULT_RESULTS_SCHEMA = "public"
#: The variables naming Airflow connections, and what each connection gives.
CONNECTION_VARIABLES = {
    "CREDIT_BATCH_WAREHOUSE_CONN_ID": "warehouse_url",
    "CREDIT_BATCH_RESULTS_CONN_ID": "results_url",
    "CREDIT_BATCH_LAKE_CONN_ID": "s3",
}
DEFAULT_CHUNK_ROWS = 100_000
DEFAULT_PARTITION_ROWS = 1_000_000
DEFAULT_IMPORTANCE_SAMPLE_ROWS = 20_000
#: The most memory DuckDB takes before it spills to disk (its ``memory_limit``),
#: for a warehouse's reads and the load's writes of the results: the extract's
#: sort of a 20M-row snapshot otherwise held 3.4 GiB, the load 1.8 GiB. At 20M
#: rows the extract is as fast at 256MB as at 512MB (8.1 s, 8.3 s) and peaks
#: 240 MiB lower. (A warehouse's writes keep DuckDB's own limit: inserting a
#: 50M-row demo snapshot from memory ran out of 512MB.)
DEFAULT_DUCKDB_MEMORY_LIMIT = "256MB"
_MEMORY = re.compile(r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)
DEFAULT_IMPORTANCE_REPEATS = 5
DEFAULT_SEED = 42
#: The demo warehouse: customers per snapshot and monthly snapshots.
DEFAULT_DEMO_ROWS = 150_000
DEFAULT_DEMO_SNAPSHOTS = 6
#: Training: the algorithms, the default one, labeled rows sampled at most.
ALGORITHMS = ("logreg", "hgb", "lgbm")
DEFAULT_ALGORITHM = "logreg"
DEFAULT_TRAIN_MAX_ROWS = 300_000
MAX_CHUNK_ROWS = 5_000_000
MAX_PARTITION_ROWS = 50_000_000
MAX_IMPORTANCE_SAMPLE_ROWS = 1_000_000
#: Share of a snapshot's rows that may be quarantined before the run fails.
DEFAULT_MAX_QUARANTINE_FRACTION = 0.01
#: Repeated customer ids a run carries to its score tasks at most.
MAX_DUPLICATE_IDS = 10_000
MAX_IMPORTANCE_REPEATS = 50
#: Threads one scoring task may use (Arrow, BLAS/OpenMP). Parallelism comes
#: from the mapped tasks: two one-thread tasks on two cores score 1.8x as fast
#: as one; two tasks of two threads each fight for the cores (1.0x).
DEFAULT_SCORE_THREADS = 1
MAX_SCORE_THREADS = 256
#: Invalid rows a score task collects before they are described (the rule each
#: breaks) and written to the quarantine: the quarantine's memory bound.
DEFAULT_DESCRIBE_ROWS = 5_000
MAX_DESCRIBE_ROWS = 1_000_000
#: Processes the command line may score partitions in (``credit-batch run --workers``).
MAX_WORKERS = 64
#: Seconds between the retries of a DAG task (``CREDIT_BATCH_RETRY_DELAY_SECONDS``).
DEFAULT_RETRY_DELAY_SECONDS = 120
MAX_RETRY_DELAY_SECONDS = 86_400
#: Upper score bounds of the risk bands, best band first.
DEFAULT_RISK_BANDS: tuple[tuple[float, str], ...] = (
    (0.02, "A"),
    (0.05, "B"),
    (0.10, "C"),
    (0.20, "D"),
    (1.00, "E"),
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Gates:
    """What a newly trained model must show, out of time, to become a challenger.

    ``min_auc``: its ROC AUC on the validation snapshot, at least;
    ``max_psi``: the PSI of its scores from training to validation, at most;
    ``champion_margin``: how far its AUC may fall below the champion's on the
    same snapshot (no champion: the gate passes); ``min_air``: the adverse
    impact ratio of every group of the spec's fairness attributes, at least
    (the four-fifths screen; a spec without fairness attributes: the gate passes).
    """

    min_auc: float = 0.70
    max_psi: float = 0.25
    champion_margin: float = 0.01
    min_air: float = 0.80

    def __post_init__(self) -> None:
        for name in ("min_auc", "max_psi", "champion_margin", "min_air"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ParameterError(f"gate {name}", value, "must be a number >= 0")
        if self.min_auc > 1:
            raise ParameterError("gate min_auc", self.min_auc, "must be at most 1")
        if self.min_air > 1:
            raise ParameterError("gate min_air", self.min_air, "must be at most 1")

    @classmethod
    def from_env(cls, env) -> Gates:
        """``CREDIT_BATCH_GATE_MIN_AUC``, ``_MAX_PSI``, ``_CHAMPION_MARGIN``, ``_MIN_AIR``;
        defaults otherwise."""
        given = {
            name: _float_env(env, f"CREDIT_BATCH_GATE_{name.upper()}")
            for name in ("min_auc", "max_psi", "champion_margin", "min_air")
        }
        return cls(**{k: v for k, v in given.items() if v is not None})


DEFAULT_GATES = Gates()
#: A score at or below it is "accepted" when champion and challenger are compared
#: (the upper bound of risk band C).
DEFAULT_SWAP_CUTOFF = 0.10


@dataclass(frozen=True)
class Scorecard:
    """The points scale credit teams read beside the probability.

    ``base_points`` at odds of ``base_odds`` (good:bad) and ``pdo`` points to
    double the odds: points = offset + factor * ln(odds), factor = pdo / ln 2,
    offset = base_points - factor * ln(base_odds). Higher points, lower risk.
    A reason code's log-odds contribution c is worth -factor * c points.
    """

    base_points: float = 600.0
    base_odds: float = 50.0
    pdo: float = 20.0

    def __post_init__(self) -> None:
        for name in ("base_points", "base_odds", "pdo"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ParameterError(f"scorecard {name}", value, "must be a number")
        if self.base_odds <= 0 or self.pdo <= 0:
            raise ParameterError(
                "scorecard", (self.base_odds, self.pdo), "needs base_odds > 0 and pdo > 0"
            )

    @property
    def factor(self) -> float:
        """Points per unit of log-odds."""
        import math

        return self.pdo / math.log(2.0)

    @property
    def offset(self) -> float:
        """Points at odds 1:1."""
        import math

        return self.base_points - self.factor * math.log(self.base_odds)

    @classmethod
    def from_env(cls, env) -> Scorecard:
        """``CREDIT_BATCH_POINTS_BASE``, ``_ODDS``, ``_PDO``; defaults otherwise."""
        names = {"base_points": "BASE", "base_odds": "ODDS", "pdo": "PDO"}
        given = {k: _float_env(env, f"CREDIT_BATCH_POINTS_{v}") for k, v in names.items()}
        return cls(**{k: v for k, v in given.items() if v is not None})


DEFAULT_SCORECARD = Scorecard()


@dataclass(frozen=True)
class Policy:
    """What a model version decides with its scores, registered with the version.

    ``risk_bands``: ``(upper score bound, band)`` pairs, ascending, the last
    bound 1; ``scorecard``: the points scale; ``gates``: what a candidate must
    show to become a challenger; ``swap_cutoff``: a score at or below it is
    "accepted" when a challenger is compared with the champion. Scoring uses
    the version's policy, never the scoring worker's environment.
    """

    risk_bands: tuple[tuple[float, str], ...] = DEFAULT_RISK_BANDS
    scorecard: Scorecard = DEFAULT_SCORECARD
    gates: Gates = DEFAULT_GATES
    swap_cutoff: float = DEFAULT_SWAP_CUTOFF

    def __post_init__(self) -> None:
        bands = tuple((float(bound), str(label)) for bound, label in self.risk_bands)
        bounds = [bound for bound, _ in bands]
        if not bands or bounds != sorted(set(bounds)) or bounds[-1] != 1.0 or bounds[0] <= 0:
            raise ParameterError(
                "policy risk_bands",
                self.risk_bands,
                "must be ascending bounds in (0, 1], the last 1",
            )
        if len({label for _, label in bands}) != len(bands):
            raise ParameterError("policy risk_bands", self.risk_bands, "must name each band once")
        if not 0 < self.swap_cutoff < 1:
            raise ParameterError("policy swap_cutoff", self.swap_cutoff, "must be in (0, 1)")
        object.__setattr__(self, "risk_bands", bands)

    def to_dict(self) -> dict:
        """Plain JSON: what the registry stores (``model_registry.policy``)."""
        return {
            "risk_bands": [list(b) for b in self.risk_bands],
            "scorecard": dataclasses.asdict(self.scorecard),
            "gates": dataclasses.asdict(self.gates),
            "swap_cutoff": self.swap_cutoff,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> Policy:
        """The policy :meth:`to_dict` wrote (checked again)."""
        return cls(
            risk_bands=tuple((b, label) for b, label in data["risk_bands"]),
            scorecard=Scorecard(**data["scorecard"]),
            gates=Gates(**data["gates"]),
            swap_cutoff=data["swap_cutoff"],
        )


#: The package's SQL files and example specs (package data: a wheel carries them).
_PACKAGE_SQL_DIR = Path(str(importlib.resources.files("credit_batch").joinpath("sql")))
#: The folder of the DAG files, to give Airflow as ``dags_folder``.
DAGS_FOLDER = Path(str(importlib.resources.files("credit_batch").joinpath("dags")))
#: The feature spec training uses unless told otherwise ("Give Me Some Credit").
DEFAULT_SPEC_PATH = _PACKAGE_SQL_DIR / "specs" / "gmsc" / "spec.toml"
#: The second example's spec: a loan book with categorical features.
LENDER_SPEC_PATH = _PACKAGE_SQL_DIR / "specs" / "lender" / "spec.toml"
#: The streaming example's model file: GMSC features and streaming features of events.
STREAM_MODEL_FILE = _PACKAGE_SQL_DIR / "specs" / "streaming" / "model.toml"
#: The generated examples ``credit-batch demo --example`` builds, and their specs.
EXAMPLE_SPECS = {
    "gmsc": DEFAULT_SPEC_PATH,
    "lender": LENDER_SPEC_PATH,
    "streaming": STREAM_MODEL_FILE.with_name("spec.toml"),
}
#: ... and the portfolio (three products in four countries: a model file per product,
#: ``sql/specs/portfolio/``).
EXAMPLES = (*EXAMPLE_SPECS, "portfolio")

#: Every environment variable the package reads: (name, default, meaning).
#: The configuration reference of the documentation is generated from this.
ENVIRONMENT: tuple[tuple[str, str, str], ...] = (
    (
        "CREDIT_BATCH_HOME",
        "./data",
        "root of the lake (lake/), the model store (models/) and the default DuckDB files",
    ),
    (
        "CREDIT_BATCH_WAREHOUSE_URL",
        "duckdb:///<home>/warehouse.duckdb",
        "where features and outcomes are read (a SQLAlchemy URL: duckdb or postgresql)",
    ),
    (
        "CREDIT_BATCH_RESULTS_URL",
        "duckdb:///<home>/results.duckdb",
        "where scores, runs, importance and the registry live",
    ),
    ("CREDIT_BATCH_SQL_DIR", "the package's sql/ folder", "the SQL files"),
    (
        "CREDIT_BATCH_CHUNK_ROWS",
        "100000",
        "rows per scoring chunk (the memory bound of a score task); the run option chunk_rows",
    ),
    (
        "CREDIT_BATCH_ROWS_PER_PARTITION",
        "1000000",
        "rows per Parquet partition (one score task each); the run option rows_per_partition"
        " (CREDIT_BATCH_PARTITION_ROWS, its old name, is still read)",
    ),
    (
        "CREDIT_BATCH_SCORE_THREADS",
        "1",
        "threads one score task may use (Arrow, BLAS); parallelism comes from the mapped tasks",
    ),
    (
        "CREDIT_BATCH_QUARANTINE_DESCRIBE_ROWS",
        "5000",
        "invalid rows a score task collects before it describes them into the quarantine "
        "(the quarantine's memory bound)",
    ),
    (
        "CREDIT_BATCH_SCORE_CONCURRENCY",
        "unset: no cap",
        "mapped score tasks of one run at once (read when the DAG file is parsed)",
    ),
    (
        "CREDIT_BATCH_RETRY_DELAY_SECONDS",
        "120",
        "seconds between a DAG task's retries (read when the DAG file is parsed)",
    ),
    (
        "CREDIT_BATCH_SPEC",
        "sql/specs/gmsc/spec.toml",
        "the feature spec train reads (scoring uses the model's own)",
    ),
    (
        "CREDIT_BATCH_LAKE_URL",
        "<home>/lake",
        "the Parquet lake: a folder or s3://bucket/prefix"
        " (S3 from AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)",
    ),
    (
        "CREDIT_BATCH_MODELS_URL",
        "<home>/models; <lake>/models for an S3 lake",
        "the model artifacts",
    ),
    ("CREDIT_BATCH_RESULTS_SCHEMA", "public", "PostgreSQL schema of the results tables and views"),
    (
        "CREDIT_BATCH_DUCKDB_MEMORY_LIMIT",
        "256MB",
        "DuckDB's reads and the load spill to disk beyond it",
    ),
    (
        "CREDIT_BATCH_REDIS_URL",
        "redis://127.0.0.1:6379/0",
        "the Redis of streaming prediction (`credit-batch stream-score --redis-url`)",
    ),
    (
        "CREDIT_BATCH_ONLINE_URL",
        "unset",
        "the online store: unset for the results database's table, or redis://host:port/db",
    ),
    (
        "CREDIT_BATCH_STREAM",
        "unset",
        "the events' stream key of `credit-batch stream-score` and `stream-warm` (`--stream`)",
    ),
    (
        "CREDIT_BATCH_WAREHOUSE_CONN_ID",
        "unset",
        "an Airflow connection (type postgres) that gives the warehouse URL inside a task",
    ),
    (
        "CREDIT_BATCH_RESULTS_CONN_ID",
        "unset",
        "an Airflow connection (type postgres) that gives the results URL inside a task",
    ),
    (
        "CREDIT_BATCH_LAKE_CONN_ID",
        "unset",
        "an Airflow connection (type aws) that gives the lake's credentials inside a task",
    ),
    (
        "CREDIT_BATCH_GATE_MIN_AUC",
        "0.70",
        "a candidate's out-of-time ROC AUC, at least, to become a challenger",
    ),
    ("CREDIT_BATCH_GATE_MAX_PSI", "0.25", "the score's PSI from training to validation, at most"),
    (
        "CREDIT_BATCH_GATE_CHAMPION_MARGIN",
        "0.01",
        "ROC AUC below the champion's on the same snapshot, at most",
    ),
    (
        "CREDIT_BATCH_GATE_MIN_AIR",
        "0.80",
        "each group's adverse impact ratio out of time, at least (specs with [[fairness]])",
    ),
    ("CREDIT_BATCH_POINTS_BASE", "600", "points at the base odds"),
    ("CREDIT_BATCH_POINTS_ODDS", "50", "the base odds (good:bad)"),
    ("CREDIT_BATCH_POINTS_PDO", "20", "points to double the odds"),
    (
        "CREDIT_BATCH_SWAP_CUTOFF",
        "0.10",
        "a score at or below it is accepted (above: declined, with adverse-action reasons)",
    ),
    (
        "CREDIT_BATCH_LOAD_POOL",
        "default_pool",
        "the Airflow pool of the load task (read when the DAG file is parsed)",
    ),
    (
        "CREDIT_BATCH_SCORE_QUEUE",
        "default",
        "the Celery queue of the score tasks (read when the DAG file is parsed)",
    ),
    (
        "CREDIT_BATCH_SCHEDULE",
        "0 2 * * *",
        "when the nightly DAG runs; none: only when triggered (read when parsed)",
    ),
    (
        "CREDIT_BATCH_FAULT",
        "unset",
        "tests only: a fault point and its kind, point[:kill|unavailable|error|pause]",
    ),
    ("CREDIT_BATCH_FAULT_ONCE", "unset", "tests only: the fault fires once, recorded in this file"),
    ("CREDIT_BATCH_FAULT_DIR", "unset", "tests only: where a paused fault waits for its release"),
)


@dataclass(frozen=True)
class RunOption:
    """One option of a run, with one name on every face.

    The DAG Param is :attr:`name`, the ``credit-batch run`` flag is
    :attr:`flag` (``--`` and the name with hyphens), the environment variable
    that sets a deployment's default (where there is one) is :attr:`variable`,
    and the :class:`~credit_batch.run.RunOptions` field is :attr:`name`.

    Attributes
    ----------
    name : str
        The option's one name, in snake case.
    schema : dict
        JSON Schema of its value (``default`` included), as Airflow's ``Param`` takes it.
    help : str
        One line of help, shown by the Param form, ``--help`` and the reference.
    variable_default : bool
        Whether ``CREDIT_BATCH_<NAME>`` sets the default of a deployment.
    old_flags : tuple of str
        Earlier flag names, still accepted with a one-line deprecation notice.
    old_variable : str, optional
        An earlier variable name, still read with a deprecation notice.
    """

    name: str
    schema: dict
    help: str
    variable_default: bool = False
    old_flags: tuple[str, ...] = ()
    old_variable: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def variable(self) -> str | None:
        return f"CREDIT_BATCH_{self.name.upper()}" if self.variable_default else None

    @property
    def param(self) -> dict:
        """The JSON Schema of the DAG's ``Param``."""
        return {**self.schema, "description": self.help}


#: Every option of a scoring run (the nightly DAG's Params, ``credit-batch run``'s
#: flags, :class:`~credit_batch.run.RunOptions`); the limits are the package's own.
RUN_OPTIONS: tuple[RunOption, ...] = (
    RunOption(
        "snapshot_date",
        {"default": None, "type": ["null", "string"], "format": "date"},
        "Snapshot to score (YYYY-MM-DD, must exist); empty: the newest at the run's date",
        old_flags=("--date",),
    ),
    RunOption(
        "model_version",
        {"default": None, "type": ["null", "string"], "pattern": MODEL_VERSION_PATTERN},
        "Registered model version; empty: the champion",
        old_flags=("--model",),
    ),
    RunOption(
        "model_name",
        {"default": None, "type": ["null", "string"], "pattern": MODEL_NAME_PATTERN},
        "The model whose champion is scored; empty: the only model with a champion",
    ),
    RunOption(
        "chunk_rows",
        {"default": None, "type": ["null", "integer"], "minimum": 1, "maximum": MAX_CHUNK_ROWS},
        "Rows per scoring chunk; empty: CREDIT_BATCH_CHUNK_ROWS (100,000 unset)",
        variable_default=True,
    ),
    RunOption(
        "rows_per_partition",
        {
            "default": None,
            "type": ["null", "integer"],
            "minimum": 100,
            "maximum": MAX_PARTITION_ROWS,
        },
        "Rows per Parquet partition (one score task each); "
        "empty: CREDIT_BATCH_ROWS_PER_PARTITION (1,000,000 unset)",
        variable_default=True,
        old_flags=("--partition-rows",),
        old_variable="CREDIT_BATCH_PARTITION_ROWS",
    ),
    RunOption(
        "max_quarantine_fraction",
        {"default": DEFAULT_MAX_QUARANTINE_FRACTION, "type": "number", "minimum": 0, "maximum": 1},
        "Error budget: share of rows that may break the rules before the run fails",
        old_flags=("--max-quarantine",),
    ),
    RunOption(
        "fail_on_drift",
        {"default": False, "type": "boolean"},
        "Fail the run, loading nothing, when the score PSI is above 0.25",
    ),
    RunOption(
        "challengers",
        {"default": True, "type": "boolean"},
        "Also score every active challenger in shadow (when scoring the champion)",
    ),
    RunOption(
        "skip_unchanged",
        {"default": False, "type": "boolean"},
        "Score nothing if the slice is already loaded from the same extracted "
        "features and model (backfills)",
    ),
    RunOption(
        "importance_sample_rows",
        {
            "default": DEFAULT_IMPORTANCE_SAMPLE_ROWS,
            "type": "integer",
            "minimum": 100,
            "maximum": MAX_IMPORTANCE_SAMPLE_ROWS,
        },
        "Labeled rows sampled for permutation importance",
        old_flags=("--sample-rows",),
    ),
    RunOption(
        "importance_repeats",
        {
            "default": DEFAULT_IMPORTANCE_REPEATS,
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_IMPORTANCE_REPEATS,
        },
        "Shuffles per feature for permutation importance",
        old_flags=("--repeats",),
    ),
)

#: JSON Schema of each parameter a manual run takes (the DAG's ``Param`` s).
RUN_PARAMS: dict[str, dict] = {option.name: option.param for option in RUN_OPTIONS}


@dataclass(frozen=True)
class Settings:
    """Where the pipeline reads and writes, and how it chunks work.

    Attributes
    ----------
    home : Path
        Root of the Parquet lake (``lake/``), the model store (``models/``)
        and, by default, the DuckDB files.
    warehouse_url, results_url : str
        SQLAlchemy URLs: ``duckdb:///path`` or ``postgresql://user@host/db``.
    sql_dir : Path
        Folder of the ``.sql`` files.
    chunk_rows, partition_rows : int
        Rows per scoring chunk and per extracted Parquet partition.
    score_threads : int
        Threads one scoring task may use.
    describe_rows : int
        Invalid rows a scoring task collects before describing them into the
        quarantine (its memory bound).
    spec_path : Path
        The feature spec file training reads (scoring uses the model's own).
    lake_url, models_url : str
        Where the Parquet lake and the model artifacts live: a local folder or
        ``s3://bucket/prefix``.
    s3 : S3Options
        How to reach the S3 API of an ``s3://`` lake (credentials hidden from ``repr``).
    results_schema : str
        PostgreSQL schema of the results tables (DuckDB: ignored).
    gates : Gates
        What a trained model must show to become a challenger.
    scorecard : Scorecard
        The points scale of the ``points`` column.
    swap_cutoff : float
        Scores at or below it count as accepted when a challenger is compared
        with the champion (``challenger_comparison``).
    online_url : str
        The online store: empty for the results database's ``online_features``
        table, or ``redis://host:port/db`` for Redis hashes.
    """

    home: Path = Path(DEFAULT_HOME)
    warehouse_url: str = field(default="", repr=False)  # may hold a password: see safe_url
    results_url: str = field(default="", repr=False)
    sql_dir: Path = _PACKAGE_SQL_DIR
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    partition_rows: int = DEFAULT_PARTITION_ROWS
    score_threads: int = DEFAULT_SCORE_THREADS
    describe_rows: int = DEFAULT_DESCRIBE_ROWS
    risk_bands: tuple[tuple[float, str], ...] = field(default=DEFAULT_RISK_BANDS)
    spec_path: Path = DEFAULT_SPEC_PATH
    lake_url: str = ""
    models_url: str = ""
    s3: S3Options = field(default_factory=S3Options)
    results_schema: str = DEFAULT_RESULTS_SCHEMA
    gates: Gates = DEFAULT_GATES
    scorecard: Scorecard = DEFAULT_SCORECARD
    swap_cutoff: float = DEFAULT_SWAP_CUTOFF
    duckdb_memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT
    online_url: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        home = Path(self.home).expanduser().resolve()
        object.__setattr__(self, "home", home)
        lake_url = self.lake_url or str(home / "lake")
        object.__setattr__(self, "lake_url", lake_url)
        if not self.models_url:
            models = f"{lake_url.rstrip('/')}/models" if is_remote(lake_url) else home / "models"
            object.__setattr__(self, "models_url", str(models))
        check_identifier_name("CREDIT_BATCH_RESULTS_SCHEMA", self.results_schema)
        if not self.warehouse_url:
            object.__setattr__(self, "warehouse_url", f"duckdb:///{home / 'warehouse.duckdb'}")
        if not self.results_url:
            object.__setattr__(self, "results_url", f"duckdb:///{home / 'results.duckdb'}")
        check_rows("chunk_rows", self.chunk_rows, maximum=MAX_CHUNK_ROWS)
        check_rows("partition_rows", self.partition_rows, maximum=MAX_PARTITION_ROWS)
        check_rows("score_threads", self.score_threads, maximum=MAX_SCORE_THREADS)
        check_rows("describe_rows", self.describe_rows, maximum=MAX_DESCRIBE_ROWS)
        if not 0 < self.swap_cutoff < 1:
            raise ParameterError("CREDIT_BATCH_SWAP_CUTOFF", self.swap_cutoff, "must be in (0, 1)")
        if self.online_url and not self.online_url.startswith(("redis://", "rediss://")):
            rule = "must be empty (the results database) or a redis:// URL"
            raise ParameterError("CREDIT_BATCH_ONLINE_URL", safe_url(self.online_url), rule)
        if not _MEMORY.match(str(self.duckdb_memory_limit)):
            raise ParameterError(
                "CREDIT_BATCH_DUCKDB_MEMORY_LIMIT",
                self.duckdb_memory_limit,
                "must be an amount of memory such as 512MB or 2GiB",
            )

    @classmethod
    def from_env(
        cls, environ: dict[str, str] | None = None, *, connection: Callable | None = None
    ) -> Settings:
        """Build settings from ``CREDIT_BATCH_*`` variables (``os.environ`` by default).

        ``connection``: looks up a connection id named by a
        ``CREDIT_BATCH_*_CONN_ID`` variable (the DAG passes Airflow's); it
        returns an object with ``conn_type``, ``host``, ``port``, ``login``,
        ``password``, ``schema`` and ``extra_dejson``, as Airflow's does.
        """
        env = os.environ if environ is None else environ
        given = _from_connections(env, connection)
        return cls(
            lake_url=env.get("CREDIT_BATCH_LAKE_URL", ""),
            models_url=env.get("CREDIT_BATCH_MODELS_URL", ""),
            s3=given.get("s3") or S3Options.from_env(env),
            results_schema=env.get("CREDIT_BATCH_RESULTS_SCHEMA") or DEFAULT_RESULTS_SCHEMA,
            home=Path(env.get("CREDIT_BATCH_HOME", DEFAULT_HOME)),
            warehouse_url=given.get("warehouse_url") or env.get("CREDIT_BATCH_WAREHOUSE_URL", ""),
            results_url=given.get("results_url") or env.get("CREDIT_BATCH_RESULTS_URL", ""),
            sql_dir=Path(env.get("CREDIT_BATCH_SQL_DIR", str(_PACKAGE_SQL_DIR))),
            chunk_rows=_int_env(env, "CREDIT_BATCH_CHUNK_ROWS", DEFAULT_CHUNK_ROWS),
            partition_rows=_int_env(
                env, _variable(env, "rows_per_partition"), DEFAULT_PARTITION_ROWS
            ),
            score_threads=_int_env(env, "CREDIT_BATCH_SCORE_THREADS", DEFAULT_SCORE_THREADS),
            describe_rows=_int_env(
                env, "CREDIT_BATCH_QUARANTINE_DESCRIBE_ROWS", DEFAULT_DESCRIBE_ROWS
            ),
            spec_path=Path(env.get("CREDIT_BATCH_SPEC", str(DEFAULT_SPEC_PATH))),
            gates=Gates.from_env(env),
            scorecard=Scorecard.from_env(env),
            swap_cutoff=_float_env(env, "CREDIT_BATCH_SWAP_CUTOFF") or DEFAULT_SWAP_CUTOFF,
            duckdb_memory_limit=env.get("CREDIT_BATCH_DUCKDB_MEMORY_LIMIT")
            or DEFAULT_DUCKDB_MEMORY_LIMIT,
            online_url=env.get("CREDIT_BATCH_ONLINE_URL", ""),
        )

    @property
    def policy(self) -> Policy:
        """This deployment's policy: what a version trained here is registered with
        (and what a version registered before policies were recorded scores with)."""
        return Policy(self.risk_bands, self.scorecard, self.gates, self.swap_cutoff)

    @property
    def lake(self) -> Location:
        """Root of the Parquet lake."""
        return location(self.lake_url, self.s3)

    @property
    def models(self) -> Location:
        """Root of the versioned model artifacts."""
        return location(self.models_url, self.s3)


def safe_url(url: str) -> str:
    """``url`` as it may be shown: in logs, errors, XCom and reports (no password)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _from_connections(env, connection: Callable | None) -> dict:
    """What the connections named in ``env`` give: database URLs, S3 options."""
    given: dict = {}
    for variable, target in CONNECTION_VARIABLES.items():
        conn_id = env.get(variable)
        if not conn_id:
            continue
        if connection is None:
            raise ParameterError(
                variable, conn_id, "names a connection, which only a task run by Airflow can read"
            )
        conn = connection(conn_id)
        given[target] = _s3_options(conn) if target == "s3" else _database_url(variable, conn)
    return given


def _database_url(variable: str, conn) -> str:
    from sqlalchemy.engine import URL

    if conn.conn_type not in ("postgres", "postgresql"):
        raise ParameterError(variable, conn.conn_type, "must name a connection of type postgres")
    return URL.create(
        "postgresql",
        username=conn.login or None,
        password=conn.password or None,
        host=conn.host or "127.0.0.1",
        port=conn.port or 5432,
        database=conn.schema or None,
    ).render_as_string(hide_password=False)


def _s3_options(conn) -> S3Options:
    extra = conn.extra_dejson or {}
    return S3Options(
        endpoint_url=extra.get("endpoint_url", ""),
        region=extra.get("region_name", ""),
        access_key_id=conn.login or "",
        secret_access_key=conn.password or "",
        session_token=extra.get("aws_session_token", ""),
    )


#: Where DAG tasks run unless a deployment says otherwise: Airflow's default
#: pool and queue (an embedded Airflow has no other).
DEFAULT_LOAD_POOL = "default_pool"
DEFAULT_SCORE_QUEUE = "default"
#: The most mapped score tasks a run may cap itself to (0 or unset: no cap).
MAX_SCORE_CONCURRENCY = 1024
#: When the nightly DAG runs (cron, in the DAG's time zone, Europe/London).
DEFAULT_SCHEDULE = "0 2 * * *"
#: When the training DAG runs: monthly, after month-end outcomes land.
DEFAULT_TRAIN_SCHEDULE = "0 4 3 * *"
#: The Airflow Assets the DAGs read and write (their names), for lineage and
#: for scheduling: the monitoring DAG runs when ``outcomes`` or ``predictions``
#: change. A lender's outcomes load announces new outcomes as an outlet on
#: ``credit_batch_outcomes`` (or ``POST /api/v2/assets/events``).
ASSETS = {
    "warehouse": "credit_batch_warehouse_snapshot",
    "features": "credit_batch_lake_features",
    "predictions": "credit_batch_predictions",
    "outcomes": "credit_batch_outcomes",
    "models": "credit_batch_model_registry",
}
#: JSON Schema of the training DAG's Params.
TRAIN_PARAMS: dict[str, dict] = {
    "cutoff": {
        "default": None,
        "type": ["null", "string"],
        "format": "date",
        "description": "Validate on the newest snapshot with outcomes at or before it; "
        "train on the older ones (empty: the run's date)",
    },
    "since": {
        "default": None,
        "type": ["null", "string"],
        "format": "date",
        "description": "First snapshot to train on (empty: all)",
    },
    "model_file": {
        "default": None,
        "type": ["null", "string"],
        "maxLength": 1000,
        "description": "A model file (TOML) on the workers: its spec, algorithm, policy and "
        "name (empty: the deployment's spec, CREDIT_BATCH_SPEC)",
    },
    "model_name": {
        "default": None,
        "type": ["null", "string"],
        "pattern": MODEL_NAME_PATTERN,
        "description": "The model the candidate belongs to (empty: the model file's name, "
        "else the spec's)",
    },
    "algorithm": {
        "default": None,
        "type": ["null", "string"],
        "enum": [None, *ALGORITHMS],
        "description": f"empty: the model file's, else {DEFAULT_ALGORITHM}",
    },
    "segment": {
        "default": None,
        "type": ["null", "string"],
        "maxLength": 200,
        "description": "Of a segmented model file, the segment to train, validate and gate "
        "on (empty: every row, the pooled version)",
    },
    "outside_model": {
        "default": None,
        "type": ["null", "string"],
        "maxLength": 1000,
        "description": "Register this model trained elsewhere (a .skops archive or a LightGBM "
        "text model on the workers) instead of training one; needs trained_until",
    },
    "trained_until": {
        "default": None,
        "type": ["null", "string"],
        "format": "date",
        "description": "The newest snapshot the outside model was trained on",
    },
    "approve": {
        "default": False,
        "type": "boolean",
        "description": "Promote the new model to champion if its gates pass (audited)",
    },
    "reason": {
        "default": None,
        "type": ["null", "string"],
        "maxLength": 500,
        "description": "Why it is approved (kept in model_events)",
    },
}


@dataclass(frozen=True)
class Deployment:
    """Where the DAG's tasks run: read when the DAG file is parsed, like the retry delay.

    ``load_pool``: the pool of the load task (a deployment makes a one-slot
    pool so that no two loads run at once); ``score_queue``: the Celery queue
    of the scoring tasks; ``schedule``: the nightly cron (None: triggered
    runs only, ``CREDIT_BATCH_SCHEDULE=none``); ``score_concurrency``: at most
    this many mapped score tasks of a run at once (Airflow's
    ``max_active_tis_per_dagrun``; None: as many as the executor runs). On one
    machine, its cores: more only share them, each paying its start-up and
    holding its memory (50 partitions at Airflow's default parallelism of 32
    would hold 32 tasks' memory at once).
    """

    load_pool: str = DEFAULT_LOAD_POOL
    score_queue: str = DEFAULT_SCORE_QUEUE
    schedule: str | None = DEFAULT_SCHEDULE
    score_concurrency: int | None = None


def deployment(environ: dict[str, str] | None = None) -> Deployment:
    """``CREDIT_BATCH_LOAD_POOL``, ``CREDIT_BATCH_SCORE_QUEUE`` (default: Airflow's own),
    ``CREDIT_BATCH_SCHEDULE`` and ``CREDIT_BATCH_SCORE_CONCURRENCY`` (default: no cap)."""
    env = os.environ if environ is None else environ
    schedule = env.get("CREDIT_BATCH_SCHEDULE") or DEFAULT_SCHEDULE
    concurrency = _int_env(env, "CREDIT_BATCH_SCORE_CONCURRENCY", 0)
    return Deployment(
        score_concurrency=check_rows(
            "CREDIT_BATCH_SCORE_CONCURRENCY", concurrency, minimum=0, maximum=MAX_SCORE_CONCURRENCY
        )
        or None,
        schedule=None if schedule.lower() == "none" else schedule,
        load_pool=check_identifier_name(
            "CREDIT_BATCH_LOAD_POOL", env.get("CREDIT_BATCH_LOAD_POOL") or DEFAULT_LOAD_POOL
        ),
        score_queue=check_identifier_name(
            "CREDIT_BATCH_SCORE_QUEUE", env.get("CREDIT_BATCH_SCORE_QUEUE") or DEFAULT_SCORE_QUEUE
        ),
    )


def task_defaults(*, timeout_hours: float = 1.0) -> dict:
    """The ``default_args`` every credit-batch DAG's tasks share: owner, 2 retries
    after the retry delay (:func:`retry_delay_seconds`), an execution timeout."""
    import datetime as dt

    return {
        "owner": "credit-risk",
        "retries": 2,
        "retry_delay": dt.timedelta(seconds=retry_delay_seconds()),
        "execution_timeout": dt.timedelta(hours=timeout_hours),
    }


def retry_delay_seconds(environ: dict[str, str] | None = None) -> int:
    """Seconds between a DAG task's retries, from ``CREDIT_BATCH_RETRY_DELAY_SECONDS``.

    Read when the DAG file is parsed (a retry delay is part of the DAG, not of
    a task run). Airflow's own ``[core] default_task_retry_delay`` is not used:
    Airflow 3.3's scheduler ignores it for tasks that leave ``retry_delay``
    unset (it falls back to 300 s).
    """
    env = os.environ if environ is None else environ
    value = _int_env(env, "CREDIT_BATCH_RETRY_DELAY_SECONDS", DEFAULT_RETRY_DELAY_SECONDS)
    return check_rows("CREDIT_BATCH_RETRY_DELAY_SECONDS", value, maximum=MAX_RETRY_DELAY_SECONDS)


def _variable(env, option: str) -> str:
    """The variable of a run option, or its old name (with a notice) where only that is set."""
    (found,) = [o for o in RUN_OPTIONS if o.name == option]
    if found.variable not in env and found.old_variable and found.old_variable in env:
        logger.warning("%s is deprecated; use %s", found.old_variable, found.variable)
        return found.old_variable
    return found.variable


def _int_env(env: object, name: str, default: int) -> int:
    raw = env.get(name)  # type: ignore[attr-defined]
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ParameterError(name, raw, "must be an integer") from None


def _float_env(env: object, name: str) -> float | None:
    raw = env.get(name)  # type: ignore[attr-defined]
    if raw is None or raw == "":
        return None
    try:
        return float(raw)
    except ValueError:
        raise ParameterError(name, raw, "must be a number") from None
