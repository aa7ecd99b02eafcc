"""Write the expected values of a small run, computed the straightforward way.

    python -m tests.golden.make_expected

Builds the test demo (``tests/conftest.build_demo``: 3,000 customers, seed 7,
model seed 1) and, for its newest snapshot, computes what the pipeline must
store, with none of the pipeline's scoring code:

- the whole snapshot read with ``pandas.read_sql`` of the extract query;
- validation of the whole frame with the pandera schema (one call);
- scores by ``predict_proba`` on the whole frame;
- SHAP values by ``shap.LinearExplainer`` on the model's stored background;
- reason codes by sorting each row's contributions in plain Python;
- the mean absolute SHAP value of each feature over the scored rows.

The result, ``expected_run.csv`` (one row per customer: score and reasons, or
the quarantine reason) and ``expected_counts.json``, is committed; the test
``test_expected_run.py`` runs the optimised pipeline and compares.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _frame(settings, date):
    import pandas as pd
    import sqlalchemy as sa

    engine = sa.create_engine(settings.warehouse_url)
    query = sa.text((settings.sql_dir / "specs/gmsc/features.sql").read_text())
    frame = pd.read_sql(query, engine, params={"snapshot_date": date})
    engine.dispose()
    return frame


def _invalid(frame):
    import pandera.pandas as pa

    from credit_batch.steps.validation import build_schema

    try:
        build_schema().validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        return {
            int(i): "; ".join(
                sorted(f"{c}: {k}" for c, k in zip(g["column"], g["check"], strict=True))
            )
            for i, g in cases.groupby("index")
        }
    return {}


def _reasons(row, names):
    ranked = sorted(
        ((value, name) for value, name in zip(row, names, strict=True) if value > 0), reverse=True
    )[:3]
    ranked += [(None, None)] * (3 - len(ranked))
    return [x for value, name in ranked for x in (name, value)]


def expected(settings, date, record) -> tuple[list[dict], dict]:
    """Expected rows and counts for ``date`` scored by ``record``'s model."""
    import numpy as np
    import shap

    from credit_batch.stores import registry

    frame = _frame(settings, date)
    frame["num_dependents"] = frame["num_dependents"].astype("float64")
    frame["monthly_income"] = frame["monthly_income"].astype("float64")
    bad = _invalid(frame)
    model = registry.load_model(
        settings, record.artifact_path, record.sha256, version=record.model_version
    )
    names = list(record.features)
    valid = frame.drop(index=list(bad))
    scores = model.predict_proba(valid[names])[:, 1]
    columns, clf = model.named_steps["columns"], model.named_steps["classifier"]
    masker = shap.maskers.Independent(np.asarray([record.background]))
    phi_columns = shap.LinearExplainer(clf, masker)(columns.transform(valid[names])).values
    owners = [names.index(c) for c in columns.get_feature_names_out()]
    phi = np.zeros((len(valid), len(names)))
    for j, owner in enumerate(owners):
        phi[:, owner] += phi_columns[:, j]
    rows = [
        {"customer_id": int(cid), "score": float(s), "quarantine_reason": None}
        | dict(zip(_REASON_KEYS, _reasons(p, names), strict=True))
        for cid, s, p in zip(valid["customer_id"], scores, phi, strict=True)
    ]
    rows += [
        {"customer_id": int(frame["customer_id"][i]), "quarantine_reason": reason}
        for i, reason in bad.items()
    ]
    counts = {
        "rows_in": len(frame),
        "rows_scored": len(valid),
        "rows_quarantined": len(bad),
        "mean_abs_shap": dict(zip(names, np.abs(phi).mean(axis=0).tolist(), strict=True)),
    }
    return sorted(rows, key=lambda r: r["customer_id"]), counts


_REASON_KEYS = [k for i in (1, 2, 3) for k in (f"reason_{i}", f"reason_{i}_value")]


def main() -> None:
    import pandas as pd

    from credit_batch.config import Settings
    from tests.conftest import build_demo

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp))
        written, record = build_demo(settings)
        date = written[-1]["snapshot_date"]
        rows, counts = expected(settings, date, record)
    frame = pd.DataFrame(rows, columns=["customer_id", "score", *_REASON_KEYS, "quarantine_reason"])
    frame.to_csv(HERE / "expected_run.csv", index=False, float_format="%.17g")
    (HERE / "expected_counts.json").write_text(
        json.dumps({"snapshot_date": str(date), **counts}, indent=2) + "\n"
    )
    print(f"{date}: {counts}")


if __name__ == "__main__":
    main()
