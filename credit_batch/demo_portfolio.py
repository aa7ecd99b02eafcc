"""The third example: a generated portfolio of three products in four countries.

A lender runs a PD model per product, each segmented by country (a champion
per country). :func:`write_warehouse` writes one book of accounts, each of a
product (cards, loans, mortgages: its account number's prefix) and a country,
and its outcomes (tables and the product views from
``sql/specs/portfolio/warehouse.sql``); each product's spec reads its view
and each model file (``pd_cards.toml``, ...) names the spec, the segments and
the policy. The risk differs by product and country, and the features by
product, so each segment's champion is a model of its own. A few rows break
the rules (an impossible age): quarantined. A collections model
(``collections_cards.toml``) scores the card accounts in arrears from the
cards PD model's score of the same night (``arrears.toml``: ``upstream_model``).
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from credit_batch.checks import month_ends
from credit_batch.config import DEFAULT_DEMO_ROWS, DEFAULT_DEMO_SNAPSHOTS, Settings
from credit_batch.demo_lender import outcomes_table, write_book
from credit_batch.errors import ParameterError

__all__ = ["COUNTRIES", "MODEL_FILES", "PRODUCTS", "READER_FILES", "generate", "write_warehouse"]

#: Product: (account number prefix, share of accounts, log-odds of default added).
PRODUCTS = {"cards": ("CD", 0.45, 0.5), "loans": ("LN", 0.35, 0.0), "mortgages": ("MG", 0.2, -1.2)}
#: Country: (share of accounts, log-odds of default added).
COUNTRIES = {"uk": (0.4, 0.0), "ie": (0.15, 0.35), "fr": (0.25, -0.25), "de": (0.2, -0.5)}
#: The model files of the portfolio, one per product (``sql/specs/portfolio/``).
MODEL_FILES = tuple(f"specs/portfolio/pd_{product}.toml" for product in PRODUCTS)
#: The models reading the PD models' scores: trained once those have scored their window.
READER_FILES = ("specs/portfolio/collections_cards.toml",)
_LAST_SNAPSHOT = dt.date(2026, 10, 31)  # as the other demos'


def generate(
    *,
    rows: int = DEFAULT_DEMO_ROWS,
    snapshots: int = DEFAULT_DEMO_SNAPSHOTS,
    seed: int = 0,
    unlabeled_snapshots: int = 1,
):
    """Yield ``(month_end, portfolio_book, portfolio_outcomes)`` Arrow tables, oldest first.

    ``portfolio_outcomes`` is None for the ``unlabeled_snapshots`` newest months.
    """
    if rows < 100 or snapshots < 1 or not 0 <= unlabeled_snapshots <= snapshots:
        raise ParameterError("demo size", (rows, snapshots), "needs rows >= 100 and snapshots >= 1")
    rng = np.random.default_rng(seed)
    accounts = _accounts(rng, rows)
    for i, date in enumerate(month_ends(_LAST_SNAPSHOT, snapshots)):
        book, label = _observe(rng, accounts, date, months=i)
        labeled = i < snapshots - unlabeled_snapshots
        yield date, book, (outcomes_table(date, accounts["account_no"], label) if labeled else None)


def _accounts(rng: np.random.Generator, n: int) -> dict:
    product = rng.choice(list(PRODUCTS), n, p=[share for _, share, _ in PRODUCTS.values()])
    country = rng.choice(list(COUNTRIES), n, p=[share for share, _ in COUNTRIES.values()])
    prefix = np.vectorize(lambda p: PRODUCTS[p][0])(product)
    shift = np.vectorize(lambda p, c: PRODUCTS[p][2] + COUNTRIES[c][1])(product, country)
    limit = np.exp(rng.normal(8.3, 0.7, n)) * np.where(product == "mortgages", 25, 1)
    number = np.char.zfill(np.arange(1, n + 1).astype(str), 7)
    return {
        "account_no": np.char.add(prefix.astype(str), number).astype(object),
        "product": product,
        "country": country,
        "shift": shift,
        "risk": rng.standard_normal(n),
        "age": np.clip(rng.normal(44, 13, n), 18, 90),
        "income": np.exp(rng.normal(7.9, 0.6, n)),
        "credit_limit": np.round(limit, -2),
        "months_on_book": rng.integers(1, 240, n),
    }


def _observe(rng, accounts: dict, date: dt.date, *, months: int):
    import pyarrow as pa

    n, risk = accounts["risk"].size, accounts["risk"]
    utilization = np.clip(rng.beta(1.2, 2.5, n) * np.exp(0.35 * risk), 0, 1.6)
    missed = rng.poisson(np.exp(-1.6 + 0.9 * risk)).astype(np.int64)
    inquiries = rng.poisson(np.exp(-0.2 + 0.3 * risk)).astype(np.int64)
    dti = np.clip(rng.gamma(2.0, 0.12, n) * np.exp(0.2 * risk), 0, 4)
    age = np.floor(accounts["age"] + months / 12).astype(np.int64)
    age[rng.random(n) < 0.001] = 16  # a few impossible ages: quarantined
    on_book = accounts["months_on_book"] + months
    logit = -3.0 + accounts["shift"] + 0.9 * risk + 1.5 * np.minimum(utilization, 1.2)
    logit += 0.45 * np.minimum(missed, 6) + 0.12 * inquiries + 0.6 * dti
    logit += -0.02 * (age - 44) - 0.004 * np.minimum(on_book, 120)
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int16)
    income = np.where(rng.random(n) < 0.05, np.nan, np.round(accounts["income"]))
    book = pa.table(
        {
            "month_end": pa.array(np.full(n, date), pa.date32()),
            "account_no": pa.array(accounts["account_no"], pa.string()),
            "product": pa.array(accounts["product"], pa.string()),
            "country": pa.array(accounts["country"], pa.string()),
            "age": pa.array(age, pa.int32()),
            "income": pa.array(income, from_pandas=True),
            "credit_limit": accounts["credit_limit"],
            "balance": np.round(utilization * accounts["credit_limit"], 2),
            "debt_to_income": dti,
            "months_on_book": pa.array(on_book, pa.int32()),
            "inquiries_6m": pa.array(inquiries, pa.int32()),
            "missed_payments_12m": pa.array(missed, pa.int32()),
        }
    )
    return book, label


def write_warehouse(settings: Settings, **options) -> list[dict]:
    """Write the example portfolio (each month-end replaced whole); return rows per month.
    ``options``: those of :func:`generate`."""
    tables = ("portfolio_book", "portfolio_outcomes")
    return write_book(settings, "specs/portfolio", tables, generate(**options))
