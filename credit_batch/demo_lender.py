"""The second example: a generated loan book with categorical features.

A lender's table looks nothing like "Give Me Some Credit": its own string
key (``account_no``, "LN0100001"), snapshot column (``month_end``), numbers of several types,
five categorical features and its own outcome table. :func:`write_warehouse`
writes it (tables from ``sql/specs/lender/warehouse.sql``); the spec
``sql/specs/lender/spec.toml`` and its queries read it. Nothing in the
package knows these columns: the spec does.

The outcome depends on numbers and categories alike (unemployment, renting,
debt consolidation, broker accounts and two regions carry risk), so a fitted
model gives categorical reason codes. A few rows break the spec's rules (age
under 18, the bureau's 99 code); the newest snapshot brings a region the spec
does not declare, scored as "other" and counted.
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np

from credit_batch.checks import month_ends
from credit_batch.config import (
    DEFAULT_DEMO_ROWS,
    DEFAULT_DEMO_SNAPSHOTS,
    LENDER_SPEC_PATH,
    Settings,
)
from credit_batch.errors import ParameterError
from credit_batch.features import load_spec
from credit_batch.stores import warehouse
from credit_batch.stores.db import read_sql

__all__ = ["RISK", "generate", "outcomes_table", "write_book", "write_warehouse"]

logger = logging.getLogger(__name__)

#: Log-odds each category adds to the latent risk (0 where not listed).
RISK = {
    "employment": {"unemployed": 1.1, "self_employed": 0.3, "student": 0.4, "retired": -0.2},
    "housing": {"rent": 0.45, "family": 0.2, "own": -0.35},
    "loan_purpose": {"debt_consolidation": 0.6, "business": 0.4, "medical": 0.3, "car": -0.2},
    "region": {"london": -0.2, "north_east": 0.35, "wales": 0.25},
    "channel": {"broker": 0.5, "online": 0.1, "branch": -0.2},
}
_WEIGHTS = {
    "employment": [0.62, 0.12, 0.06, 0.12, 0.05, 0.03],
    "housing": [0.28, 0.33, 0.27, 0.09, 0.03],
    "loan_purpose": [0.2, 0.12, 0.3, 0.06, 0.05, 0.08, 0.04, 0.1, 0.05],
    "region": [0.04, 0.11, 0.08, 0.16, 0.09, 0.15, 0.14, 0.08, 0.05, 0.1],
    "channel": [0.3, 0.38, 0.14, 0.1, 0.08],
}
_LAST_SNAPSHOT = dt.date(2026, 10, 31)  # as the GMSC demo's
_NEW_REGION = "northern_ireland"  # not in the spec: appears in the newest snapshot


def generate(*, rows: int, snapshots: int, seed: int = 0, unlabeled_snapshots: int = 1):
    """Yield ``(month_end, loan_book, loan_outcomes)`` Arrow tables, oldest first.

    ``loan_outcomes`` is None for the ``unlabeled_snapshots`` newest months.
    """
    if rows < 10 or snapshots < 1 or not 0 <= unlabeled_snapshots <= snapshots:
        raise ParameterError("demo size", (rows, snapshots), "needs rows >= 10 and snapshots >= 1")
    spec = load_spec(LENDER_SPEC_PATH)
    rng = np.random.default_rng(seed)
    base = _accounts(rng, rows, spec)
    dates = month_ends(_LAST_SNAPSHOT, snapshots)
    for i, date in enumerate(dates):
        newest = i == len(dates) - 1
        book, label = _observe(rng, base, date, months=i, new_region=newest and snapshots > 1)
        labeled = i < snapshots - unlabeled_snapshots
        yield date, book, (outcomes_table(date, base["account_no"], label) if labeled else None)


def _accounts(rng, n: int, spec) -> dict:
    out = {
        "account_no": np.array([f"LN{i:07d}" for i in range(100_001, 100_001 + n)], object),
        "risk": rng.standard_normal(n),
        "age": np.clip(rng.normal(44, 13, n), 18, 90),
        "income": np.exp(rng.normal(7.9, 0.6, n)),
        "credit_limit": np.round(np.exp(rng.normal(8.3, 0.7, n)), -2),
        "months_on_book": rng.integers(1, 240, n),
        "has_mortgage": rng.random(n) < 0.35,
    }
    for name, weights in _WEIGHTS.items():
        levels = spec.feature(name).categories
        out[name] = rng.choice(np.array(levels, dtype=object), n, p=weights)
    return out


def _observe(rng, base: dict, date: dt.date, *, months: int, new_region: bool):
    import pyarrow as pa

    n = base["account_no"].size
    risk = base["risk"] + sum(
        np.vectorize(lambda v, m=m: m.get(v, 0.0))(base[name]) for name, m in RISK.items()
    )
    utilization = np.clip(rng.beta(1.2, 2.5, n) * np.exp(0.35 * base["risk"]), 0, 1.6)
    missed = rng.poisson(np.exp(-1.6 + 0.9 * base["risk"])).astype(np.int64)
    missed[rng.random(n) < 0.002] = 99  # the bureau's "unknown" code
    inquiries = rng.poisson(np.exp(-0.2 + 0.3 * base["risk"])).astype(np.int64)
    dti = np.clip(rng.gamma(2.0, 0.12, n) * np.exp(0.2 * base["risk"]), 0, 4)
    income = np.where(rng.random(n) < 0.08, np.nan, np.round(base["income"]))
    age = np.floor(base["age"] + months / 12).astype(np.int64)
    age[rng.random(n) < 0.001] = 16  # a few impossible ages: quarantined
    housing = base["housing"].copy()
    housing[rng.random(n) < 0.03] = None  # unknown housing is allowed
    region = base["region"].copy()
    if new_region:
        region[rng.random(n) < 0.02] = _NEW_REGION
    logit = (
        -3.4
        + 0.9 * risk
        + 2.0 * np.minimum(utilization, 1.2)
        + 0.5 * np.minimum(missed, 6)
        + 0.15 * inquiries
        + 0.4 * dti
        - 0.02 * (age - 44)
    )
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int16)
    book = pa.table(
        {
            "month_end": pa.array(np.full(n, date), pa.date32()),
            "account_no": pa.array(base["account_no"], pa.string()),
            "age": pa.array(age, pa.int32()),
            "income": pa.array(income, from_pandas=True),
            "credit_limit": base["credit_limit"],
            "balance": np.round(utilization * base["credit_limit"], 2),
            "debt_to_income": dti,
            "months_on_book": pa.array(base["months_on_book"] + months, pa.int32()),
            "inquiries_6m": pa.array(inquiries, pa.int32()),
            "missed_payments_12m": pa.array(missed, pa.int32()),
            "has_mortgage": base["has_mortgage"],
            "employment": pa.array(base["employment"], pa.string()),
            "housing": pa.array(housing, pa.string()),
            "loan_purpose": pa.array(base["loan_purpose"], pa.string()),
            "region": pa.array(region, pa.string()),
            "channel": pa.array(base["channel"], pa.string()),
        }
    )
    return book, label


def outcomes_table(date: dt.date, account_no: np.ndarray, label: np.ndarray):
    """The outcomes of one month-end: ``month_end``, ``account_no``, ``default_12m``."""
    import pyarrow as pa

    return pa.table(
        {
            "month_end": pa.array(np.full(account_no.size, date), pa.date32()),
            "account_no": pa.array(account_no, pa.string()),
            "default_12m": label,
        }
    )


def write_warehouse(
    settings: Settings,
    *,
    rows: int = DEFAULT_DEMO_ROWS,
    snapshots: int = DEFAULT_DEMO_SNAPSHOTS,
    seed: int = 0,
    unlabeled_snapshots: int = 1,
) -> list[dict]:
    """Write the example loan book (each month-end replaced whole); return rows per month."""
    generated = generate(
        rows=rows, snapshots=snapshots, seed=seed, unlabeled_snapshots=unlabeled_snapshots
    )
    return write_book(settings, "specs/lender", ("loan_book", "loan_outcomes"), generated)


def write_book(settings: Settings, folder: str, tables: tuple[str, str], generated) -> list[dict]:
    """Write a generated example book: the tables of ``folder/warehouse.sql``, then each
    ``(date, book, outcomes)`` of ``generated`` into ``tables`` (book, outcomes), each
    month-end replaced whole (``folder/delete_book.sql``, ``delete_outcomes.sql``) in one
    transaction; return the rows per month."""
    written = []
    with warehouse.open_warehouse(settings, read_only=False) as wh:
        wh.run_script(read_sql(settings.sql_dir, f"{folder}/warehouse.sql"))
        for date, book, outcomes in generated:
            with wh.transaction():
                params = {"snapshot_date": date}
                wh.execute(read_sql(settings.sql_dir, f"{folder}/delete_book.sql"), params)
                wh.execute(read_sql(settings.sql_dir, f"{folder}/delete_outcomes.sql"), params)
                n = wh.bulk_insert(tables[0], book)
                if outcomes is not None:
                    wh.bulk_insert(tables[1], outcomes)
            written.append({"snapshot_date": date, "rows": n, "labeled": outcomes is not None})
    logger.info("wrote the example book %s: %d month-ends", folder, len(written))
    return written
