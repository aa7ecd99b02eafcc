"""Settings read from the environment, with defaults that need nothing.

Read :func:`Settings.from_env` inside a task or a command, never at import
time, so that a DAG file parses without touching the environment's services.

=============================  =========================================
variable                       default
=============================  =========================================
``CREDIT_BATCH_HOME``          ``./data`` (lake, model store, DuckDB files)
``CREDIT_BATCH_WAREHOUSE_URL`` ``duckdb:///<home>/warehouse.duckdb``
``CREDIT_BATCH_RESULTS_URL``   ``duckdb:///<home>/results.duckdb``
``CREDIT_BATCH_SQL_DIR``       the ``sql/`` folder beside the package
``CREDIT_BATCH_CHUNK_ROWS``    ``100000``
``CREDIT_BATCH_PARTITION_ROWS`` ``1000000``
``CREDIT_BATCH_SCORE_THREADS`` ``1`` (threads of one scoring task)
``CREDIT_BATCH_RETRY_DELAY_SECONDS`` ``120`` (between a DAG task's retries)
``CREDIT_BATCH_SPEC``          ``sql/specs/gmsc/spec.toml`` (the spec training reads)
=============================  =========================================
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from credit_batch.checks import MODEL_VERSION_PATTERN, check_rows
from credit_batch.errors import ParameterError

__all__ = [
    "ALGORITHMS",
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
    "DEFAULT_SPEC_PATH",
    "EXAMPLES",
    "EXAMPLE_SPECS",
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
    "RUN_PARAMS",
    "Settings",
    "retry_delay_seconds",
]

DEFAULT_HOME = "./data"
DEFAULT_CHUNK_ROWS = 100_000
DEFAULT_PARTITION_ROWS = 1_000_000
DEFAULT_IMPORTANCE_SAMPLE_ROWS = 20_000
DEFAULT_IMPORTANCE_REPEATS = 5
DEFAULT_SEED = 42
#: The demo warehouse: customers per snapshot and monthly snapshots.
DEFAULT_DEMO_ROWS = 150_000
DEFAULT_DEMO_SNAPSHOTS = 6
#: Training: the algorithms, the default one, labeled rows sampled at most.
ALGORITHMS = ("logreg", "hgb")
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
_PACKAGE_SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
#: The feature spec training uses unless told otherwise ("Give Me Some Credit").
DEFAULT_SPEC_PATH = _PACKAGE_SQL_DIR / "specs" / "gmsc" / "spec.toml"
#: The second example's spec: a loan book with categorical features.
LENDER_SPEC_PATH = _PACKAGE_SQL_DIR / "specs" / "lender" / "spec.toml"
#: The generated examples ``credit-batch demo --example`` builds, and their specs.
EXAMPLE_SPECS = {"gmsc": DEFAULT_SPEC_PATH, "lender": LENDER_SPEC_PATH}
EXAMPLES = tuple(EXAMPLE_SPECS)

#: JSON Schema of each parameter a manual run takes (the DAG's ``Param`` s);
#: the limits are the ones the package itself enforces.
RUN_PARAMS: dict[str, dict] = {
    "snapshot_date": {
        "default": None,
        "type": ["null", "string"],
        "format": "date",
        "description": "Snapshot to score (YYYY-MM-DD); empty: the newest at the run's date",
    },
    "model_version": {
        "default": None,
        "type": ["null", "string"],
        "pattern": MODEL_VERSION_PATTERN,
        "description": "Registered model version; empty: the champion",
    },
    "chunk_rows": {
        "default": DEFAULT_CHUNK_ROWS,
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_CHUNK_ROWS,
        "description": "Rows per scoring chunk",
    },
    "rows_per_partition": {
        "default": DEFAULT_PARTITION_ROWS,
        "type": "integer",
        "minimum": 100,
        "maximum": MAX_PARTITION_ROWS,
        "description": "Rows per Parquet partition (one score task each)",
    },
    "max_quarantine_fraction": {
        "default": DEFAULT_MAX_QUARANTINE_FRACTION,
        "type": "number",
        "minimum": 0,
        "maximum": 1,
        "description": "Error budget: share of rows that may break the rules before the run fails",
    },
    "fail_on_drift": {
        "default": False,
        "type": "boolean",
        "description": "Fail the run, loading nothing, when the score PSI is above 0.25",
    },
    "importance_sample_rows": {
        "default": DEFAULT_IMPORTANCE_SAMPLE_ROWS,
        "type": "integer",
        "minimum": 100,
        "maximum": MAX_IMPORTANCE_SAMPLE_ROWS,
        "description": "Labeled rows sampled for permutation importance",
    },
    "importance_repeats": {
        "default": DEFAULT_IMPORTANCE_REPEATS,
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_IMPORTANCE_REPEATS,
        "description": "Shuffles per feature",
    },
}


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
    spec_path : Path
        The feature spec file training reads (scoring uses the model's own).
    """

    home: Path = Path(DEFAULT_HOME)
    warehouse_url: str = ""
    results_url: str = ""
    sql_dir: Path = _PACKAGE_SQL_DIR
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    partition_rows: int = DEFAULT_PARTITION_ROWS
    score_threads: int = DEFAULT_SCORE_THREADS
    risk_bands: tuple[tuple[float, str], ...] = field(default=DEFAULT_RISK_BANDS)
    spec_path: Path = DEFAULT_SPEC_PATH

    def __post_init__(self) -> None:
        home = Path(self.home).expanduser().resolve()
        object.__setattr__(self, "home", home)
        if not self.warehouse_url:
            object.__setattr__(self, "warehouse_url", f"duckdb:///{home / 'warehouse.duckdb'}")
        if not self.results_url:
            object.__setattr__(self, "results_url", f"duckdb:///{home / 'results.duckdb'}")
        check_rows("chunk_rows", self.chunk_rows, maximum=MAX_CHUNK_ROWS)
        check_rows("partition_rows", self.partition_rows, maximum=MAX_PARTITION_ROWS)
        check_rows("score_threads", self.score_threads, maximum=MAX_SCORE_THREADS)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Build settings from ``CREDIT_BATCH_*`` variables (``os.environ`` by default)."""
        env = os.environ if environ is None else environ
        return cls(
            home=Path(env.get("CREDIT_BATCH_HOME", DEFAULT_HOME)),
            warehouse_url=env.get("CREDIT_BATCH_WAREHOUSE_URL", ""),
            results_url=env.get("CREDIT_BATCH_RESULTS_URL", ""),
            sql_dir=Path(env.get("CREDIT_BATCH_SQL_DIR", str(_PACKAGE_SQL_DIR))),
            chunk_rows=_int_env(env, "CREDIT_BATCH_CHUNK_ROWS", DEFAULT_CHUNK_ROWS),
            partition_rows=_int_env(env, "CREDIT_BATCH_PARTITION_ROWS", DEFAULT_PARTITION_ROWS),
            score_threads=_int_env(env, "CREDIT_BATCH_SCORE_THREADS", DEFAULT_SCORE_THREADS),
            spec_path=Path(env.get("CREDIT_BATCH_SPEC", str(DEFAULT_SPEC_PATH))),
        )

    @property
    def lake(self) -> Path:
        """Root of the Parquet lake."""
        return self.home / "lake"

    @property
    def model_store(self) -> Path:
        """Root of the versioned model artifacts."""
        return self.home / "models"


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


def _int_env(env: object, name: str, default: int) -> int:
    raw = env.get(name)  # type: ignore[attr-defined]
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ParameterError(name, raw, "must be an integer") from None
