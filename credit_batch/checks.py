"""Small shared helpers: argument checks, dates, the clock, and the name patterns.

Every public function either returns its (parsed) argument or raises
:class:`~credit_batch.errors.ParameterError` naming the input, the rule and
the value. The patterns here are the only ones in the package.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path

from credit_batch.errors import ParameterError

__all__ = [
    "IDENTIFIER",
    "MODEL_NAME_PATTERN",
    "MODEL_VERSION_PATTERN",
    "RUN_ID_PATTERN",
    "allowed_rows",
    "check_fraction",
    "check_identifier_name",
    "check_model_name",
    "check_model_version",
    "check_rows",
    "check_run_id",
    "parse_date",
    "read_toml",
    "utcnow",
    "month_ends",
]

#: A lower-case SQL identifier (table, column and feature names).
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
#: A model version: safe as a folder name and as a SQL value.
MODEL_VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
#: A model's name (``pd_cards``): safe as a folder name, a SQL value and a URL segment.
MODEL_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"
#: A run id: safe as a folder name and as a SQL value.
RUN_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_VERSION = re.compile(MODEL_VERSION_PATTERN)
_MODEL_NAME = re.compile(MODEL_NAME_PATTERN)
_RUN_ID = re.compile(RUN_ID_PATTERN)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def utcnow() -> dt.datetime:
    """Wall-clock UTC time, naive, for audit columns (never for snapshot dates)."""
    return dt.datetime.fromtimestamp(time.time(), dt.UTC).replace(tzinfo=None)


def parse_date(value: object, *, name: str = "snapshot date") -> dt.date:
    """Return ``value`` as a date; accept a date or an ISO ``YYYY-MM-DD`` string.

    A string in the right form that names no day of the calendar (``2026-09-31``)
    is refused as such, not as a string in the wrong form.
    """
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and _ISO_DATE.match(value.strip()):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError as exc:
            raise ParameterError(
                name, value, f"must be a date in YYYY-MM-DD form that is on the calendar ({exc})"
            ) from None
    raise ParameterError(name, value, "must be a date in YYYY-MM-DD form")


def check_rows(name: str, value: object, *, maximum: int, minimum: int = 1) -> int:
    """Return ``value`` if it is an int in ``[minimum, maximum]``, else raise ParameterError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParameterError(name, value, "must be an integer")
    if not minimum <= value <= maximum:
        raise ParameterError(name, value, f"must be between {minimum:,} and {maximum:,}")
    return value


def check_fraction(name: str, value: object) -> float:
    """Return ``value`` if it is a number in [0, 1], else raise ParameterError."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ParameterError(name, value, "must be a number between 0 and 1")
    return float(value)


def allowed_rows(fraction: float, rows: int) -> int:
    """Rows an error budget of ``fraction`` allows out of ``rows``: ``floor(fraction * rows)``.

    Exact at the boundary: ``0.003 * 3000`` is 9 rows, not 8.999999999999998.
    """
    from fractions import Fraction

    return int(Fraction(str(fraction)) * rows)


def check_model_version(version: object) -> str:
    """Return ``version`` if it is safe as a folder name and a SQL value."""
    if not isinstance(version, str) or not _VERSION.match(version) or ".." in version:
        raise ParameterError("model version", version, "must match " + MODEL_VERSION_PATTERN)
    return version


def check_model_name(name: object) -> str:
    """Return ``name`` if it is a model's name (``pd_cards``): letters, digits, ``_``, ``-``."""
    if not isinstance(name, str) or not _MODEL_NAME.match(name):
        raise ParameterError("model name", name, "must match " + MODEL_NAME_PATTERN)
    return name


def check_run_id(run_id: object) -> str:
    """Return ``run_id`` if it is safe as a folder name and a SQL value."""
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise ParameterError("run id", run_id, "must match " + RUN_ID_PATTERN)
    return run_id


def month_ends(last: dt.date, n: int) -> list[dt.date]:
    """Return ``n`` month-end dates ending at ``last``'s month end, oldest first."""
    dates, year, month = [], last.year, last.month
    for _ in range(n):
        first_of_next = dt.date(year + month // 12, month % 12 + 1, 1)
        dates.append(first_of_next - dt.timedelta(days=1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return dates[::-1]


def check_identifier_name(what: str, name: object) -> str:
    """Return ``name`` if it is a plain lower-case SQL identifier."""
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        raise ParameterError(what, name, "must match " + IDENTIFIER.pattern)
    return name


def read_toml(path: Path, fail) -> dict:
    """The parsed TOML file ``path``; ``fail(path, "file", value, rule)`` builds the error
    raised where it cannot be read or is not TOML (a spec's, a model file's)."""
    import tomllib

    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise fail(path, "file", str(path), f"cannot be read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise fail(path, "file", str(path), f"is not valid TOML ({exc})") from None
