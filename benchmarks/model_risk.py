"""Model-risk evidence against the work it explains: adverse-action reasons and the night's
fair-lending figures against the scoring step, an outside model's reasons against its own
prediction.

- **adverse-action reasons**: the scoring step over every partition of the main
  snapshot, with the adverse-action rows of each decline (``cutoff`` set) and
  without; the figure is the extra time over the step without (bar: 10 %).
- **nightly fairness**: reading the fairness attribute from the warehouse, joining
  it to the slice's scores and computing approval rates and adverse impact ratios
  with their bootstrap intervals (``fairness.slice_rows``), against the same
  scoring step (bar: 10 %).
- **outside model reasons**: a LightGBM model trained outside the platform (100
  trees of 31 leaves), read from its text file: TreeSHAP contributions (what its
  reason codes need) against its own ``predict``; reported.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.output import Figure

__all__ = ["model_risk"]


def model_risk(bench, *, reason_rows: int) -> list[Figure]:
    from credit_batch import pipeline
    from credit_batch.run import RunOptions
    from credit_batch.steps import fairness

    plan = pipeline.extract(bench.settings, RunOptions(snapshot_date=bench.date))
    _, model = bench.model()
    with tempfile.TemporaryDirectory(prefix="model-risk-") as tmp:
        plain, full, fair = [], [], []
        for _ in range(max(bench.repeats, 5)):  # interleaved: the machine's noise shared
            plain.append(_score(plan, model, Path(tmp), cutoff=None)[0])
            seconds, paths = _score(plan, model, Path(tmp), cutoff=True)
            full.append(seconds)
            t0 = time.perf_counter()
            rows = fairness.slice_rows(bench.settings, plan.run, [str(p) for p in paths])
            fair.append(time.perf_counter() - t0)
        plain, full, fair = min(plain), min(full), min(fair)
    n = plan.run.rows_in
    outside = _outside_reasons(plan, rows=reason_rows)
    return [
        Figure("adverse-action reasons in the scoring step",
               f"scoring {n:,} rows with each decline's four reasons written vs without",
               f"{full:.2f} s with", f"{plain:.2f} s without", (full - plain) / plain, 0.10, "<=",
               detail={"with": full, "without": plain, "rows": n}),
        Figure("nightly fairness figures vs the scoring step",
               f"attribute read, joined to {n:,} scores, approval and AIR by group with "
               f"{fairness.DEFAULT_BOOTSTRAP} bootstrap resamples", f"{fair:.2f} s",
               f"{plain:.2f} s scoring", fair / plain, 0.10, "<=",
               detail={"seconds": fair, "groups": len(rows or [])}),
        outside,
    ]  # fmt: skip


def _score(plan, model, folder: Path, *, cutoff) -> tuple[float, list[Path]]:
    """Score every partition of ``plan`` as the scoring task does; seconds and files."""
    from credit_batch.steps import scoring

    run, outs, t0 = plan.run, [], time.perf_counter()
    for p in plan.partitions:
        out = folder / f"{'with' if cutoff else 'without'}-{p['index']}.parquet"
        scoring.score_file(
            p["path"], out, model, feature_names=list(run.features),
            model_version=run.model_version, run_id=run.run_id, chunk_rows=run.chunk_rows,
            spec=run.spec, duplicate_ids=frozenset(run.duplicate_ids),
            background=list(run.explainer_background or []) or None,
            bands=run.policy.risk_bands, scorecard=run.policy.scorecard,
            cutoff=run.policy.swap_cutoff if cutoff else None,
        )  # fmt: skip
        outs.append(out)
    return time.perf_counter() - t0, outs


def _outside_reasons(plan, *, rows: int) -> Figure:
    import lightgbm
    import pandas as pd

    from credit_batch.steps.encoding import model_frame
    from credit_batch.steps.validation import split_valid
    from credit_batch.stores import trees

    spec = plan.run.spec
    frame = pd.concat([pd.read_parquet(p["path"]) for p in plan.partitions]).iloc[:rows]
    frame = frame[split_valid(frame)[0]]
    x = model_frame(frame, spec)
    y = (x["num_90_days_late"] > 0).astype(int)  # any label: the cost is the trees'
    fitted = lightgbm.LGBMClassifier(n_estimators=100, num_leaves=31, verbose=-1).fit(x, y)
    model = trees.loads(trees.dumps(fitted))  # as read from a team's text file
    t0 = time.perf_counter()
    model.booster.predict(x.to_numpy(dtype=float))
    predict = time.perf_counter() - t0
    t0 = time.perf_counter()
    model.explain(x)
    explain = time.perf_counter() - t0
    return Figure("reason codes of an outside LightGBM model (TreeSHAP)",
                  f"{len(x):,} rows, 100 trees of 31 leaves, read from its text file",
                  f"{len(x) / explain:,.0f} rows/s explained", f"{len(x) / predict:,.0f} rows/s "
                  "predicted", explain / predict, detail={"rows": len(x)})  # fmt: skip
