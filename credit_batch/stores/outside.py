"""Models trained elsewhere: read a file safely, or refuse it by name.

A modelling team brings a model with the spec it reads (``credit-batch
register``). What is read, and how:

- a **LightGBM text model** (``Booster.save_model``: a ``.txt`` file that starts
  ``tree``): parsed by LightGBM, which runs nothing; exact TreeSHAP;
- a **scikit-learn estimator saved with skops** (``.skops``): rebuilt only from the
  types skops trusts and the few more the registry trusts
  (:data:`credit_batch.stores.registry.TRUSTED_TYPES`); an archive holding any
  other type is refused, naming each.

Refused by name: pickles and joblib files (loading one runs whatever it holds),
XGBoost JSON models and MLflow model directories (not supported by this
release: the xgboost and mlflow packages are not installed), and anything else.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from credit_batch.errors import ModelError

__all__ = ["OutsideModel", "read_outside"]

_PICKLES = (".pkl", ".pickle", ".joblib", ".sav", ".dill", ".cloudpickle")


@dataclass(frozen=True)
class OutsideModel:
    """A model read from a team's file: the estimator, its flavour and the file's sha256."""

    model: object
    flavour: str  # lgbm | sklearn
    sha256: str
    path: str


def read_outside(path: str | Path) -> OutsideModel:
    """Read the model file ``path``, or raise ModelError naming the file and the rule."""
    path = Path(path)
    if path.is_dir():
        if (path / "MLmodel").is_file():
            rule = "is an MLflow model directory: not supported by this release (register "
            raise _refused(path, rule + "its model file: a skops archive or a LightGBM text model)")
        raise _refused(path, "is a folder, not a model file")
    if not path.is_file():
        raise _refused(path, "does not exist")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if path.suffix.lower() in _PICKLES or data[:1] == b"\x80":
        rule = "is a pickle: loading one runs any code it holds; save the model with "
        raise _refused(path, rule + "skops.io.dump (scikit-learn) or Booster.save_model (LightGBM)")
    if path.suffix.lower() == ".skops" or data[:2] == b"PK":
        return OutsideModel(_skops(path, data), "sklearn", digest, str(path))
    if data.startswith(b"tree\n"):
        from credit_batch.stores import trees

        try:
            return OutsideModel(trees.loads(data), "lgbm", digest, str(path))
        except Exception as exc:  # LightGBM's parse error
            raise _refused(path, f"is not a LightGBM text model LightGBM can read ({exc})") from exc
    if path.suffix.lower() == ".json" and b'"learner"' in data[:4096]:
        raise _refused(path, "is an XGBoost JSON model: not supported by this release")
    raise _refused(path, "is of an unknown kind: give a .skops archive or a LightGBM text model")


def _skops(path: Path, data: bytes):
    import skops.io

    from credit_batch.stores.registry import TRUSTED_TYPES

    try:
        untrusted = skops.io.get_untrusted_types(data=data)
    except Exception as exc:  # not a skops archive: zip or schema errors
        raise _refused(path, f"is not a skops archive ({exc})") from exc
    refused = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if refused:
        raise _refused(path, "holds types the registry does not trust: " + ", ".join(refused))
    model = skops.io.loads(data, trusted=list(untrusted))
    if not hasattr(model, "predict_proba"):
        raise _refused(path, f"holds a {type(model).__name__}, which has no predict_proba")
    return model


def _refused(path: Path, rule: str) -> ModelError:
    return ModelError(f"model file {path}: {rule}", path=str(path), rule=rule)
