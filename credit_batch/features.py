"""The feature spec: which columns the model sees, their types and meaning.

The default spec is the course's "Give Me Some Credit" feature set. A team
with another feature table declares its own :class:`FeatureSpec` and its own
query in ``sql/extract/``; extract, training, scoring and importance take
their columns from the spec (and, at scoring time, from the model's
registered feature list), never from code.
"""

from __future__ import annotations

from dataclasses import dataclass

from credit_batch.checks import check_identifier_name
from credit_batch.errors import ParameterError, SchemaMismatchError

__all__ = [
    "DEFAULT_FEATURE_SPEC",
    "Feature",
    "FeatureSpec",
    "GMSC_FEATURES",
    "GMSC_REASONS",
]

_DTYPES = ("float64", "int64")


@dataclass(frozen=True)
class Feature:
    """One model input column.

    Attributes
    ----------
    name : str
        Column name, a lower-case SQL identifier.
    dtype : {"float64", "int64"}
        Arrow/pandas type the column is read as (nullable either way).
    description : str
        What the column means.
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

    A row that breaks a rule is quarantined, not scored (see
    :mod:`credit_batch.steps.validation`); the rules live here and nowhere else.
    """

    name: str
    dtype: str
    description: str
    skewed: bool = False
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    forbidden: tuple[float, ...] = ()
    discrete: bool = False

    def __post_init__(self) -> None:
        check_identifier_name("feature name", self.name)
        if self.dtype not in _DTYPES:
            raise ParameterError(
                f"dtype of feature {self.name}", self.dtype, f"must be one of {_DTYPES}"
            )


@dataclass(frozen=True)
class FeatureSpec:
    """The model's input columns; rows are keyed by snapshot date and customer id."""

    features: tuple[Feature, ...]
    target: str = "delinquency"

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
    def skewed(self) -> list[str]:
        """Names of the heavy-tailed features."""
        return [f.name for f in self.features if f.skewed]

    @property
    def regular(self) -> list[str]:
        """Names of the features that are not skewed."""
        return [f.name for f in self.features if not f.skewed]

    @property
    def dictionary_columns(self) -> list[str]:
        """Columns of an extracted partition worth dictionary-encoding in Parquet."""
        return ["snapshot_date", *(f.name for f in self.features if f.discrete)]

    def arrow_schema(self, *, with_target: bool = False):
        """Arrow schema of an extracted partition: keys, features (and target)."""
        import pyarrow as pa

        fields = [pa.field("snapshot_date", pa.date32()), pa.field("customer_id", pa.int64())]
        fields += [pa.field(f.name, pa.from_numpy_dtype(f.dtype)) for f in self.features]
        if with_target:
            fields.append(pa.field(self.target, pa.int64()))
        return pa.schema(fields)


_LATE_CODES = (96.0, 98.0)
GMSC_FEATURES = FeatureSpec(
    features=(
        Feature(
            "revolving_unsecured_line_utilization",
            "float64",
            "Balance on credit cards and personal lines over their limits",
            skewed=True,
            minimum=0,
        ),
        Feature(
            "age",
            "float64",
            "Age of the borrower in years",
            minimum=18,
            maximum=120,
            discrete=True,
        ),
        Feature(
            "num_30_59_days_late",
            "float64",
            "Times 30-59 days past due, not worse, in the last two years",
            minimum=0,
            forbidden=_LATE_CODES,
            discrete=True,
        ),
        Feature(
            "debt_ratio",
            "float64",
            "Monthly debt payments and living costs over monthly gross income",
            skewed=True,
            minimum=0,
        ),
        Feature(
            "monthly_income",
            "float64",
            "Monthly gross income",
            skewed=True,
            nullable=True,
            minimum=0,
        ),
        Feature(
            "num_open_credit_loans",
            "float64",
            "Open loans and lines of credit",
            minimum=0,
            discrete=True,
        ),
        Feature(
            "num_90_days_late",
            "float64",
            "Times 90 days or more past due",
            minimum=0,
            forbidden=_LATE_CODES,
            discrete=True,
        ),
        Feature(
            "num_real_estate_loans",
            "float64",
            "Mortgage and real-estate loans and lines",
            minimum=0,
            discrete=True,
        ),
        Feature(
            "num_60_89_days_late",
            "float64",
            "Times 60-89 days past due, not worse, in the last two years",
            minimum=0,
            forbidden=_LATE_CODES,
            discrete=True,
        ),
        Feature(
            "num_dependents",
            "float64",
            "Dependents in the family, excluding the borrower",
            nullable=True,
            minimum=0,
            maximum=30,
            discrete=True,
        ),
        Feature(
            "high_debt_ratio",
            "float64",
            "1 where debt_ratio > 1, else 0",
            minimum=0,
            maximum=1,
            discrete=True,
        ),
        Feature(
            "missing_monthly_income",
            "float64",
            "1 where monthly_income is unknown",
            minimum=0,
            maximum=1,
            discrete=True,
        ),
        Feature(
            "missing_num_dependents",
            "float64",
            "1 where num_dependents is unknown",
            minimum=0,
            maximum=1,
            discrete=True,
        ),
    ),
)
#: Readable text of each reason code: why a feature pushes a score towards default.
GMSC_REASONS = {
    "revolving_unsecured_line_utilization": "High use of revolving credit lines",
    "age": "Age of the borrower",
    "num_30_59_days_late": "Payments 30-59 days late in the last two years",
    "debt_ratio": "High debt payments relative to income",
    "monthly_income": "Low monthly income",
    "num_open_credit_loans": "Number of open loans and credit lines",
    "num_90_days_late": "Payments 90 or more days late",
    "num_real_estate_loans": "Number of real-estate loans",
    "num_60_89_days_late": "Payments 60-89 days late in the last two years",
    "num_dependents": "Number of dependents",
    "high_debt_ratio": "Debt payments exceed income",
    "missing_monthly_income": "Monthly income not reported",
    "missing_num_dependents": "Number of dependents not reported",
}
#: The spec used when none is given.
DEFAULT_FEATURE_SPEC = GMSC_FEATURES
