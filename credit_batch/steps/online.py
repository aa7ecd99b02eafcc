"""Score one applicant online, with exactly the batch's rules, model and reason codes.

The applicant's fields become a one-row Arrow batch of the model's spec and go
through the very function a scoring task runs on each chunk
(:func:`credit_batch.steps.scoring.score_batch`): the same validation rules,
the same model input, the same explanation and reason codes, the same points.
So the same row gets the same score online and in the batch, to the last bit.
"""

from __future__ import annotations

import json
import math

from credit_batch.config import Settings
from credit_batch.errors import NoChampionError, ParameterError
from credit_batch.features import MAX_MAGNITUDE, FeatureSpec
from credit_batch.steps import scoring, segments
from credit_batch.steps.validation import describe_invalid

__all__ = [
    "ApplicantError",
    "applicant_schema",
    "champion_for",
    "check_fields",
    "check_overrides",
    "score_applicant",
    "score_customer",
    "score_customers",
]

#: Where an applicant has no id of the results' key type yet.
_APPLICANT = {"integer": 0, "string": "applicant"}


class ApplicantError(ParameterError):
    """An applicant's field breaks a rule of the spec (``field``, ``rule``, ``value``)."""


def check_fields(fields: object, spec: FeatureSpec) -> dict:
    """``fields`` as the lake would hold them, if they are the spec's features, each of its kind.

    Every feature must be present (``null`` for a missing value); no other
    field is taken. Numbers must be finite JSON numbers (not strings, not
    booleans, except for a boolean feature); a categorical feature takes a
    string. The spec's own rules (ranges, forbidden codes, levels, nulls)
    are the batch's and are checked when the row is scored.
    """
    if not isinstance(fields, dict):
        raise ApplicantError("body", type(fields).__name__, "must be a JSON object of features")
    extra = sorted(set(fields) - set(spec.names))
    missing = [n for n in spec.names if n not in fields]
    if extra or missing:
        name, value = ("field", extra[0]) if extra else ("field", missing[0])
        rule = "is not a feature of the model" if extra else "is required (null if unknown)"
        raise ApplicantError(name, value, rule)
    return {name: _check_kind(name, fields[name], spec) for name in spec.names}


def _check_kind(name: str, value: object, spec: FeatureSpec) -> object:
    """``value`` as the lake holds it (numbers as floats), or ApplicantError."""
    if value is None:
        return None
    kind = spec.feature(name).type
    if kind == "categorical":
        if not isinstance(value, str):
            raise ApplicantError(name, value, "must be a string (a level) or null")
        return value
    if kind == "boolean" and isinstance(value, bool):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ApplicantError(name, value, f"must be a number ({kind}) or null")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ApplicantError(name, value, "must be a finite number")
    return number


def applicant_schema(spec: FeatureSpec) -> dict:
    """The JSON schema of an applicant's body under ``spec`` (for the OpenAPI document).

    Each feature is required (``null`` where the spec allows a missing value),
    of its JSON type, within its range, none of its forbidden codes, and a
    declared level where an undeclared one is quarantined.
    """
    return {
        "type": "object",
        "properties": {f.name: _feature_schema(f) for f in spec.features},
        "required": list(spec.names),
        "additionalProperties": False,
    }


def _feature_schema(feature) -> dict:
    kind = {"categorical": ["string"], "boolean": ["boolean", "number"]}
    schema: dict = {"type": list(kind.get(feature.type, ["number"]))}
    if feature.nullable:
        schema["type"].append("null")
    if not feature.categorical:
        low, high = feature.minimum, feature.maximum
        schema["minimum"] = -MAX_MAGNITUDE if low is None else max(low, -MAX_MAGNITUDE)
        schema["maximum"] = MAX_MAGNITUDE if high is None else min(high, MAX_MAGNITUDE)
    if feature.forbidden:
        schema["not"] = {"enum": list(feature.forbidden)}
    if feature.categorical and feature.unseen == "quarantine":
        schema["enum"] = [*feature.categories, *([None] if feature.nullable else [])]
    if feature.description:
        schema["description"] = feature.description
    return schema


def score_applicant(settings: Settings, model, record, fields: dict) -> dict:
    """Score, band, points and reason codes (with texts) of one applicant by ``record``'s model.

    Raises ApplicantError naming the field, the rule and the value where a
    field breaks the spec (the batch would quarantine the row).
    """
    spec = record.feature_spec
    row = {"snapshot_date": None, "customer_id": _APPLICANT[spec.key_type]}
    row.update(check_fields(fields, spec))
    return _score_row(settings, model, record, row, fields)


def score_customer(
    settings: Settings, model, record, customer_id, stored: dict, *, overrides=None, streamed=None
) -> dict:
    """Score a customer now from their stored batch features (the online store), by
    ``record``'s model, with the batch's rules, reasons and points.

    Parameters
    ----------
    customer_id : int or str
        The customer, of the spec's key type.
    stored : dict
        The customer's row of the online store
        (:func:`credit_batch.stores.online_store.features_of`).
    overrides : dict, optional
        Values of the spec's request-time features (``request_time = true``)
        to score with instead of the stored ones; any other name is refused.
    streamed : dict, optional
        Values of the spec's streaming features as of the event being scored
        (:func:`credit_batch.windows.values_at`), taken over the stored ones.

    Returns
    -------
    dict
        What :func:`score_applicant` returns, with ``customer_id``,
        ``feature_set``, ``features_snapshot_date`` (the snapshot the stored
        features are of) and ``overridden`` (the names taken from the request).
    """
    asked = {"customer_id": customer_id, "stored": stored, "overrides": overrides,
             "streamed": streamed}  # fmt: skip
    (answer,) = score_customers(settings, model, record, [asked])
    if isinstance(answer, ApplicantError):
        raise answer
    return answer


def score_customers(settings: Settings, model, record, asked: list[dict]) -> list:
    """:func:`score_customer` of several customers in one batch (a stream's micro-batch):
    for each ``{"customer_id", "stored", "overrides", "streamed"}``, its answer or the
    ApplicantError it would raise alone. A row scores to the same bits in any batch."""
    spec, out, rows, taken = record.feature_spec, [], [], []
    for one in asked:
        try:
            given = check_overrides(one["overrides"], spec) | (one["streamed"] or {})
        except ApplicantError as exc:
            out.append(exc)
            continue
        stored = one["stored"]
        fields = {name: stored["features"].get(name) for name in spec.names} | given
        rows.append({"snapshot_date": stored["snapshot_date"],
                     "customer_id": one["customer_id"], **fields})  # fmt: skip
        taken.append((len(out), given))
        out.append(None)
    answers = _score_rows(settings, model, record, rows)
    for (i, given), answer in zip(taken, answers, strict=True):
        if not isinstance(answer, ApplicantError):
            stored = asked[i]["stored"]
            answer = answer | {
                "customer_id": asked[i]["customer_id"],
                "feature_set": spec.feature_set,
                "features_snapshot_date": stored["snapshot_date"],
                "overridden": sorted(given),
            }
        out[i] = answer
    return out


def check_overrides(overrides: object, spec: FeatureSpec) -> dict:
    """``overrides`` checked as values of ``spec``'s request-time features (as the lake
    holds them); ApplicantError naming the first field that is not one, or breaks its kind."""
    if overrides is None:
        return {}
    if not isinstance(overrides, dict):
        raise ApplicantError("body", type(overrides).__name__, "must be a JSON object")
    allowed = spec.request_time
    for name in overrides:
        if name not in allowed:
            known = ", ".join(allowed) or "none in this model's spec"
            rule = f"is not a request-time feature of the model ({known})"
            raise ApplicantError(name, overrides[name], rule)
    return {name: _check_kind(name, value, spec) for name, value in overrides.items()}


def champion_for(units: list, features: dict, *, model_name: str):
    """The unit of ``units`` (``(record, ...)`` of one model's champions) that scores a row
    of ``features``: the only one; of a segmented model, its segment's champion, else the
    pooled one. NoChampionError (with the quarantine's reason) where there is none."""
    first = units[0][0]
    if first.segment_by is None:
        return units[0]
    value = features.get(first.segment_by)
    value = "" if value is None else str(value)
    by_segment = {unit[0].segment: unit for unit in units}
    found = by_segment.get(value, by_segment.get(None))
    if found is None:
        reason, _ = segments.uncovered_reason(model_name, first.segment_by, value)
        raise NoChampionError(reason, model_name=model_name)
    return found


def _score_row(settings: Settings, model, record, row: dict, fields: dict) -> dict:
    (answer,) = _score_rows(settings, model, record, [row])
    if isinstance(answer, ApplicantError):
        raise answer
    return answer


def _score_rows(settings: Settings, model, record, rows: list[dict]) -> list:
    """Each row's answer, or the ApplicantError naming the rule it breaks (one batch)."""
    import pyarrow as pa

    if not rows:
        return []
    spec = record.feature_spec
    batch = pa.RecordBatch.from_pylist(rows, schema=spec.arrow_schema())
    scored, rejected = scoring.score_batch(
        model,
        batch,
        spec=spec,
        feature_names=list(record.features),
        model_version=record.model_version,
        policy=record.policy_or(settings.policy),  # the batch's bands and points
        background=record.background,
    )
    out: list = [None] * len(rows)
    if len(rejected):
        described = describe_invalid(rejected.reset_index(drop=True), spec=spec)
        for i, (_, broken) in zip(rejected.index, described.iterrows(), strict=True):
            column, _, rule = broken["reason"].split("; ")[0].partition(": ")
            value = json.loads(broken["offending_values"]).get(column, rows[i].get(column))
            out[i] = ApplicantError(column, value, f"breaks the rule {rule}")
    answers = iter(scored.to_pylist())
    return [o if o is not None else _answer(next(answers), record, spec.reasons) for o in out]


def _answer(row: dict, record, texts: dict[str, str]) -> dict:
    reasons = [
        {"feature": name, "text": texts.get(name), "value": row[f"reason_{i}_value"]}
        for i in (1, 2, 3)
        if (name := row[f"reason_{i}"]) is not None
    ]
    return {
        "score": row["score"],
        "risk_band": row["risk_band"],
        "points": row["points"],
        "reasons": reasons,
        "model_version": record.model_version,
    }
