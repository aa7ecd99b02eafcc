"""The registry and the catalog at portfolio scale: many models, many versions each.

A results database (DuckDB) is given ``models`` x ``versions`` registered
versions (the newest of each model its champion) and one snapshot of scores
of ``customers`` customers by every champion; the baseline is the same
database with one model and one version. Timed, best of ``repeats``: the
``models`` listing, resolving one model's champion (what a night's plan
does), and a customer's lookup (every model's champion score).
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from benchmarks.output import Figure
from credit_batch import catalog
from credit_batch.config import Settings
from credit_batch.stores import registry, results

__all__ = ["registry_scale"]

DATE = dt.date(2026, 9, 30)


def registry_scale(
    home: Path, *, models: int, versions: int, customers: int, repeats: int = 3
) -> list[Figure]:
    big = _timings(_registry(home / "big", models, versions, customers), models, repeats)
    small = _timings(_registry(home / "small", 1, 1, customers), 1, repeats)
    label = f"{models} models x {versions} versions"
    return [
        Figure(
            name=f"registry: {what} at {label}",
            how=f"best of {repeats}, DuckDB results; baseline: 1 model x 1 version",
            measured=f"{big[what] * 1000:.1f} ms",
            baseline=f"{small[what] * 1000:.1f} ms",
            ratio=big[what] / small[what],
            bar=1.0,
            direction="<=",
            checked=big[what],  # the bar: no night grows by more than a second
        )
        for what in big
    ]


def _registry(home: Path, models: int, versions: int, customers: int) -> Settings:
    import pyarrow as pa

    settings = Settings(home=home)
    rows, champions = [], []
    base = dt.datetime(2026, 1, 1)
    for m in range(models):
        for v in range(versions):
            record = registry.ModelRecord(
                model_version=f"logreg-m{m:04d}-v{v:03d}",
                model_name=f"pd_{m:04d}",
                created_at=base + dt.timedelta(minutes=v),
                algorithm="logreg",
                features=("age",),
                training_rows=1000,
                train_from=None,
                train_until=DATE,
                roc_auc=0.8,
                log_loss=0.3,
                ks=0.5,
                artifact_path=f"models/m{m}/v{v}/model.skops",
                sha256="0" * 64,
                status="champion" if v == versions - 1 else "retired",
            )
            rows.append(record.row())
        champions.append(rows[-1]["model_version"])
    scores = {
        "snapshot_date": [DATE] * (customers * models),
        "customer_id": [c for _ in champions for c in range(customers)],
        "model_version": [v for v in champions for _ in range(customers)],
        "run_id": ["bench"] * (customers * models),
        "score": [0.05] * (customers * models),
        "risk_band": ["B"] * (customers * models),
    }
    with results.open_results(settings) as db, db.transaction():
        db.bulk_insert("model_registry", pa.Table.from_pylist(rows))
        db.bulk_insert("predictions", pa.table(scores))
    return settings


def _timings(settings: Settings, models: int, repeats: int) -> dict[str, float]:
    name = f"pd_{models - 1:04d}"
    calls = {
        "models listing": lambda: catalog.models(settings),
        "one model's champion": lambda: registry.resolve(settings, None, model_name=name),
        "a lookup, every model": lambda: catalog.lookups(settings, 7),
    }
    return {what: _best(repeats, call) for what, call in calls.items()}


def _best(repeats: int, call) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best
