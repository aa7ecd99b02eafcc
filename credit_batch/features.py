"""The feature spec: which columns the model sees, their types, rules and meaning.

A spec is a TOML file (``sql/specs/gmsc/spec.toml`` is the default, the
course's "Give Me Some Credit" feature set): the entity key, the snapshot
column, the warehouse tables, every feature with its rules and reason text,
the target, and the queries (SQL files beside the spec, or generated from the
table names). :func:`load_spec` reads and checks one, naming the field of
each mistake; :class:`FeatureSpec` is what the pipeline uses.

The spec travels with the model: training records it (queries included) in
the registry, and scoring, validation, reasons, drift and importance use the
model's own spec, never a module default.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from credit_batch.checks import IDENTIFIER, MODEL_NAME_PATTERN, read_toml
from credit_batch.config import DEFAULT_SPEC_PATH
from credit_batch.errors import SchemaMismatchError, SpecError
from credit_batch.windows import parse_window, with_streaming

__all__ = [
    "FairnessAttribute",
    "AGGREGATES",
    "DIRECTIONS",
    "EventSource",
    "FEATURE_TYPES",
    "Feature",
    "FeatureSpec",
    "KEY_TYPES",
    "MAX_MAGNITUDE",
    "UNSEEN_POLICIES",
    "UPSTREAM_OUTPUTS",
    "Window",
    "default_spec",
    "load_spec",
]

#: Feature types a spec may declare. Numbers (numeric, integer, boolean) are
#: read into the lake as float64, categories as strings.
FEATURE_TYPES = ("numeric", "integer", "boolean", "categorical")
#: No number beyond ±this is scored, whatever the spec declares: a value of 1e300
#: or infinity is corruption, and it would overflow the model's transforms.
MAX_MAGNITUDE = 1e15
#: What a category not declared in the spec gets at scoring time.
UNSEEN_POLICIES = ("quarantine", "other")
#: What a feature read from another model's scores takes of them.
UPSTREAM_OUTPUTS = ("score", "points")
#: How risk moves as a feature's value grows.
DIRECTIONS = ("increases", "decreases", "none")
#: Aggregates of a streaming feature over its window of a customer's events.
AGGREGATES = ("count", "sum", "minutes_since_last")
#: Types of the entity key: ``customer_id`` is BIGINT or VARCHAR in the lake and results.
KEY_TYPES = ("integer", "string")


@dataclass(frozen=True)
class Window:
    """What a streaming feature aggregates: a customer's events of one kind over a window.

    The value as of an instant ``T`` is over the events of ``kind`` with
    ``T - window < at <= T`` (event time): ``count`` of them, ``sum`` of their
    ``field`` (0 where none), or ``minutes_since_last`` of them (the window's
    length in minutes where none). The stream consumer keeps it in Redis
    (:mod:`credit_batch.stores.windows`); the warehouse computes the same from
    its event history for training and the night (``T`` = the snapshot date at
    00:00), by SQL generated from this definition.
    """

    kind: str
    aggregate: str
    window: int  # seconds
    field: str | None = None


@dataclass(frozen=True)
class EventSource:
    """Where a spec's streaming features come from: the event history in the warehouse
    (``table``: one row per event with its id, customer, time, kind and fields), the
    grace for late events (seconds; an event older than the customer's newest by more
    is dead-lettered) and the event kinds that are scored (``triggers``; all where empty)."""

    table: str = "events"
    key: str = "customer_id"
    id_column: str = "event_id"
    time_column: str = "event_at"
    kind_column: str = "kind"
    grace: int = 600
    triggers: tuple[str, ...] = ()


@dataclass(frozen=True)
class FairnessAttribute:
    """An attribute read for fair-lending tests only: a protected class or its proxy.

    ``name``: a column of the spec's entity table, read beside the scores (never
    extracted with the features, never a model input); ``reference``: the group the
    adverse impact ratio divides by (:mod:`credit_batch.steps.fairness`).
    """

    name: str
    reference: str
    description: str = ""


@dataclass(frozen=True)
class Feature:
    """One model input column.

    Attributes
    ----------
    name : str
        Column name, a lower-case SQL identifier.
    type : {"numeric", "integer", "boolean", "categorical"}
        What the column holds. Numbers are read as float64 (nullable), a
        boolean as 0 or 1; a categorical column as strings, one of ``categories``.
    description : str
        What the column means.
    reason : str
        Readable reason-code text: why the feature pushes a score towards default.
    direction : {"increases", "decreases", "none"}
        How risk is expected to move as the value grows.
    skewed : bool
        Heavy right tail; the model power-transforms it.
    nullable : bool
        Whether a missing value is allowed (the model imputes it).
    minimum, maximum : float or None
        Inclusive bounds of a valid value.
    forbidden : tuple of float
        Codes that are not values (the GMSC file's 96 and 98 "unknown" codes).
    discrete : bool
        Few distinct values (a count, an age in years, a flag): stored
        dictionary-encoded in the lake. Continuous columns are not (building a
        dictionary of a million distinct floats only to drop it costs ~40 % of
        the extract's Parquet write).
    categories : tuple of str
        The levels of a categorical feature, in the order the model encodes them.
    unseen : {"quarantine", "other"}
        What a categorical value outside ``categories`` gets: the row is
        quarantined, or scored as "other" (no level: every one-hot column 0)
        and counted in the run's ``rows_other_category``.
    upstream_model : str or None
        The model whose stored score of the same snapshot and key this
        feature is (a collections model reading ``pd_cards``): not a warehouse
        column; the extract joins the upstream's champion scores, and the
        night scores the upstream first (:mod:`credit_batch.graph`).
    upstream_output : {"score", "points"}
        Which of the upstream's outputs: its probability, or its points.
    request_time : bool
        Known when a request comes (the amount asked for): online prediction
        from batch features may take it from the request instead of the
        stored value. The night reads it from the warehouse like any other.
    stream : Window or None
        A streaming feature: an aggregate of the customer's events (see
        :class:`Window`), kept current by the stream consumer and computed
        from the warehouse's event history for training and the night.

    A row that breaks a rule is quarantined, not scored (see
    :mod:`credit_batch.steps.validation`); the rules live here and nowhere else.
    """

    name: str
    type: str = "numeric"
    description: str = ""
    reason: str = ""
    direction: str = "none"
    skewed: bool = False
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    forbidden: tuple[float, ...] = ()
    discrete: bool = False
    categories: tuple[str, ...] = ()
    unseen: str = "quarantine"
    upstream_model: str | None = None
    upstream_output: str = "score"
    request_time: bool = False
    stream: Window | None = None

    @property
    def categorical(self) -> bool:
        """Whether the feature holds categories (strings), not numbers."""
        return self.type == "categorical"

    @property
    def dtype(self) -> str:
        """The pandas type the lake's column reads as: ``str`` (pandas 3) or ``float64``."""
        return "str" if self.categorical else "float64"


@dataclass(frozen=True)
class FeatureSpec:
    """What a model reads: keys, features and their rules, the target, the queries.

    Rows are keyed by ``snapshot_date`` and ``customer_id`` in the lake and the
    results (the spec's own key and snapshot columns are aliased to them).
    ``features_query`` and ``labeled_query`` hold SQL text (read from the
    spec's files); ``None`` means generated from the table names.
    """

    features: tuple[Feature, ...]
    name: str = "gmsc"
    description: str = ""
    key: str = "customer_id"
    key_type: str = "integer"
    snapshot_column: str = "snapshot_date"
    table: str = "features"
    target: str = "delinquency"
    outcomes_table: str = "outcomes"
    features_query: str | None = field(default=None, repr=False)
    labeled_query: str | None = field(default=None, repr=False)
    events: EventSource | None = None
    fairness: tuple[FairnessAttribute, ...] = ()

    def check_provides(self, names: list[str], *, model: str) -> None:
        """Raise SchemaMismatchError unless every one of ``names`` is a feature of the spec."""
        unknown = [f for f in names if f not in self.names]
        if unknown:
            raise SchemaMismatchError(
                f"model {model} needs features {unknown} that the warehouse "
                f"extract does not provide (it provides {self.names})",
                unknown=unknown,
            )

    @property
    def names(self) -> list[str]:
        """All feature names, in model order."""
        return [f.name for f in self.features]

    @property
    def upstream(self) -> tuple[Feature, ...]:
        """The features that are other models' scores (``upstream_model`` set)."""
        return tuple(f for f in self.features if f.upstream_model)

    @property
    def upstream_models(self) -> tuple[str, ...]:
        """The names of the models this spec reads the scores of, sorted, once each."""
        return tuple(sorted({f.upstream_model for f in self.upstream}))

    @property
    def in_warehouse(self) -> FeatureSpec:
        """The spec of the warehouse's columns only (no upstream feature): what the
        warehouse queries read and are checked against."""
        if not self.upstream:
            return self
        kept = tuple(f for f in self.features if not f.upstream_model)
        return replace(self, features=kept)

    @property
    def request_time(self) -> list[str]:
        """Names of the features a request may give (see :attr:`Feature.request_time`)."""
        return [f.name for f in self.features if f.request_time]

    @property
    def streaming(self) -> tuple[Feature, ...]:
        """The streaming features (``stream`` set): aggregates of the customer's events."""
        return tuple(f for f in self.features if f.stream is not None)

    @property
    def skewed(self) -> list[str]:
        """Names of the heavy-tailed numeric features."""
        return [f.name for f in self.features if f.skewed and not f.categorical]

    @property
    def regular(self) -> list[str]:
        """Names of the numeric features that are not skewed."""
        return [f.name for f in self.features if not f.skewed and not f.categorical]

    @property
    def categorical(self) -> list[str]:
        """Names of the categorical features."""
        return [f.name for f in self.features if f.categorical]

    def feature(self, name: str) -> Feature:
        """The feature called ``name``."""
        return self.features[self.names.index(name)]

    @property
    def reasons(self) -> dict[str, str]:
        """Readable reason text of each feature (its description where none is given)."""
        return {f.name: f.reason or f.description or f.name for f in self.features}

    @property
    def dictionary_columns(self) -> list[str]:
        """Columns of an extracted partition worth dictionary-encoding in Parquet."""
        return ["snapshot_date", *(f.name for f in self.features if f.discrete)]

    def arrow_schema(self, *, with_target: bool = False):
        """Arrow schema of an extracted partition: keys, features (and target)."""
        import pyarrow as pa

        fields_ = [pa.field("snapshot_date", pa.date32()), pa.field("customer_id", self.key_arrow)]
        fields_ += [
            pa.field(f.name, pa.string() if f.categorical else pa.float64()) for f in self.features
        ]
        if with_target:
            fields_.append(pa.field(self.target, pa.int64()))
        return pa.schema(fields_)

    @property
    def key_arrow(self):
        """Arrow type of ``customer_id``: int64, or string."""
        import pyarrow as pa

        return pa.string() if self.key_type == "string" else pa.int64()

    def query(self, name: str) -> str:
        """The SQL text of one of the spec's queries (see :data:`_QUERIES`).

        ``features`` (bound to ``:snapshot_date``) and ``labeled`` (bound to
        ``:date_from``, ``:date_to``) are the spec's files where it names them;
        every other query is generated from its (checked) identifiers.
        """
        given = {"features": self.features_query, "labeled": self.labeled_query}.get(name)
        if name in ("features", "labeled") and self.streaming:
            return with_streaming(self, given or self._generated(name), labeled=name == "labeled")
        return given if given is not None else self._generated(name)

    def attributes_query(self) -> str:
        """One snapshot's fairness attributes (``[[fairness]]``) by customer, as stored (their
        groups are compared as text): read for fair-lending tests beside the scores, never
        with the features."""
        if not self.fairness:
            raise ValueError(f"spec {self.name} declares no fairness attribute")
        columns = "".join(f",\n    f.{a.name}" for a in self.fairness)
        return (
            f"SELECT f.{self.key} AS customer_id{columns}\nFROM {self.table} AS f\n"
            f"WHERE f.{self.snapshot_column} = :snapshot_date"
        )

    def _generated(self, name: str) -> str:
        columns = ",\n    ".join(
            _select(f, "f") for f in self.in_warehouse.features if f.stream is None
        )
        # training's rows in one order on every database: strings in byte order
        collate = ' COLLATE "C"' if self.key_type == "string" else ""
        return _QUERIES[name].format(
            key=self.key,
            order=f"f.{self.key}{collate}",
            snap=self.snapshot_column,
            table=self.table,
            outcomes=self.outcomes_table,
            target=self.target,
            columns=columns,
        )

    def to_dict(self) -> dict:
        """Plain JSON of the whole spec, queries included (what the registry stores).

        A feature's upstream fields are left out where it reads no model (and
        ``request_time`` where false), so a spec written before them keeps its
        digest (and its feature set, its versions).
        """
        data = asdict(self)
        if data["events"] is None:  # likewise for specs with no streaming feature
            del data["events"]
        if not data["fairness"]:  # and for specs with no fairness attribute
            del data["fairness"]
        for feature in data["features"]:
            if feature["upstream_model"] is None:
                del feature["upstream_model"], feature["upstream_output"]
            if not feature["request_time"]:  # likewise: older specs keep their digests
                del feature["request_time"]
            if feature["stream"] is None:
                del feature["stream"]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> FeatureSpec:
        """The spec :meth:`to_dict` wrote."""
        feats = tuple(
            Feature(
                **{
                    **f,
                    "forbidden": tuple(f.get("forbidden") or ()),
                    "categories": tuple(f.get("categories") or ()),
                    "stream": Window(**f["stream"]) if f.get("stream") else None,
                }
            )
            for f in data["features"]
        )
        events = data.get("events")
        if events:
            events = EventSource(**{**events, "triggers": tuple(events.get("triggers") or ())})
        fairness = tuple(FairnessAttribute(**a) for a in data.get("fairness") or ())
        return cls(**{**data, "features": feats, "events": events or None, "fairness": fairness})

    @functools.cached_property
    def digest(self) -> str:
        """sha256 of the spec's canonical JSON: equal specs, equal digests (computed once
        per spec: a frozen spec's digest cannot change)."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def feature_set(self) -> str:
        """The feature set's key in the lake: ``<name>-<digest[:12]>``.

        Two models whose specs are equal share one extract; a changed spec (a
        query, a rule, a feature) is another feature set, in a folder of its own.
        """
        return f"{self.name}-{self.digest[:12]}"


def _select(feature: Feature, alias: str) -> str:
    """The select-list item of ``feature``: as strings, or as float64 like the lake's."""
    column = f"{alias}.{feature.name}"
    if feature.categorical:
        return f"CAST({column} AS VARCHAR) AS {feature.name}"
    if feature.type == "boolean":  # PostgreSQL has no boolean -> double cast
        column = f"CAST({column} AS INTEGER)"
    return f"CAST({column} AS DOUBLE PRECISION) AS {feature.name}"


# Generated queries; every name in them passed the identifier rule.
_QUERIES = {
    "features": (
        "SELECT f.{snap} AS snapshot_date, f.{key} AS customer_id,\n    {columns}\n"
        "FROM {table} AS f\nWHERE f.{snap} = :snapshot_date"
    ),
    "labeled": (
        "SELECT f.{snap} AS snapshot_date, f.{key} AS customer_id,\n    {columns},\n"
        "    CAST(o.{target} AS BIGINT) AS {target}\n"
        "FROM {table} AS f\nJOIN {outcomes} AS o ON o.{snap} = f.{snap} AND o.{key} = f.{key}\n"
        "WHERE f.{snap} BETWEEN :date_from AND :date_to\nORDER BY f.{snap}, {order}"
    ),
    "snapshots": (
        "SELECT {snap} AS snapshot_date, COUNT(*) AS n_rows FROM {table}\n"
        "GROUP BY {snap} ORDER BY {snap} DESC"
    ),
    "latest_snapshot": ("SELECT MAX({snap}) AS snapshot_date FROM {table} WHERE {snap} <= :as_of"),
    "snapshot_rows": "SELECT COUNT(*) AS n_rows FROM {table} WHERE {snap} = :snapshot_date",
    "labeled_rows": "SELECT COUNT(*) AS n_rows FROM {outcomes} WHERE {snap} = :snapshot_date",
}


# -- reading a spec file -----------------------------------------------------

_TOP = {"name", "description", "entity", "extract", "target", "features", "events", "fairness"}
_FAIRNESS = {"attribute", "reference", "description"}
_EVENTS = {f.name for f in fields(EventSource)}
_WINDOW = {f.name for f in fields(Window)}
_ENTITY = {"key", "key_type", "snapshot_column", "table"}
_EXTRACT = {"query"}
_TARGET = {"name", "table", "query"}
_FEATURE = {f.name for f in fields(Feature)}
_NUMERIC_ONLY = {"minimum", "maximum", "forbidden", "skewed"}
_CATEGORICAL_ONLY = {"categories", "unseen"}
_UPSTREAM_TYPES = ("numeric",)
_BIND = {
    "features": (":snapshot_date",),
    "labeled": (":date_from", ":date_to"),
}
_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)


def load_spec(path: str | Path) -> FeatureSpec:
    """Read and check the spec file ``path``; query files resolve beside it.

    Raises
    ------
    SpecError
        For the first mistake, naming the file, the field, the rule and the value.
    """
    path = Path(path)
    return _Reader(path).spec(read_toml(path, SpecError))


class _Reader:
    """Checks one spec file's parsed TOML, field by field."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, value: object, rule: str) -> SpecError:
        return SpecError(self.path, where, value, rule)

    def table(self, data: dict, where: str, allowed: set[str], required: set[str]) -> dict:
        if not isinstance(data, dict):
            raise self.fail(where, data, "must be a table")
        for name in data:
            if name not in allowed:
                raise self.fail(f"{where}.{name}".lstrip("."), data[name], _unknown(allowed))
        for name in sorted(required - data.keys()):
            raise self.fail(f"{where}.{name}".lstrip("."), None, "is required")
        return data

    def identifier(self, where: str, value: object) -> str:
        if not isinstance(value, str) or not IDENTIFIER.match(value):
            raise self.fail(where, value, "must be a lower-case SQL identifier")
        return value

    def text(self, where: str, value: object) -> str:
        if not isinstance(value, str):
            raise self.fail(where, value, "must be a string")
        return value

    def choice(self, where: str, value: object, choices: tuple[str, ...]) -> str:
        if value not in choices:
            raise self.fail(where, value, f"must be one of {', '.join(choices)}")
        return value

    def flag(self, where: str, value: object) -> bool:
        if not isinstance(value, bool):
            raise self.fail(where, value, "must be true or false")
        return value

    def number(self, where: str, value: object) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise self.fail(where, value, "must be a number")
        return value  # as written: a bound of 18 reads "greater_than_or_equal_to(18)"

    def query(self, where: str, name: str, kind: str) -> str:
        """The text of query file ``name`` (beside the spec), which must bind its dates."""
        self.text(where, name)
        file = (self.path.parent / name).resolve()
        if file.suffix != ".sql":
            raise self.fail(where, name, "must name a .sql file beside the spec")
        try:
            sql = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise self.fail(where, name, f"cannot be read ({exc.strerror})") from None
        code = _COMMENT.sub(" ", sql)
        for bind in _BIND[kind]:
            if not re.search(re.escape(bind) + r"\b", code):
                raise self.fail(where, name, f"must bind {bind} (the {kind} query)")
        if ";" in code.strip().rstrip(";"):
            raise self.fail(where, name, "must hold one statement")
        return sql

    def spec(self, data: dict) -> FeatureSpec:
        self.table(data, "", _TOP, {"name", "entity", "target", "features"})
        entity = self.table(data["entity"], "entity", _ENTITY, {"key", "table"})
        extract = self.table(data.get("extract", {}), "extract", _EXTRACT, set())
        target = self.table(data["target"], "target", _TARGET, {"name", "table"})
        feats = self.features(data["features"])
        key = self.identifier("entity.key", entity["key"])
        snap = self.identifier(
            "entity.snapshot_column", entity.get("snapshot_column", "snapshot_date")
        )
        target_name = self.identifier("target.name", target["name"])
        taken = {key: "entity.key", snap: "entity.snapshot_column", target_name: "target.name"}
        for i, f in enumerate(feats):
            if f.name in taken or f.name in ("snapshot_date", "customer_id"):
                raise self.fail(
                    f"features[{i}].name", f.name, "is already the key, snapshot or target column"
                )
        return FeatureSpec(
            features=feats,
            name=self.identifier("name", data["name"]),
            description=self.text("description", data.get("description", "")),
            key=key,
            key_type=self.choice("entity.key_type", entity.get("key_type", "integer"), KEY_TYPES),
            snapshot_column=snap,
            table=self.identifier("entity.table", entity["table"]),
            target=target_name,
            outcomes_table=self.identifier("target.table", target["table"]),
            features_query=_maybe(self.query, "extract.query", extract.get("query"), "features"),
            labeled_query=_maybe(self.query, "target.query", target.get("query"), "labeled"),
            events=self.events(data.get("events"), feats, key),
            fairness=self.fairness(data.get("fairness", []), feats, taken),
        )

    def features(self, data: object) -> tuple[Feature, ...]:
        if not isinstance(data, list) or not data:
            raise self.fail("features", data, "must be a non-empty array of tables ([[features]])")
        out, seen = [], {}
        for i, item in enumerate(data):
            feature = self.feature(f"features[{i}]", item)
            if feature.name in seen:
                raise self.fail(
                    f"features[{i}].name", feature.name, f"repeats features[{seen[feature.name]}]"
                )
            seen[feature.name] = i
            out.append(feature)
        return tuple(out)

    def feature(self, where: str, item: object) -> Feature:
        item = self.table(item, where, _FEATURE, {"name", "type"})
        kind = self.choice(f"{where}.type", item["type"], FEATURE_TYPES)
        only = _NUMERIC_ONLY if kind == "categorical" else _CATEGORICAL_ONLY
        for name in sorted(only & item.keys()):
            raise self.fail(f"{where}.{name}", item[name], f"does not apply to a {kind} feature")
        low = self.number(f"{where}.minimum", item.get("minimum"))
        high = self.number(f"{where}.maximum", item.get("maximum"))
        if kind == "boolean":
            low, high = (0 if low is None else low), (1 if high is None else high)
        if low is not None and high is not None and low > high:
            raise self.fail(f"{where}.minimum", low, f"must not exceed maximum {high:g}")
        forbidden = item.get("forbidden", [])
        if not isinstance(forbidden, list):
            raise self.fail(f"{where}.forbidden", forbidden, "must be an array of numbers")
        upstream = self.upstream(where, item, kind)
        return Feature(
            **upstream,
            name=self.identifier(f"{where}.name", item["name"]),
            type=kind,
            description=self.text(f"{where}.description", item.get("description", "")),
            reason=self.text(f"{where}.reason", item.get("reason", "")),
            direction=self.choice(f"{where}.direction", item.get("direction", "none"), DIRECTIONS),
            skewed=self.flag(f"{where}.skewed", item.get("skewed", False)),
            nullable=self.flag(f"{where}.nullable", item.get("nullable", False)),
            minimum=low,
            maximum=high,
            forbidden=tuple(float(self.number(f"{where}.forbidden", v)) for v in forbidden),
            discrete=self.flag(f"{where}.discrete", item.get("discrete", kind != "numeric")),
            categories=self.categories(f"{where}.categories", item.get("categories"), kind),
            unseen=self.choice(
                f"{where}.unseen", item.get("unseen", "quarantine"), UNSEEN_POLICIES
            ),
            request_time=self.flag(f"{where}.request_time", item.get("request_time", False)),
            stream=self.window(f"{where}.stream", item.get("stream"), kind, item),
        )

    def window(self, where: str, item: object, kind: str, feature: dict) -> Window | None:
        """A streaming feature's window (``[features.stream]``), or None."""
        if item is None:
            return None
        item = self.table(item, where, _WINDOW, {"kind", "aggregate", "window"})
        if kind != "numeric":
            raise self.fail(f"{where[:-7]}.type", kind, "must be numeric for a streaming feature")
        for name in ("request_time", "upstream_model"):
            if feature.get(name):
                raise self.fail(f"{where[:-7]}.{name}", feature[name],
                                "does not apply to a streaming feature")  # fmt: skip
        aggregate = self.choice(f"{where}.aggregate", item["aggregate"], AGGREGATES)
        seconds = parse_window(item["window"])
        if seconds is None:
            rule = 'must be a positive whole number of s, m, h or d ("30d")'
            raise self.fail(f"{where}.window", item["window"], rule)
        field_ = item.get("field")
        if (aggregate == "sum") != (field_ is not None):
            rule = "is required of a sum" if field_ is None else f"does not apply to {aggregate}"
            raise self.fail(f"{where}.field", field_, rule)
        return Window(
            kind=self.identifier(f"{where}.kind", item["kind"]),
            aggregate=aggregate,
            window=seconds,
            field=None if field_ is None else self.identifier(f"{where}.field", field_),
        )

    def fairness(self, data: object, feats, taken: dict) -> tuple[FairnessAttribute, ...]:
        """The ``[[fairness]]`` attributes: for testing only, so never a feature's name."""
        if not isinstance(data, list):
            raise self.fail("fairness", data, "must be an array of tables ([[fairness]])")
        out, names = [], {f.name for f in feats}
        for i, item in enumerate(data):
            where = f"fairness[{i}]"
            item = self.table(item, where, _FAIRNESS, {"attribute", "reference"})
            name = self.identifier(f"{where}.attribute", item["attribute"])
            if name in names:
                rule = "is a feature of the spec: an attribute for testing only must never be "
                raise self.fail(f"{where}.attribute", name, rule + "a model input")
            if name in taken or name in ("snapshot_date", "customer_id"):
                raise self.fail(f"{where}.attribute", name, "is the key, snapshot or target column")
            if name in {a.name for a in out}:
                raise self.fail(f"{where}.attribute", name, "is declared twice")
            reference = self.text(f"{where}.reference", item["reference"])
            if not reference.strip():
                raise self.fail(f"{where}.reference", reference, "must name a group")
            about = self.text(f"{where}.description", item.get("description", ""))
            out.append(FairnessAttribute(name, reference, about))
        return tuple(out)

    def events(self, item: object, feats: tuple[Feature, ...], key: str) -> EventSource | None:
        """The ``[events]`` table: required where a feature is streaming, else refused."""
        streaming = [i for i, f in enumerate(feats) if f.stream is not None]
        if item is None:
            if streaming:
                raise self.fail("events", None, f"is required by the streaming feature "
                                f"features[{streaming[0]}]")  # fmt: skip
            return None
        if not streaming:
            raise self.fail("events", item, "applies only to a spec with a streaming feature")
        item = self.table(item, "events", _EVENTS, {"table"})
        names = {n: self.identifier(f"events.{n}", item.get(n, d))
                 for n, d in (("table", None), ("key", key), ("id_column", "event_id"),
                              ("time_column", "event_at"), ("kind_column", "kind"))}  # fmt: skip
        grace = parse_window(item.get("grace", "10m"))
        if grace is None:
            raise self.fail("events.grace", item.get("grace"), 'must be a window such as "10m"')
        triggers = item.get("triggers", [])
        if not isinstance(triggers, list):
            raise self.fail("events.triggers", triggers, "must be an array of event kinds")
        kinds = tuple(self.identifier("events.triggers", k) for k in triggers)
        return EventSource(**names, grace=grace, triggers=kinds)

    def upstream(self, where: str, item: dict, kind: str) -> dict:
        """``upstream_model`` and ``upstream_output`` of a feature read from another model."""
        if "upstream_model" not in item:
            if "upstream_output" in item:
                raise self.fail(f"{where}.upstream_output", item["upstream_output"],
                                "needs upstream_model (the model whose output it is)")  # fmt: skip
            return {}
        model = item["upstream_model"]
        if not isinstance(model, str) or not re.match(MODEL_NAME_PATTERN, model):
            raise self.fail(f"{where}.upstream_model", model, "must be a model name")
        if kind not in _UPSTREAM_TYPES:
            raise self.fail(f"{where}.type", kind, "must be numeric for a model's output")
        output = item.get("upstream_output", "score")
        output = self.choice(f"{where}.upstream_output", output, UPSTREAM_OUTPUTS)
        return {"upstream_model": model, "upstream_output": output}

    def categories(self, where: str, value: object, kind: str) -> tuple[str, ...]:
        if kind != "categorical":
            return ()
        if not isinstance(value, list) or not value:
            raise self.fail(where, value, "must be a non-empty array of strings")
        for level in value:
            if not isinstance(level, str) or not level.strip():
                raise self.fail(where, level, "must hold non-empty strings")
        repeated = sorted({v for v in value if value.count(v) > 1})
        if repeated:
            raise self.fail(where, repeated[0], "repeats a category")
        return tuple(value)


def _maybe(read, where: str, value: object, kind: str) -> str | None:
    return None if value is None else read(where, value, kind)


def _unknown(allowed: set[str]) -> str:
    return f"is not a known field (known: {', '.join(sorted(allowed))})"


@functools.cache
def default_spec() -> FeatureSpec:
    """The spec used when none is given: the "Give Me Some Credit" feature set.

    Read from the package's data the first time it is asked for, never at
    import time (a wheel imports without touching a file).
    """
    return load_spec(DEFAULT_SPEC_PATH)


def __getattr__(name: str):
    # DEFAULT_FEATURE_SPEC (older code's name for default_spec()) loads lazily.
    if name == "DEFAULT_FEATURE_SPEC":
        return default_spec()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
