"""The exceptions credit-batch raises.

Every error names what was wrong (the input, the rule, the value) in a
single line, carries that context as attributes, and pickles (Airflow and
multiprocessing move exceptions between processes)::

    CreditBatchError
    ├── ServiceUnavailableError      a database cannot be reached or is locked (retryable)
    ├── ParameterError               a setting or argument breaks a rule
    │   ├── UnsupportedDatabaseError a URL names a database we do not drive
    │   ├── SpecError                a feature spec file breaks a rule
    │   └── ModelFileError           a model file breaks a rule
    ├── DataError                    the data cannot be used as it is
    │   ├── SnapshotNotFoundError    no rows for the requested snapshot date
    │   ├── SchemaMismatchError      a column is missing or has the wrong type
    │   ├── SchemaVersionError       the results database is older or newer than this release
    │   ├── QuarantineBudgetError    more rows broke the rules than the budget allows
    │   ├── DriftError               the scores drifted into the act band (if asked to fail)
    │   ├── ReconciliationError      rows in != rows scored + rows quarantined
    │   └── UpstreamScoresError      a model read by another has no scores of that snapshot
    └── ModelError                   the model cannot be used
        ├── ModelNotFoundError       unknown model version
        ├── NoChampionError          no version is promoted to champion
        ├── ArtifactIntegrityError   the artifact's sha256 does not match
        ├── GateError                a lifecycle act its gates or role forbid
        └── ModelGraphError          models would read each other in a cycle (or too deep)

Only :class:`ServiceUnavailableError` is ``retryable``: retrying any other
error gives the same answer, so schedulers should fail the task at once.

Keyword context (``snapshot_date=...``, ``version=...``) becomes attributes
and survives pickling through :meth:`CreditBatchError.__reduce__`. Between
Airflow tasks an error travels as plain JSON (:func:`to_record`) and is
raised again, of its own class, where it decides (:func:`from_record`): a
portfolio night records one model's failure and fails that model's load only.
"""

from __future__ import annotations

__all__ = [
    "ArtifactIntegrityError",
    "CreditBatchError",
    "DataError",
    "DriftError",
    "GateError",
    "ModelError",
    "ModelFileError",
    "ModelGraphError",
    "ModelNotFoundError",
    "NoChampionError",
    "ParameterError",
    "QuarantineBudgetError",
    "ReconciliationError",
    "SchemaMismatchError",
    "SchemaVersionError",
    "ServiceUnavailableError",
    "SnapshotNotFoundError",
    "SpecError",
    "UnsupportedDatabaseError",
    "UpstreamScoresError",
    "from_record",
    "to_record",
]


class CreditBatchError(Exception):
    """Base class of every error credit-batch raises on purpose."""

    #: What to do about it (the troubleshooting page is generated from these).
    remedy = "Read the one-line message: it names the input, the rule and the value."

    #: Whether a retry of the same call may succeed.
    retryable = False

    def __init__(self, message: str, **context: object) -> None:
        super().__init__(message)
        self.message = message
        self.__dict__.update(context)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple:
        return (_restore, (type(self), self.message, dict(self.__dict__)))


def _restore(cls: type[CreditBatchError], message: str, state: dict) -> CreditBatchError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class ServiceUnavailableError(CreditBatchError):
    """A database cannot be reached, or its file is locked by another process."""

    remedy = (
        "Nothing to change: Airflow retries the task. If it persists, check the database "
        "server is up, or which process holds the DuckDB file (the message names its "
        "PID)."
    )

    retryable = True


class ParameterError(CreditBatchError, ValueError):
    """A parameter or setting breaks a rule.

    Parameters
    ----------
    name : str
        The parameter, as the user spells it.
    value : object
        The value given.
    rule : str
        What the value must be.
    """

    remedy = (
        "Correct the named option or variable to satisfy the rule; `credit-batch COMMAND "
        "--help` shows each option's default."
    )

    def __init__(self, name: str, value: object, rule: str) -> None:
        super().__init__(f"{name} {rule}; got {value!r}", name=name, value=value, rule=rule)


class UnsupportedDatabaseError(ParameterError):
    """A database URL names a backend other than DuckDB or PostgreSQL."""

    remedy = (
        "Use a `duckdb:///...` or `postgresql://...` URL (install the `postgres` extra "
        "for PostgreSQL)."
    )


class SpecError(ParameterError):
    """A feature spec file breaks a rule: names the file, the field, the rule, the value."""

    remedy = "Fix the named field of the spec file, then `credit-batch spec check FILE`."

    def __init__(self, path: object, field: str, value: object, rule: str) -> None:
        super().__init__(f"spec {path}: {field}", value, rule)
        self.path, self.field = str(path), field


class ModelFileError(ParameterError):
    """A model file breaks a rule: names the file, the field, the rule, the value."""

    remedy = "Fix the named field of the model file (its format: docs/own-data.md)."

    def __init__(self, path: object, field: str, value: object, rule: str) -> None:
        super().__init__(f"model file {path}: {field}", value, rule)
        self.path, self.field = str(path), field


class DataError(CreditBatchError):
    """The data cannot be used as it is."""

    remedy = "Look at the data the message names; nothing was written."


class SnapshotNotFoundError(DataError):
    """The warehouse holds no rows for the snapshot date."""

    remedy = (
        "Pick a date the message lists as existing, or load that snapshot into the warehouse first."
    )


class SchemaMismatchError(DataError):
    """A column is missing or has a type the model cannot take."""

    remedy = (
        "Make the warehouse table match the model's spec (`credit-batch spec check FILE` "
        "lists every column), or train a model on the new spec."
    )


class SchemaVersionError(DataError):
    """The results database's recorded schema version is not the one this release reads."""

    remedy = (
        "An older database: `credit-batch upgrade` migrates it in place (any writer does "
        "too); a newer one: run the credit-batch release that wrote it."
    )


class QuarantineBudgetError(DataError):
    """More rows were quarantined than the run's error budget allows."""

    remedy = (
        "Query `quarantine` for the run's reasons and fix the source; or raise "
        "`max_quarantine_fraction` for one run if the rows are known bad."
    )


class DriftError(DataError):
    """The score's PSI is in the act band and the run was asked to fail on drift."""

    remedy = (
        "Read the run report's drift table; rerun without `fail_on_drift` to load anyway,"
        " or train a new candidate."
    )


class ReconciliationError(DataError):
    """Counts do not add up: rows in != rows scored + rows quarantined."""

    remedy = (
        "A bug or a concurrent writer: rerun the date (the slice is replaced whole) and "
        "report it if it repeats."
    )


class UpstreamScoresError(DataError):
    """A model reads another model's scores, and that model has none of the snapshot."""

    remedy = (
        "Score the upstream model for that snapshot first (`credit-batch run "
        "--snapshot-date D --model-name UPSTREAM` scores it and every model reading it)."
    )


class ModelError(CreditBatchError):
    """The model cannot be used."""

    remedy = "See `credit-batch models` for the registered versions and their roles."


class ModelNotFoundError(ModelError):
    """No model of that version is registered."""

    remedy = (
        "Use a version `credit-batch models` lists, or train one (`credit-batch train` or `demo`)."
    )


class NoChampionError(ModelError):
    """No model version is promoted to champion."""

    remedy = (
        "Promote a version: `credit-batch promote VERSION --reason WHY` (or run `credit-"
        "batch demo` on a fresh home)."
    )


class ArtifactIntegrityError(ModelError):
    """The artifact on disk is not the one that was registered."""

    remedy = (
        "The model file was changed after registration: restore it from backup, or train "
        "and register a new version."
    )


class GateError(ModelError):
    """A lifecycle act the model's gates or role forbid (promoting a failed candidate)."""

    remedy = (
        "Train a better candidate, or promote with `--override-gates` and a reason "
        "(recorded in `model_events`)."
    )


class ModelGraphError(ModelError):
    """Registering the version would make models read each other in a cycle, or chain
    more models than a night has waves for."""

    remedy = (
        "Change the spec's `upstream_model` features so that no model reads itself "
        "through others (`credit-batch lineage NAME` shows who reads whom)."
    )


def to_record(exc: CreditBatchError) -> dict:
    """The error as plain JSON: its class name and message (for an XCom)."""
    return {"error": type(exc).__name__, "message": exc.message}


def from_record(record: dict, **context: object) -> CreditBatchError:
    """The error :func:`to_record` wrote, of its own class (any other name: the base)."""
    cls = globals().get(record["error"])
    if not (isinstance(cls, type) and issubclass(cls, CreditBatchError)):
        cls = CreditBatchError
    err = cls.__new__(cls)
    CreditBatchError.__init__(err, record["message"], **context)
    return err
