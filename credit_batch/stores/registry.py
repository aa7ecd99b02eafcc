"""The model store and registry: named models, versioned artifacts, sha256, champions.

A model has a name (``pd_cards``; by default its spec's) and versions; each
model has at most one champion and its own challengers, candidates and
audit trail. A version belongs to one model (versions are unique across
models).

An artifact lives at ``<models URL>/<version>/model.skops`` beside a
``metadata.json`` (by default ``<home>/models``, recorded relative to the
home; on S3 the full ``s3://`` URI); the ``model_registry`` table holds the
same facts and is the source of truth.

Two locks on loading, because a model file is code an attacker would like
to run on the scoring workers:

1. the file's sha256 must equal the one registered at training time;
2. the file is a skops archive, not a pickle: skops rebuilds only the
   scikit-learn and NumPy types it trusts plus :data:`TRUSTED_TYPES`, and
   refuses any other type instead of executing it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from credit_batch.checks import check_model_name, check_model_version, utcnow
from credit_batch.config import Policy, Settings, safe_url
from credit_batch.errors import (
    ArtifactIntegrityError,
    GateError,
    ModelGraphError,
    ModelNotFoundError,
    NoChampionError,
    ParameterError,
)
from credit_batch.faults import fault_point
from credit_batch.features import FeatureSpec, default_spec
from credit_batch.storage import Location, is_remote, location
from credit_batch.stores import results
from credit_batch.stores.db import Database, read_sql
from credit_batch.stores.lake import atomic_path, sha256_file

__all__ = [
    "ARTIFACT_NAME",
    "FittedModel",
    "ModelRecord",
    "TRUSTED_TYPES",
    "challengers",
    "champion",
    "champions",
    "default_actor",
    "events",
    "get_model",
    "lineage",
    "list_models",
    "model_edges",
    "load_model",
    "verified_artifact",
    "promote",
    "record_event",
    "key_suffix_of",
    "resolve",
    "retire",
    "save_model",
    "set_validation",
    "shadow_models",
]

logger = logging.getLogger(__name__)

ARTIFACT_NAME = "model.skops"
#: Types skops does not trust by default that our model pipelines contain.
TRUSTED_TYPES = (
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",  # the trees of gradient boosting brought from outside
)


@dataclass(frozen=True)
class FittedModel:
    """A fitted model and what the registry records of it.

    ``fingerprint`` is the sha256 of what determines the model (the training
    rows, algorithm, seed, features and scikit-learn's version), so the same
    inputs give the same model version, whatever the archive's timestamps.
    """

    model: object
    algorithm: str
    features: list[str]
    metrics: dict
    training_rows: int
    train_from: dt.date
    fingerprint: str
    background: list[float] | None = None
    drift_reference: dict | None = None
    spec: FeatureSpec = field(default_factory=default_spec)


@dataclass(frozen=True)
class ModelRecord:
    """One registered model version (a ``model_registry`` row)."""

    model_version: str
    created_at: dt.datetime
    algorithm: str
    features: tuple[str, ...]
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
    spec: str | None = None
    spec_hash: str | None = None
    validation_date: dt.date | None = None
    validation: str | None = None
    gate_status: str | None = None
    model_card: str | None = None
    policy: str | None = None  # JSON (Policy.to_dict); None: registered before policies
    model_name: str | None = None  # the model this version belongs to
    segment_by: str | None = None  # a segmented model's column (schema version 3)
    segment: str | None = None  # its segment's value; None: every row (pooled)
    inventory: str | None = None  # JSON: owner, purpose, tier, limitations (schema version 5)

    @property
    def label(self) -> str:
        """``pd_cards``, or a segment's ``pd_cards/DE`` (the pooled one: ``pd_cards/*``)."""
        if self.segment_by is None:
            return self.model_name
        return f"{self.model_name}/{'*' if self.segment is None else self.segment}"

    def policy_or(self, fallback: Policy) -> Policy:
        """The policy registered with this version; ``fallback`` for a version registered
        before policies were recorded (it scored with its deployment's then)."""
        return fallback if self.policy is None else Policy.from_dict(json.loads(self.policy))

    @property
    def role(self) -> str:
        """``champion``, ``challenger`` (a candidate whose gates passed), ``candidate`` or
        ``retired``."""
        if self.status == "candidate" and self.gate_status == "passed":
            return "challenger"
        return self.status

    @property
    def feature_spec(self) -> FeatureSpec:
        """The spec the model was trained on (GMSC for versions registered before specs)."""
        if self.spec is None:
            return default_spec()
        return FeatureSpec.from_dict(json.loads(self.spec))

    @property
    def reference_bins(self) -> dict | None:
        """Training-time bins of each feature and the score (:mod:`credit_batch.steps.drift`)."""
        return None if self.drift_reference is None else json.loads(self.drift_reference)

    @property
    def background(self) -> list[float] | None:
        """The linear explainer's background (mean transformed features), if any."""
        return None if self.explainer_background is None else json.loads(self.explainer_background)

    def row(self) -> dict:
        """The ``model_registry`` row: the features as a JSON array."""
        return {**asdict(self), "features": json.dumps(list(self.features))}


def save_model(
    db: Database,
    settings: Settings,
    fitted: FittedModel,
    *,
    train_until: dt.date,
    model_name: str | None = None,
    policy: Policy | None = None,
    segment_by: str | None = None,
    segment: str | None = None,
    upstream: dict[str, list[str]] | None = None,
    inventory: dict | None = None,
) -> ModelRecord:
    """Write the artifact and metadata, register it as a candidate of ``model_name``
    (default: the spec's name) with ``policy`` (default: the settings'), return its record.

    ``segment_by``, ``segment``: a segmented model's column and this version's
    segment (None: trained on every row, the pooled version). ``upstream``: the
    versions of each model whose scores it was trained on (``model_lineage``).
    ``inventory``: what the model inventory says of it (owner, purpose, tier,
    limitations: :attr:`credit_batch.model_file.ModelFile.inventory`).
    A version whose spec reads models (``upstream_model``) that would read it back,
    or chain more than :data:`credit_batch.graph.MAX_WAVES`, is refused
    (ModelGraphError), before anything is written.

    The version is ``<algorithm>-<train_until>-<fingerprint[:10]>``: the same
    training inputs give the same version. A version already registered is
    returned as it is, and nothing is written (its artifact keeps its sha256);
    one registered for another model is refused (it would belong to two).
    """
    model_name = check_model_name(model_name or fitted.spec.name)
    version = f"{fitted.algorithm}-{train_until:%Y%m%d}-{fitted.fingerprint[:10]}"
    known = _fetch(db, settings, "registry/get.sql", {"model_version": version})
    if known:
        _same_model(known[0], model_name)
        logger.info("model %s is already registered; nothing to write", version)
        return known[0]
    check_edges(db, settings, model_name, fitted.spec)
    folder = settings.models / version
    name, data = _artifact_bytes(fitted)
    with atomic_path(folder / name) as tmp:
        tmp.write_bytes(data)
    record = ModelRecord(
        model_version=version,
        model_name=model_name,
        created_at=utcnow(),
        algorithm=fitted.algorithm,
        features=tuple(fitted.features),
        training_rows=int(fitted.training_rows),
        train_from=fitted.train_from,
        train_until=train_until,
        artifact_path=_recorded(settings, folder / name),
        sha256=sha256_file(folder / name),
        explainer_background=_json_or_none(fitted.background),
        drift_reference=_json_or_none(fitted.drift_reference),
        spec=json.dumps(fitted.spec.to_dict(), sort_keys=True),
        spec_hash=fitted.spec.digest,
        policy=json.dumps((policy or settings.policy).to_dict(), sort_keys=True),
        segment_by=segment_by,
        segment=segment,
        inventory=None if inventory is None else json.dumps(inventory, sort_keys=True),
        **{k: float(fitted.metrics[k]) for k in ("roc_auc", "log_loss", "ks")},
    )
    with atomic_path(folder / "metadata.json") as tmp:
        tmp.write_text(json.dumps(asdict(record), default=str, indent=2))
    fault_point("registry.before_register")
    _register(db, settings, record, upstream or {})
    return record


def model_edges(db: Database, settings: Settings) -> dict[str, set[str]]:
    """``{model: the models its versions (not retired) read}``, every registered model."""
    edges: dict[str, set[str]] = {}
    for name, spec in _model_specs(db, settings):
        edges.setdefault(name, set()).update(spec.upstream_models)
    return edges


def _model_specs(db: Database, settings: Settings) -> list[tuple[str, FeatureSpec]]:
    rows = db.fetch_arrow(read_sql(settings.sql_dir, "registry/edges.sql")).to_pylist()
    return [(r["model_name"], FeatureSpec.from_dict(json.loads(r["spec"]))) for r in rows]


def check_edges(db: Database, settings: Settings, model_name: str, spec: FeatureSpec) -> None:
    """Refuse ``spec`` for ``model_name`` where a model it reads is unknown or keyed
    otherwise, or where the edges close a cycle (ModelGraphError, naming it)."""
    from credit_batch import graph

    if not spec.upstream:
        return
    specs = _model_specs(db, settings)
    key_types = {name: s.key_type for name, s in specs}
    for name in spec.upstream_models:
        if name not in key_types:
            raise ModelGraphError(
                f"model {model_name} reads the scores of model {name}, which is not "
                "registered; train and promote it first",
                models=[name, model_name],
            )
        if key_types[name] != spec.key_type:
            raise ModelGraphError(
                f"model {model_name} ({spec.key_type} keys) reads model {name}, whose "
                f"customers have {key_types[name]} keys: a score is joined on the same key",
                models=[name, model_name],
            )
    edges = model_edges(db, settings)
    edges[model_name] = edges.get(model_name, set()) | set(spec.upstream_models)
    graph.check_graph(edges, adding=model_name)


def _same_model(record: ModelRecord, name: str) -> None:
    if record.model_name != name:
        raise ParameterError(
            "model name",
            name,
            f"must be {record.model_name!r}: the same training inputs made version "
            f"{record.model_version}, registered for model {record.model_name!r}",
        )


def _artifact_bytes(fitted: FittedModel) -> tuple[str, bytes]:
    """The artifact's file name and bytes: LightGBM's own text, else a skops archive."""
    if fitted.algorithm in ("lgbm", "outside-lgbm"):
        from credit_batch.stores import trees

        return trees.ARTIFACT_NAME, trees.dumps(fitted.model)
    import skops.io

    return ARTIFACT_NAME, skops.io.dumps(fitted.model)


def _json_or_none(value) -> str | None:
    return None if value is None else json.dumps(value)


def _register(db: Database, settings: Settings, record: ModelRecord, upstream: dict) -> None:
    import pyarrow as pa

    with db.transaction():
        results.lock(db, settings, f"model/{record.model_version}")
        if _fetch(db, settings, "registry/get.sql", {"model_version": record.model_version}):
            logger.info("model %s is already registered", record.model_version)
            return
        if record.feature_spec.upstream:  # two readers registered at once: one graph
            results.lock(db, settings, "model-graph")
            check_edges(db, settings, record.model_name, record.feature_spec)
        db.bulk_insert("model_registry", pa.Table.from_pylist([record.row()]))
        results.replace_reasons(db, settings, record.feature_spec.reasons)
        lineage = [
            {"model_version": record.model_version, "model_name": record.model_name,
             "upstream_model": name, "upstream_version": version}
            for name, versions in sorted(upstream.items()) for version in versions
        ]  # fmt: skip
        if lineage:
            db.bulk_insert("model_lineage", pa.Table.from_pylist(lineage))


def lineage(db: Database, settings: Settings, model_name: str | None = None) -> list[dict]:
    """Lineage rows (``upstream_model``, ``upstream_version``, ``model_name``,
    ``model_version``, ``status``); with ``model_name``, of the models reading it,
    directly or through others: what changing it affects."""
    from credit_batch import graph

    rows = db.fetch_arrow(read_sql(settings.sql_dir, "registry/lineage.sql")).to_pylist()
    if model_name is None:
        return rows
    reached = graph.downstream_of(model_edges(db, settings), [check_model_name(model_name)])
    return [r for r in rows if r["model_name"] in reached - {model_name}]


def _fetch(db: Database, settings: Settings, name: str, params: dict) -> list[ModelRecord]:
    rows = db.fetch_arrow(read_sql(settings.sql_dir, name), params).to_pylist()
    return [ModelRecord(**{**row, "features": tuple(json.loads(row["features"]))}) for row in rows]


def get_model(db: Database, settings: Settings, version: str) -> ModelRecord:
    """Return the record of ``version``; raise ModelNotFoundError if unknown."""
    version = check_model_version(version)
    found = _fetch(db, settings, "registry/get.sql", {"model_version": version})
    if not found:
        raise ModelNotFoundError(
            f"model version {version!r} is not registered in {db.url}; "
            "`credit-batch models` lists the registered ones",
            version=version,
        )
    return found[0]


def key_suffix_of(db: Database, settings: Settings, version: str) -> str:
    """The suffix of the keyed tables holding ``version``'s slices (its spec's key type;
    "" for a version not registered: the database's own tables; see
    :data:`credit_batch.stores.results.KEY_SUFFIX`)."""
    try:
        key_type = get_model(db, settings, version).feature_spec.key_type
    except ModelNotFoundError:
        return ""
    return results.key_suffix(db, settings, key_type)


def resolve(
    settings: Settings,
    version: str | None,
    *,
    model_name: str | None = None,
    segment: str | None | object = ...,
) -> ModelRecord:
    """The record of ``version``, or of the champion of ``model_name`` (of the only
    model with a champion when none is named; of a segmented model, of ``segment``);
    the results are only read.

    Refused (ParameterError) where ``version`` belongs to another model than
    ``model_name``.
    """
    _results_exist(settings)
    with results.open_results(settings, read_only=True) as db:
        if version:
            record = get_model(db, settings, version)
            if model_name is not None and record.model_name != check_model_name(model_name):
                raise ParameterError(
                    "model version",
                    version,
                    f"belongs to model {record.model_name!r}, not {model_name!r}",
                )
        else:
            record = champion(db, settings, model_name, segment=segment)
    return record


def night_models(
    settings: Settings, version: str | None = None, *, model_name: str | None = None
) -> list[ModelRecord]:
    """The models a night scores: ``version``, or the champions of ``model_name`` (one per
    segment of a segmented model), or, with neither, every model's (by name, then
    segment); the results are only read.

    Raises NoChampionError where no model has a champion.
    """
    if version:
        return [resolve(settings, version, model_name=model_name)]
    _results_exist(settings)
    with results.open_results(settings, read_only=True) as db:
        found = champions(db, settings)
        if model_name is not None:
            found = [r for r in found if r.model_name == check_model_name(model_name)]
        return found or [champion(db, settings, model_name)]  # none: NoChampionError


def _results_exist(settings: Settings) -> None:
    if not results.exists(settings):
        raise NoChampionError(
            f"no models yet: the results database {safe_url(settings.results_url)} does not exist; "
            "`credit-batch train --until D --promote` registers one, `credit-batch demo` "
            "builds the demo"
        )


def champion(
    db: Database,
    settings: Settings,
    model_name: str | None = None,
    *,
    segment: str | None | object = ...,
) -> ModelRecord:
    """The champion of ``model_name``, or of the only model with one when none is named;
    of a segmented model, the champion of ``segment`` (None: the pooled one).

    Raises NoChampionError if there is none, ParameterError if no model is
    named and several models have champions (naming them), or if the model is
    segmented and no segment is named (naming its segments).
    """
    if model_name is not None:
        params = {"model_name": check_model_name(model_name)}
        found = _fetch(db, settings, "registry/champion.sql", params)
    else:
        found = champions(db, settings)
    if segment is not ...:
        found = [r for r in found if r.segment == segment]
    if len(found) > 1:
        names = ", ".join(f"{r.label} ({r.model_version})" for r in found)
        what = "a segment, or a version," if model_name else "one of the models with a champion"
        raise ParameterError("model name", model_name, f"must name {what}: {names}")
    if not found:
        which = f" of model {model_name!r}" if model_name else ""
        which += "" if segment in (..., None) else f", segment {segment!r}"
        raise NoChampionError(
            f"no champion{which} in {db.url}; run `credit-batch train --until D --promote` "
            "(or `credit-batch promote VERSION`), pass a model version, or on a fresh "
            "home run `credit-batch demo`",
            model_name=model_name,
        )
    return found[0]


def champions(db: Database, settings: Settings) -> list[ModelRecord]:
    """Every model's champion, by model name."""
    return _fetch(db, settings, "registry/champions.sql", {})


def promote(
    db: Database,
    settings: Settings,
    version: str,
    *,
    actor: str | None = None,
    reason: str | None = None,
    override_gates: bool = False,
) -> ModelRecord:
    """Make ``version`` the champion of its model and retire that model's previous one,
    atomically, with audit rows; other models' champions are untouched.

    A version whose gates failed is refused unless ``override_gates`` (the
    override is recorded). The ``promoted`` event, and the previous champion's
    ``retired`` event, are written in the same transaction as the change.
    """
    record, actor = get_model(db, settings, version), actor or default_actor()
    failed = (record.gate_status or "").startswith("failed")
    if failed and not override_gates:
        raise GateError(
            f"model {version} failed its gates ({record.gate_status}); promoting it takes an "
            "explicit override (`credit-batch promote --override-gates`)",
            version=version,
            gate_status=record.gate_status,
        )
    with db.transaction():
        model = {"model_name": record.model_name, "segment": record.segment}
        results.lock(db, settings, f"champion/{record.model_name}")
        named = {"model_name": record.model_name}
        champions_of = _fetch(db, settings, "registry/champion.sql", named)
        before = [r for r in champions_of if r.segment == record.segment]
        db.execute(read_sql(settings.sql_dir, "registry/retire_champion.sql"), model)
        fault_point("promote.between_updates")
        db.execute(
            read_sql(settings.sql_dir, "registry/promote.sql"),
            {"model_version": record.model_version, "promoted_at": utcnow()},
        )
        for old in before:
            if old.model_version != record.model_version:
                why = f"replaced by {record.model_version}"
                record_event(db, settings, old.model_version, "retired", actor=actor, reason=why)
        details = {"gate_status": record.gate_status, "override_gates": bool(failed)}
        record_event(db, settings, version, "promoted", actor=actor, reason=reason, details=details)
    return get_model(db, settings, version)


def retire(
    db: Database,
    settings: Settings,
    version: str,
    *,
    actor: str | None = None,
    reason: str | None = None,
) -> ModelRecord:
    """Retire ``version`` (a challenger leaves the nightly shadow scoring), with an audit row."""
    record, actor = get_model(db, settings, version), actor or default_actor()
    if record.status == "champion":
        raise GateError(
            f"model {version} is the champion; promote another version to replace it",
            version=version,
        )
    with db.transaction():
        db.execute(read_sql(settings.sql_dir, "registry/retire.sql"), {"model_version": version})
        record_event(db, settings, version, "retired", actor=actor, reason=reason)
    return get_model(db, settings, version)


def default_actor() -> str:
    """Who acts when no one is named: the operating-system user."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        return "unknown"


def record_event(
    db: Database,
    settings: Settings,
    version: str,
    event: str,
    *,
    actor: str,
    reason: str | None = None,
    details: dict | None = None,
) -> None:
    """Append one ``model_events`` row (in the caller's transaction, if any), with the
    name of the version's model."""
    import uuid

    model_name = get_model(db, settings, version).model_name

    db.execute(
        read_sql(settings.sql_dir, "registry/event.sql"),
        {
            "event_id": uuid.uuid4().hex,
            "model_version": version,
            "model_name": model_name,
            "event": event,
            "event_at": utcnow(),
            "actor": actor,
            "reason": reason,
            "details": None if details is None else json.dumps(details, sort_keys=True),
        },
    )


def events(db: Database, settings: Settings, version: str | None = None) -> list[dict]:
    """The audit trail, oldest first (of one version, or of all)."""
    rows = db.fetch_arrow(read_sql(settings.sql_dir, "registry/events.sql")).to_pylist()
    return [r for r in rows if version is None or r["model_version"] == version]


def set_validation(
    db: Database,
    settings: Settings,
    version: str,
    *,
    validation_date: dt.date,
    validation: dict,
    gate_status: str,
    model_card: str | None,
) -> None:
    """Record a version's out-of-time validation, gate result and model card."""
    db.execute(
        read_sql(settings.sql_dir, "registry/set_validation.sql"),
        {
            "model_version": version,
            "validation_date": validation_date,
            "validation": json.dumps(validation, sort_keys=True),
            "gate_status": gate_status,
            "model_card": model_card,
        },
    )


def challengers(
    db: Database, settings: Settings, model_name: str, *, segment: str | None = None
) -> list[ModelRecord]:
    """The active challengers of ``model_name`` (of its ``segment``, None: unsegmented or
    pooled): candidates whose gates passed, oldest first."""
    params = {"model_name": check_model_name(model_name), "segment": segment}
    return _fetch(db, settings, "registry/challengers.sql", params)


def shadow_models(settings: Settings, champion: ModelRecord) -> list[ModelRecord]:
    """The challengers of ``champion``'s model a night scores beside it: those that read
    the same features (the same spec), so that the extracted partitions serve them all."""
    with results.open_results(settings, read_only=True) as db:
        found = challengers(db, settings, champion.model_name, segment=champion.segment)
    same = [c for c in found if c.spec_hash == champion.spec_hash]
    if len(same) < len(found):
        logger.info(
            "%d challengers read another spec: not scored in shadow", len(found) - len(same)
        )
    return [c for c in same if c.model_version != champion.model_version]


def list_models(db: Database, settings: Settings) -> list[dict]:
    """All registered versions, newest first."""
    return db.fetch_arrow(read_sql(settings.sql_dir, "registry/list.sql")).to_pylist()


def verified_artifact(
    settings: Settings, artifact_path: str, sha256: str, *, version: str
) -> tuple[Location, bytes]:
    """The artifact's location and bytes, refused unless its sha256 is the registered one.

    Raises
    ------
    ArtifactIntegrityError
        The file is missing, or its bytes changed since it was registered.
    """
    path = _artifact(settings, artifact_path)
    try:
        data = path.read_bytes()
    except (FileNotFoundError, OSError) as exc:
        raise ArtifactIntegrityError(
            f"model {version}: artifact {path} is missing ({exc})", version=version, path=str(path)
        ) from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise ArtifactIntegrityError(
            f"model {version}: artifact {path} has sha256 {actual[:12]}..., registered "
            f"{sha256[:12]}...; refusing to load a changed artifact",
            version=version,
            path=str(path),
            expected=sha256,
            actual=actual,
        )
    return path, data


def load_model(settings: Settings, artifact_path: str, sha256: str, *, version: str):
    """Load an artifact after checking its sha256 against the registered one.

    ``artifact_path``: the URI the registry recorded (a local path or
    ``s3://...``); a relative path (models registered before the model store
    had a URL) is relative to the settings' home.
    """
    import skops.io

    path, data = verified_artifact(settings, artifact_path, sha256, version=version)
    try:
        if path.name.endswith(".lgbm.txt"):
            from credit_batch.stores import trees

            return trees.loads(data)
        return skops.io.loads(data, trusted=list(TRUSTED_TYPES))
    except Exception as exc:  # skops: UntrustedTypesFoundException, zip/json; LightGBM: parse
        raise ArtifactIntegrityError(
            f"model {version}: artifact {path} cannot be loaded safely: {exc}",
            version=version,
            path=str(path),
        ) from exc


def _recorded(settings: Settings, artifact: Location) -> str:
    """The artifact's path as registered: relative to the home where it lies in it."""
    home = str(Path(settings.home)) + "/"
    return artifact.uri.removeprefix(home) if artifact.is_local else artifact.uri


def _artifact(settings: Settings, artifact_path: str) -> Location:
    if is_remote(artifact_path) or Path(artifact_path).is_absolute():
        return location(artifact_path, settings.s3)
    return location(Path(settings.home) / artifact_path)
