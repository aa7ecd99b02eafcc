"""A realistic stand-in for "Give Me Some Credit", generated deterministically.

The real ``cs-training.csv`` cannot be downloaded here, so :func:`generate`
draws a population with its known traits: about 6.7 % positives, monthly
income missing for about 20 % of rows and dependents for about 2.6 %,
utilization and debt ratio with extreme right tails (debt ratio is huge
where income is missing), the sentinel codes 96 and 98 in the three
late-payment counts, and the impossible age 0. Customers persist across
monthly snapshots with drifting values; a few leave and join each month.
The label depends on the features through a latent risk, so a fitted
logistic pipeline reaches a ROC AUC near the real data's (about 0.85).
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np

from credit_batch import demo_lender, demo_portfolio
from credit_batch.checks import month_ends
from credit_batch.config import DEFAULT_DEMO_ROWS, DEFAULT_DEMO_SNAPSHOTS, EXAMPLES, Settings
from credit_batch.errors import ParameterError
from credit_batch.stores import warehouse

__all__ = [
    "DEFAULT_LAST_SNAPSHOT",
    "DEFAULT_ROWS",
    "DEFAULT_SNAPSHOTS",
    "DEFAULT_UNLABELED_SNAPSHOTS",
    "generate",
    "write_example",
    "write_warehouse",
]

logger = logging.getLogger(__name__)

DEFAULT_ROWS = DEFAULT_DEMO_ROWS
DEFAULT_SNAPSHOTS = DEFAULT_DEMO_SNAPSHOTS
DEFAULT_LAST_SNAPSHOT = dt.date(2026, 10, 31)
DEFAULT_UNLABELED_SNAPSHOTS = 1
_CHURN = 0.03


def generate(
    *,
    rows: int = DEFAULT_ROWS,
    snapshots: int = DEFAULT_SNAPSHOTS,
    last_snapshot: dt.date = DEFAULT_LAST_SNAPSHOT,
    unlabeled_snapshots: int = DEFAULT_UNLABELED_SNAPSHOTS,
    seed: int = 0,
    drift: bool = False,
):
    """Yield ``(snapshot_date, features, outcomes)`` Arrow tables, oldest first.

    Parameters
    ----------
    rows : int
        Customers per snapshot.
    snapshots : int
        Number of monthly snapshots.
    last_snapshot : datetime.date
        Any day of the newest snapshot's month.
    unlabeled_snapshots : int
        The newest snapshots whose outcomes are not known yet (``outcomes`` is
        ``None`` for them).
    seed : int
        Seed of the generator; equal seeds give equal data.
    drift : bool
        Plant a population shift in the newest snapshot: credit-line
        utilization rises sharply (for drift monitoring demos and tests).
    """
    if rows < 10 or snapshots < 1 or not 0 <= unlabeled_snapshots <= snapshots:
        raise ParameterError(
            "demo size",
            (rows, snapshots, unlabeled_snapshots),
            "needs rows >= 10, snapshots >= 1, 0 <= unlabeled <= snapshots",
        )
    rng = np.random.default_rng(seed)
    people = _population(rng, rows, first_id=1)
    next_id = rows + 1
    dates = month_ends(last_snapshot, snapshots)
    for i, date in enumerate(dates):
        if i:
            people, next_id = _churn(rng, people, next_id)
            _drift(rng, people)
        features, label = _observe(rng, people, date)
        if drift and i == len(dates) - 1:
            features = _shift_utilization(features)
        labeled = i < snapshots - unlabeled_snapshots
        yield date, features, (_outcomes(date, people["customer_id"], label) if labeled else None)


def _population(rng: np.random.Generator, n: int, *, first_id: int) -> dict[str, np.ndarray]:
    risk = rng.standard_normal(n)
    return {
        "customer_id": np.arange(first_id, first_id + n, dtype=np.int64),
        "risk": risk,
        "age": np.clip(rng.normal(52, 14.5, n) - 4 * risk, 21, 103),
        "income": np.exp(rng.normal(8.6, 0.75, n) - 0.15 * risk),
        "income_known": rng.random(n) > 0.198,
        "dependents": rng.poisson(0.76, n).astype(float),
        "dependents_known": rng.random(n) > 0.026,
        "open_lines": rng.poisson(8.4, n).astype(float),
        "real_estate": rng.poisson(1.0, n).astype(float),
        "util_base": rng.beta(0.55, 1.1, n),
        "debt_base": rng.gamma(1.6, 0.22, n),
    } | {"group": _demo_group(np.arange(first_id, first_id + n, dtype=np.int64), risk)}


def _demo_group(customer_id: np.ndarray, risk: np.ndarray) -> np.ndarray:
    """A synthetic protected-class proxy, for fair-lending tests only: fixed per customer,
    ``group_b`` for about 30 % (more often among riskier people), else ``group_a``.

    Drawn from a hash of the id, not from the generator, so every other column is the
    same as before it existed.
    """
    u = (customer_id.astype(np.uint64) * np.uint64(2654435761) % np.uint64(2**32)) / 2**32
    return np.where(u < 0.3 + 0.05 * np.tanh(risk), "group_b", "group_a")


def _churn(rng, people, next_id):
    n = people["customer_id"].size
    stay = rng.random(n) > _CHURN
    joiners = _population(rng, n - int(stay.sum()), first_id=next_id)
    merged = {k: np.concatenate([v[stay], joiners[k]]) for k, v in people.items()}
    return merged, next_id + joiners["customer_id"].size


def _drift(rng, people) -> None:
    n = people["customer_id"].size
    people["risk"] = 0.97 * people["risk"] + np.sqrt(1 - 0.97**2) * rng.standard_normal(n)
    people["age"] = people["age"] + 1 / 12
    people["income"] = people["income"] * np.exp(rng.normal(0.002, 0.03, n))
    people["util_base"] = np.clip(people["util_base"] + rng.normal(0.0, 0.03, n), 0, 1)
    people["debt_base"] = np.abs(people["debt_base"] + rng.normal(0.0, 0.02, n))


def _observe(rng, people, date):
    import pyarrow as pa

    n, risk = people["customer_id"].size, people["risk"]
    util = np.clip(people["util_base"] * np.exp(0.35 * risk) + rng.normal(0, 0.05, n), 0, 1.4)
    tail = rng.random(n) < 0.002
    util[tail] = np.exp(rng.uniform(1, 10.5, tail.sum()))
    late = [
        rng.poisson(np.exp(b + s * risk)).astype(float)
        for b, s in ((-2.0, 1.1), (-3.2, 1.4), (-3.2, 1.2))
    ]
    sentinel = rng.random(n) < 0.0018
    codes = np.where(rng.random(n) < 0.9, 98.0, 96.0)
    for counts in late:
        counts[sentinel] = codes[sentinel]
    income = np.where(people["income_known"], np.round(people["income"]), np.nan)
    debt = people["debt_base"] * np.exp(0.25 * risk)
    no_income = ~people["income_known"]
    debt[no_income] = np.exp(rng.normal(6.5, 1.4, no_income.sum()))
    age = np.floor(people["age"])
    age[rng.integers(n)] = 0.0  # the impossible age of the real file
    capped = [np.where(c >= 96, 2.0, np.minimum(c, 4.0)) for c in late]  # 96/98: unknown
    logit = (
        -5.1
        + 3.4 * np.minimum(util, 1.2)
        + 0.6 * capped[0]
        + 1.0 * capped[1]
        + 0.8 * capped[2]
        - 0.03 * (age - 50)
        + 0.08 * people["dependents"]
        - 0.1 * (np.log(people["income"]) - 8.6)
    )
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int16)
    table = pa.table(
        {
            "snapshot_date": pa.array(np.full(n, date), pa.date32()),
            "customer_id": people["customer_id"],
            "revolving_unsecured_line_utilization": util,
            "age": age,
            "num_30_59_days_late": late[0],
            "debt_ratio": debt,
            "monthly_income": pa.array(income, from_pandas=True),
            "num_open_credit_loans": people["open_lines"],
            "num_90_days_late": late[1],
            "num_real_estate_loans": people["real_estate"],
            "num_60_89_days_late": late[2],
            "num_dependents": pa.array(
                np.where(people["dependents_known"], people["dependents"], np.nan), from_pandas=True
            ),
            "demo_group": pa.array(people["group"], pa.string()),
        }
    )
    return table, label


def _outcomes(date, customer_id, label):
    import pyarrow as pa

    return pa.table(
        {
            "snapshot_date": pa.array(np.full(customer_id.size, date), pa.date32()),
            "customer_id": customer_id,
            "delinquency": label,
        }
    )


def _shift_utilization(table):
    import pyarrow as pa

    name = "revolving_unsecured_line_utilization"
    shifted = table.column(name).to_numpy() * 1.8 + 0.15
    return table.set_column(table.schema.get_field_index(name), name, pa.array(shifted))


def write_warehouse(
    settings: Settings,
    *,
    rows: int = DEFAULT_ROWS,
    snapshots: int = DEFAULT_SNAPSHOTS,
    seed: int = 0,
    unlabeled_snapshots: int = DEFAULT_UNLABELED_SNAPSHOTS,
    plant_drift: bool = False,
) -> list[dict]:
    """Write the generated stand-in warehouse; return rows per snapshot.

    ``plant_drift`` shifts the newest snapshot (see :func:`generate`).
    """
    written = []
    with warehouse.open_warehouse(settings, read_only=False) as wh:
        warehouse.apply_schema(wh, settings)
        for date, features, outcomes in generate(
            rows=rows,
            snapshots=snapshots,
            seed=seed,
            unlabeled_snapshots=unlabeled_snapshots,
            drift=plant_drift,
        ):
            n = warehouse.replace_snapshot(wh, settings, date, features, outcomes)
            written.append({"snapshot_date": date, "rows": n, "labeled": outcomes is not None})
    return written


def write_example(settings: Settings, example: str = "gmsc", **options) -> list[dict]:
    """Write the generated warehouse of ``example``: "gmsc" (:func:`write_warehouse`),
    "lender" (:func:`credit_batch.demo_lender.write_warehouse`), "streaming"
    (:func:`credit_batch.demo_stream.write_warehouse`) or "portfolio"
    (:func:`credit_batch.demo_portfolio.write_warehouse`); ``options`` go to it."""
    if example not in EXAMPLES:
        raise ParameterError("example", example, f"must be one of {', '.join(EXAMPLES)}")
    if example == "gmsc":
        return write_warehouse(settings, **options)
    if options.pop("plant_drift", False):
        raise ParameterError("drift", True, "is planted in the gmsc example only")
    if example == "portfolio":
        return demo_portfolio.write_warehouse(settings, **options)
    if example == "streaming":
        from credit_batch import demo_stream  # it reuses this module's generator

        return demo_stream.write_warehouse(settings, **options)
    return demo_lender.write_warehouse(settings, **options)
