"""Model files: what a model is, in one TOML file beside its feature spec.

A model file names the model, the spec it reads, the algorithm and its
training options, the policy its versions decide with (risk bands, points
scale, gates, swap cutoff), its owner and its purpose::

    name = "pd_cards"
    description = "Probability of 90+ days late within two years, credit cards"
    owner = "credit-risk@lender.example"
    purpose = "Approve or decline card applications; set the initial limit"
    tier = 1                      # model risk tier: 1 (highest) to 3
    limitations = ["Not validated for business cards"]
    spec = "spec.toml"            # relative to this file
    algorithm = "logreg"          # logreg | hgb | lgbm
    seed = 42
    max_rows = 300000
    segment_by = "country"        # optional: a champion per country (a categorical feature)
    fallback = "pooled"           # optional: also train a pooled version for the rest

    [policy]
    risk_bands = [[0.02, "A"], [0.05, "B"], [0.10, "C"], [0.20, "D"], [1.0, "E"]]
    swap_cutoff = 0.10
    scorecard = { base_points = 600, base_odds = 50, pdo = 20 }
    gates = { min_auc = 0.70, max_psi = 0.25, champion_margin = 0.01 }

A segmented model (``segment_by``) has a version and a champion per segment
(:mod:`credit_batch.steps.segments`); ``fallback = "pooled"`` trains a version
on every row too, which scores the rows of segments without a champion
(``"quarantine"``, the default: they are quarantined with that reason).

``owner``, ``description``, ``purpose``, ``tier`` and ``limitations`` are the
model inventory's (SR 11-7): registered with each version
(``model_registry.inventory``) and listed by the inventory page.

Every field but ``name`` and ``spec`` has a default (the package's); a
mistake is refused with one :class:`~credit_batch.errors.ModelFileError`
naming the file, the field, the rule and the value. Training from a model
file registers its policy with the version (``model_registry.policy``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from credit_batch.checks import MODEL_NAME_PATTERN, check_model_name, read_toml
from credit_batch.config import (
    ALGORITHMS,
    DEFAULT_ALGORITHM,
    DEFAULT_SEED,
    DEFAULT_TRAIN_MAX_ROWS,
    Gates,
    Policy,
    Scorecard,
)
from credit_batch.errors import ModelFileError, ParameterError
from credit_batch.features import FeatureSpec, load_spec

__all__ = ["ModelFile", "each_segment", "load_model_file", "training_options"]

_TOP = {"name", "description", "owner", "spec", "algorithm", "seed", "max_rows", "policy"}
_TOP |= {"segment_by", "fallback", "purpose", "tier", "limitations"}
#: Model risk tiers: 1 the most material (the most validation), 3 the least.
TIERS = (1, 2, 3)
#: What scores the rows of a segment without a champion of its own.
FALLBACKS = ("quarantine", "pooled")
_POLICY = {"risk_bands", "swap_cutoff", "scorecard", "gates"}


@dataclass(frozen=True)
class ModelFile:
    """A model file, checked: its name, spec, training options, policy and purpose."""

    name: str
    spec: FeatureSpec
    path: Path
    algorithm: str = DEFAULT_ALGORITHM
    seed: int = DEFAULT_SEED
    max_rows: int = DEFAULT_TRAIN_MAX_ROWS
    policy: Policy = field(default_factory=Policy)
    owner: str | None = None
    description: str | None = None
    segment_by: str | None = None
    fallback: str = "quarantine"
    purpose: str | None = None
    tier: int | None = None
    limitations: tuple[str, ...] = ()

    @property
    def inventory(self) -> dict:
        """What the model inventory records of the model (registered with each version)."""
        return {
            "owner": self.owner,
            "description": self.description,
            "purpose": self.purpose,
            "tier": self.tier,
            "limitations": list(self.limitations),
            "model_file": self.path.name,
        }


def training_options(
    path: str | Path | None = None,
    *,
    algorithm: str | None = None,
    max_rows: int | None = None,
    seed: int | None = None,
    model_name: str | None = None,
) -> dict:
    """The training keyword arguments of the model file ``path`` (none: the package's
    defaults); a value given here wins over the file's (the CLI's flags, the DAG's Params).

    Returns ``algorithm``, ``max_rows``, ``seed`` and ``model_name``, and with a file its
    ``spec``, ``policy``, ``segment_by`` and ``inventory``.
    """
    given = {"algorithm": algorithm, "max_rows": max_rows, "seed": seed, "model_name": model_name}
    if path is None:
        base = {"algorithm": DEFAULT_ALGORITHM, "max_rows": DEFAULT_TRAIN_MAX_ROWS}
        base |= {"seed": DEFAULT_SEED, "model_name": None}
    else:
        model = load_model_file(path)
        base = {"algorithm": model.algorithm, "max_rows": model.max_rows, "seed": model.seed}
        base |= {"model_name": model.name, "spec": model.spec, "policy": model.policy}
        base |= {"segment_by": model.segment_by, "inventory": model.inventory}
    return base | {k: v for k, v in given.items() if v is not None}


def each_segment(path: str | Path) -> list[str | None]:
    """The segments a segmented model file trains a version of: each level its spec declares
    for ``segment_by``, and None (the pooled version) where ``fallback = "pooled"``.

    Raises ParameterError for a model file that is not segmented.
    """
    model = load_model_file(path)
    if model.segment_by is None:
        raise ParameterError("--each-segment", str(path), "needs a model file with segment_by")
    levels = list(model.spec.feature(model.segment_by).categories)
    return levels + ([None] if model.fallback == "pooled" else [])


def load_model_file(path: str | Path) -> ModelFile:
    """Read and check the model file ``path`` and the spec it names.

    Raises
    ------
    ModelFileError
        For the first mistake, naming the file, the field, the rule and the value.
    SpecError
        For the first mistake of the spec it names.
    """
    path = Path(path)
    data = read_toml(path, ModelFileError)
    _fields(path, data, "", _TOP, required={"name", "spec"})
    spec = _spec(path, data["spec"])
    return ModelFile(
        name=_checked(
            path, "name", data["name"], check_model_name, "must match " + MODEL_NAME_PATTERN
        ),
        spec=spec,
        path=path,
        algorithm=_choice(path, "algorithm", data.get("algorithm", DEFAULT_ALGORITHM)),
        seed=_integer(path, "seed", data.get("seed", DEFAULT_SEED), minimum=0),
        max_rows=_integer(
            path, "max_rows", data.get("max_rows", DEFAULT_TRAIN_MAX_ROWS), minimum=50
        ),
        policy=_policy(path, data.get("policy", {})),
        owner=_text(path, "owner", data.get("owner")),
        description=_text(path, "description", data.get("description")),
        segment_by=_segment_by(path, spec, data.get("segment_by")),
        fallback=_fallback(path, data),
        purpose=_text(path, "purpose", data.get("purpose")),
        tier=_tier(path, data.get("tier")),
        limitations=_limitations(path, data.get("limitations", [])),
    )


def _tier(path: Path, value: object) -> int | None:
    if value is not None and (isinstance(value, bool) or value not in TIERS):
        raise ModelFileError(path, "tier", value, "must be 1, 2 or 3 (1: the most material)")
    return value


def _limitations(path: Path, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ModelFileError(path, "limitations", value, "must be a list of non-empty strings")
    return tuple(value)


def _segment_by(path: Path, spec: FeatureSpec, value: object) -> str | None:
    if value is None:
        return None
    if value not in spec.categorical:
        known = ", ".join(spec.categorical) or "none"
        raise ModelFileError(
            path, "segment_by", value, f"must name a categorical feature of the spec ({known})"
        )
    return value


def _fallback(path: Path, data: dict) -> str:
    value = data.get("fallback", "quarantine")
    if value not in FALLBACKS:
        raise ModelFileError(path, "fallback", value, f"must be one of {', '.join(FALLBACKS)}")
    if value != "quarantine" and "segment_by" not in data:
        raise ModelFileError(path, "fallback", value, "needs segment_by (a segmented model)")
    return value


def _fields(path: Path, data: object, where: str, allowed: set[str], *, required=()) -> dict:
    if not isinstance(data, dict):
        raise ModelFileError(path, where or "file", data, "must be a table")
    for name in data:
        if name not in allowed:
            known = ", ".join(sorted(allowed))
            raise ModelFileError(path, f"{where}{name}", data[name], f"is not a field ({known})")
    for name in sorted(set(required) - data.keys()):
        raise ModelFileError(path, f"{where}{name}", None, "is required")
    return data


def _checked(path: Path, where: str, value: object, check, rule: str):
    try:
        return check(value)
    except ParameterError:
        raise ModelFileError(path, where, value, rule) from None


def _spec(path: Path, value: object) -> FeatureSpec:
    if not isinstance(value, str) or not value.endswith(".toml"):
        raise ModelFileError(path, "spec", value, "must be the path of a spec file (.toml)")
    file = (path.parent / value).resolve()
    if not file.is_file():
        raise ModelFileError(path, "spec", value, f"must name an existing file ({file})")
    return load_spec(file)


def _choice(path: Path, where: str, value: object) -> str:
    if value not in ALGORITHMS:
        raise ModelFileError(path, where, value, f"must be one of {', '.join(ALGORITHMS)}")
    return value


def _integer(path: Path, where: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ModelFileError(path, where, value, f"must be an integer >= {minimum}")
    return value


def _text(path: Path, where: str, value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ModelFileError(path, where, value, "must be a string")
    return value


def _policy(path: Path, data: object) -> Policy:
    _fields(path, data, "policy.", _POLICY)
    try:
        return Policy(
            risk_bands=_bands(path, data.get("risk_bands")),
            scorecard=Scorecard(**_fields(path, data.get("scorecard", {}), "policy.scorecard.",
                                          {"base_points", "base_odds", "pdo"})),
            gates=Gates(**_fields(path, data.get("gates", {}), "policy.gates.",
                                  {"min_auc", "max_psi", "champion_margin", "min_air"})),
            swap_cutoff=data.get("swap_cutoff", Policy.swap_cutoff),
        )  # fmt: skip
    except ParameterError as exc:  # the policy's own rule, named as its field of this file
        raise ModelFileError(path, f"policy ({exc.name})", exc.value, exc.rule) from None


def _bands(path: Path, value: object) -> tuple:
    if value is None:
        return Policy.risk_bands
    if not isinstance(value, list) or not all(
        isinstance(b, list)
        and len(b) == 2
        and isinstance(b[0], int | float)
        and not isinstance(b[0], bool)
        and isinstance(b[1], str)
        for b in value
    ):
        raise ModelFileError(path, "policy.risk_bands", value, 'must be [[bound, "band"], ...]')
    return tuple((b[0], b[1]) for b in value)
