"""The model store and registry: versioned artifacts, sha256, champion.

An artifact lives at ``<home>/models/<version>/model.skops`` beside a
``metadata.json``; the ``model_registry`` table holds the same facts and
is the source of truth.

Two locks on loading, because a model file is code an attacker would like
to run on the scoring workers:

1. the file's sha256 must equal the one registered at training time;
2. the file is a skops archive, not a pickle: skops rebuilds only the
   scikit-learn and NumPy types it trusts plus :data:`TRUSTED_TYPES`, and
   refuses any other type instead of executing it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from credit_batch.config import Settings
from credit_batch.db import Database, read_sql
from credit_batch.errors import ArtifactIntegrityError, ModelNotFoundError, NoChampionError
from credit_batch.faults import fault_point
from credit_batch.lake import atomic_path, check_model_version, sha256_file
from credit_batch.results import utcnow

logger = logging.getLogger(__name__)

ARTIFACT_NAME = "model.skops"
#: Types skops does not trust by default that our model pipelines contain.
TRUSTED_TYPES = (
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)


@dataclass(frozen=True)
class ModelRecord:
    """One registered model version (a ``model_registry`` row)."""

    model_version: str
    created_at: dt.datetime
    algorithm: str
    features: str
    training_rows: int
    train_from: dt.date | None
    train_until: dt.date
    roc_auc: float
    log_loss: float
    ks: float
    artifact_path: str
    sha256: str
    status: str = "candidate"
    promoted_at: dt.datetime | None = None
    explainer_background: str | None = None
    drift_reference: str | None = None

    @property
    def reference_bins(self) -> dict | None:
        """Training-time bins of each feature and the score (see :mod:`credit_batch.drift`)."""
        return None if self.drift_reference is None else json.loads(self.drift_reference)

    @property
    def background(self) -> list[float] | None:
        """The linear explainer's background (mean transformed features), if any."""
        return None if self.explainer_background is None else json.loads(self.explainer_background)

    @property
    def feature_names(self) -> list[str]:
        """The model's input columns, in order."""
        return json.loads(self.features)


def save_model(
    db: Database,
    settings: Settings,
    model,
    *,
    algorithm: str,
    features: list[str],
    metrics: dict,
    training_rows: int,
    train_from,
    train_until,
    background: list[float] | None = None,
    drift_reference: dict | None = None,
) -> ModelRecord:
    """Write the artifact and metadata, register it as a candidate, return its record.

    The version is ``<algorithm>-<train_until>-<sha256[:10]>`` of the artifact.
    """
    import skops.io

    staging = settings.model_store / ".staging" / ARTIFACT_NAME
    with atomic_path(staging) as tmp:
        skops.io.dump(model, tmp)
    sha = sha256_file(staging)
    version = f"{algorithm}-{train_until:%Y%m%d}-{sha[:10]}"
    folder = settings.model_store / version
    folder.mkdir(parents=True, exist_ok=True)
    staging.replace(folder / ARTIFACT_NAME)
    record = ModelRecord(
        model_version=version,
        created_at=utcnow(),
        algorithm=algorithm,
        features=json.dumps(features),
        training_rows=int(training_rows),
        train_from=train_from,
        train_until=train_until,
        artifact_path=f"models/{version}/{ARTIFACT_NAME}",
        sha256=sha,
        explainer_background=None if background is None else json.dumps(background),
        drift_reference=None if drift_reference is None else json.dumps(drift_reference),
        **{k: float(metrics[k]) for k in ("roc_auc", "log_loss", "ks")},
    )
    with atomic_path(folder / "metadata.json") as tmp:
        tmp.write_text(json.dumps(asdict(record), default=str, indent=2))
    fault_point("registry.before_register")
    _register(db, settings, record)
    return record


def _register(db: Database, settings: Settings, record: ModelRecord) -> None:
    import pyarrow as pa

    with db.transaction():
        if _fetch(db, settings, "registry/get.sql", {"model_version": record.model_version}):
            logger.info("model %s is already registered", record.model_version)
            return
        db.bulk_insert("model_registry", pa.Table.from_pylist([asdict(record)]))


def _fetch(db: Database, settings: Settings, name: str, params: dict) -> list[ModelRecord]:
    rows = db.fetch_arrow(read_sql(settings.sql_dir, name), params).to_pylist()
    return [ModelRecord(**row) for row in rows]


def get_model(db: Database, settings: Settings, version: str) -> ModelRecord:
    """Return the record of ``version``; raise ModelNotFoundError if unknown."""
    version = check_model_version(version)
    found = _fetch(db, settings, "registry/get.sql", {"model_version": version})
    if not found:
        raise ModelNotFoundError(
            f"model version {version!r} is not registered in {db.url}", version=version
        )
    return found[0]


def champion(db: Database, settings: Settings) -> ModelRecord:
    """Return the champion's record; raise NoChampionError if none is promoted."""
    found = _fetch(db, settings, "registry/champion.sql", {})
    if not found:
        raise NoChampionError(
            f"no champion model in {db.url}; run `credit-batch train` then "
            "`credit-batch promote VERSION`, or pass a model version"
        )
    return found[0]


def promote(db: Database, settings: Settings, version: str) -> ModelRecord:
    """Make ``version`` the champion and retire the previous one, atomically."""
    record = get_model(db, settings, version)
    with db.transaction():
        db.execute(read_sql(settings.sql_dir, "registry/retire_champion.sql"))
        fault_point("promote.between_updates")
        db.execute(
            read_sql(settings.sql_dir, "registry/promote.sql"),
            {"model_version": record.model_version, "promoted_at": utcnow()},
        )
    return get_model(db, settings, version)


def list_models(db: Database, settings: Settings) -> list[dict]:
    """All registered versions, newest first."""
    return db.fetch_arrow(read_sql(settings.sql_dir, "registry/list.sql")).to_pylist()


def load_model(home: Path, artifact_path: str, sha256: str, *, version: str):
    """Load an artifact after checking its sha256 against the registered one."""
    import skops.io

    path = Path(home) / artifact_path
    if not path.is_file():
        raise ArtifactIntegrityError(
            f"model {version}: artifact {path} is missing", version=version, path=str(path)
        )
    actual = sha256_file(path)
    if actual != sha256:
        raise ArtifactIntegrityError(
            f"model {version}: artifact {path} has sha256 {actual[:12]}..., registered "
            f"{sha256[:12]}...; refusing to load a changed artifact",
            version=version,
            path=str(path),
            expected=sha256,
            actual=actual,
        )
    try:
        return skops.io.load(path, trusted=list(TRUSTED_TYPES))
    except Exception as exc:  # skops raises UntrustedTypesFoundException, zip/json errors
        raise ArtifactIntegrityError(
            f"model {version}: artifact {path} cannot be loaded safely: {exc}",
            version=version,
            path=str(path),
        ) from exc
