"""A search for less discriminatory alternatives of a candidate model.

Where a model's decisions fall harder on a protected group, a lender is expected
to look for an alternative that serves its business need as well with less
disparate impact, and to document the choice. For a candidate's training and
validation rows this module:

1. fits the candidate as specified (the *baseline*) and ranks its features by how
   much more they push the scores of the group with the lowest adverse impact
   ratio up than the reference group's (the mean SHAP contribution in that group
   minus the reference group's, on the validation rows);
2. fits variants without each of the ``top`` drivers, with each one capped (a
   feature whose risk grows with it clipped at the reference group's 90th
   percentile, one whose risk falls floored at its 10th; a categorical feature
   is not capped), and without all of them;
3. scores each on the validation rows: its ROC AUC and every group's AIR at the
   policy's cutoff, and marks the *frontier*: the variants no other beats on both
   AUC and lowest AIR.

Nothing is registered: the table is the evidence a team keeps beside its choice
(``credit-batch fairness-search``), and a variant worth keeping is trained as a
candidate like any other (its spec without, or with a capped, feature).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from credit_batch.steps import fairness
from credit_batch.steps.encoding import model_frame
from credit_batch.steps.explain import explain, linear_background
from credit_batch.steps.training import fit_and_evaluate

__all__ = ["DEFAULT_TOP", "search_alternatives"]

logger = logging.getLogger(__name__)

#: Drivers of the disparity tried one by one.
DEFAULT_TOP = 3
_CAP_QUANTILE = {"increases": 0.90, "decreases": 0.10}


def search_alternatives(
    train,
    valid,
    groups: dict,
    *,
    spec,
    algorithm: str,
    seed: int,
    cutoff: float,
    top: int = DEFAULT_TOP,
) -> list[dict]:
    """The baseline and its variants, each with ROC AUC, AIRs and whether it is on the
    frontier (see the module's docstring).

    Parameters
    ----------
    train, valid : pandas.DataFrame
        Labeled rows of the spec (training window; the validation snapshot).
    groups : dict
        Each fairness attribute's group of every row of ``valid`` (arrays in row order).
    top : int
        How many of the disparity's drivers to drop and cap.
    """
    if not spec.fairness:
        raise ValueError(f"spec {spec.name} declares no fairness attribute to search against")
    if top < 1:
        raise ValueError(f"top: must be >= 1; got {top!r}")
    options = {"groups": groups, "algorithm": algorithm, "seed": seed, "cutoff": cutoff}
    baseline, model = _evaluate("baseline", train, valid, spec, **options)
    drivers = _drivers(model, valid, spec, groups, baseline, algorithm)[:top]
    logger.info("drivers of the disparity: %s", ", ".join(drivers) or "none")
    found = [baseline]
    for name in drivers:
        found.append(_evaluate(f"drop {name}", train, valid, _without(spec, [name]), **options)[0])
        capped = _capped(train, valid, spec, groups, name)
        if capped is not None:
            found.append(_evaluate(f"cap {name}", *capped, spec, **options)[0])
    if len(drivers) > 1:
        label = f"drop all {len(drivers)}"
        found.append(_evaluate(label, train, valid, _without(spec, drivers), **options)[0])
    return _mark_frontier(found)


def _evaluate(name, train, valid, spec, *, groups, algorithm, seed, cutoff):
    from sklearn.metrics import roc_auc_score

    model, _ = fit_and_evaluate(train, spec=spec, algorithm=algorithm, seed=seed)
    p = model.predict_proba(model_frame(valid, spec))[:, 1]
    rows = []
    for a in spec.fairness:
        rows += fairness.group_metrics(p, groups[a.name], attribute=a.name,
                                       reference=a.reference, cutoff=cutoff, n_boot=0)  # fmt: skip
    others = [r for r in rows if not r["is_reference"]]
    ratios = {f"{r['attribute']}={r['group_value']}": r["air"] for r in others}
    known = [v for v in ratios.values() if v is not None]
    return {
        "variant": name,
        "features": len(spec.names),
        "roc_auc": float(roc_auc_score(valid[spec.target].to_numpy(), p)),
        "min_air": min(known) if known else None,
        "air": ratios,
    }, model


def _drivers(model, valid, spec, groups, baseline: dict, algorithm: str) -> list[str]:
    """Features by how much more they push the worst group's scores up than the reference's."""
    if baseline["min_air"] is None:
        return []
    worst = min((k for k, v in baseline["air"].items() if v is not None), key=baseline["air"].get)
    attribute, group = worst.split("=", 1)
    reference = next(a.reference for a in spec.fairness if a.name == attribute)
    x = model_frame(valid, spec)
    background = linear_background(model, x) if algorithm == "logreg" else None
    _, phi, _ = explain(model, x, background=background)
    labels = np.asarray(groups[attribute], dtype=object)
    gap = phi[labels == group].mean(axis=0) - phi[labels == reference].mean(axis=0)
    order = np.argsort(-gap, kind="stable")
    return [spec.names[j] for j in order if gap[j] > 0]


def _without(spec, names: list[str]):
    kept = tuple(f for f in spec.features if f.name not in names)
    return dataclasses.replace(spec, features=kept, features_query=None, labeled_query=None)


def _capped(train, valid, spec, groups, name: str):
    """Train and validation rows with ``name`` capped at the reference group's quantile
    (None where the feature cannot be capped: categorical, or no direction)."""
    feature = spec.feature(name)
    q = _CAP_QUANTILE.get(feature.direction)
    if q is None or feature.categorical:
        return None
    a = spec.fairness[0]
    reference = np.asarray(groups[a.name], dtype=object) == a.reference
    bound = float(np.nanquantile(valid[name].to_numpy(dtype=float)[reference], q))
    clip = {"upper": bound} if feature.direction == "increases" else {"lower": bound}
    return (
        train.assign(**{name: train[name].clip(**clip)}),
        valid.assign(**{name: valid[name].clip(**clip)}),
    )


def _mark_frontier(found: list[dict]) -> list[dict]:
    """Mark the variants no other beats on both ROC AUC and lowest AIR (ties kept)."""
    for v in found:
        air = v["min_air"] if v["min_air"] is not None else -np.inf
        v["frontier"] = not any(
            o is not v
            and o["roc_auc"] >= v["roc_auc"]
            and (o["min_air"] if o["min_air"] is not None else -np.inf) >= air
            and (o["roc_auc"] > v["roc_auc"] or (o["min_air"] or -np.inf) > air)
            for o in found
        )
    return found
