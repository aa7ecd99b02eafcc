"""Features that are other models' scores: read them, join them to the rows.

A spec feature with ``upstream_model = "pd_cards"`` is not a warehouse column:
it is the score (or points) ``pd_cards``'s champions stored for the same
snapshot and customer. The night's extract joins it to each warehouse batch
before the partitions are written (so the lake, the input fingerprint and the
scores all see it), and training joins it to the labeled rows. A customer the
upstream did not score (quarantined there) gets null, which the feature's own
rules then judge (quarantined unless ``nullable``); an upstream with no scores
of a snapshot at all fails the reading model with :class:`UpstreamScoresError`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator

from credit_batch.config import Settings, safe_url
from credit_batch.errors import UpstreamScoresError
from credit_batch.features import FeatureSpec
from credit_batch.stores import results

__all__ = ["join_batches", "join_frame", "read_scores", "versions_read"]


def read_scores(settings: Settings, spec: FeatureSpec, dates: Iterable[dt.date]) -> dict:
    """``{upstream model: Arrow table}`` of the champions' stored scores of ``dates``
    (``snapshot_date``, ``customer_id``, ``score``, ``points``, ``model_version``).

    Raises
    ------
    UpstreamScoresError
        Naming the upstream model and the snapshots it has no scores of.
    """
    dates = sorted(set(dates))
    if not spec.upstream or not dates:
        return {}
    if not results.exists(settings):
        raise _missing(settings, spec.upstream_models[0], dates, spec)
    found = {}
    with results.open_results(settings, read_only=True) as db:
        sql = results.read_keyed(db, settings, "serve/upstream_scores.sql", spec.key_type)
        for name in spec.upstream_models:
            params = {"model_name": name, "date_from": dates[0], "date_to": dates[-1]}
            found[name] = db.fetch_arrow(sql, params)
    for name, table in found.items():
        have = set(table.column("snapshot_date").to_pylist())
        lacking = [d for d in dates if d not in have]
        if lacking:
            raise _missing(settings, name, lacking, spec)
    return found


def _missing(settings: Settings, name: str, dates: list, spec: FeatureSpec) -> UpstreamScoresError:
    shown = ", ".join(str(d) for d in dates[:5]) + (" ..." if len(dates) > 5 else "")
    return UpstreamScoresError(
        f"spec {spec.name} reads the scores of model {name}, whose champions have none of "
        f"snapshot {shown} in {safe_url(settings.results_url)}; score {name} first "
        f"(`credit-batch run --snapshot-date D --model-name {name}`)",
        model_name=name,
        snapshot_dates=[str(d) for d in dates],
    )


def join_batches(
    batches: Iterable, spec: FeatureSpec, scores: dict, *, with_target: bool = False
) -> Iterator:
    """Each warehouse batch (``spec.in_warehouse``'s columns) with the upstream features
    added, in the spec's schema (and its target); one snapshot's ``scores``
    (:func:`read_scores`)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    schema = spec.arrow_schema(with_target=with_target)
    lookups = {name: _by_key(table) for name, table in scores.items()}
    for batch in batches:
        columns = []
        for name in schema.names:
            if name in batch.schema.names:
                columns.append(batch.column(name))
                continue
            feature = spec.feature(name)
            keys, values = lookups[feature.upstream_model]
            ids = batch.column("customer_id")
            found = pc.index_in(ids, value_set=keys.cast(ids.type))
            columns.append(pc.take(values[feature.upstream_output], found).cast(pa.float64()))
        yield pa.RecordBatch.from_arrays(columns, schema=schema)


def _by_key(table) -> tuple:
    """A snapshot's upstream scores: the keys, and each output's values in their order."""
    columns = {o: table.column(o).combine_chunks() for o in ("score", "points")}
    return table.column("customer_id").combine_chunks(), columns


def join_frame(frame, spec: FeatureSpec, scores: dict):
    """The labeled ``frame`` (pandas) with the upstream features added, matched on
    snapshot and customer; columns in the spec's order, the target last."""
    import pandas as pd

    out = frame
    for feature in spec.upstream:
        table = scores[feature.upstream_model].select(
            ["snapshot_date", "customer_id", feature.upstream_output]
        )
        values = table.to_pandas().rename(columns={feature.upstream_output: feature.name})
        out = out.merge(values, on=["snapshot_date", "customer_id"], how="left", validate="1:1")
    order = ["snapshot_date", "customer_id", *spec.names]
    rest = [c for c in out.columns if c not in order]
    return pd.DataFrame(out[order + rest]).astype({f.name: "float64" for f in spec.upstream})


def versions_read(scores: dict) -> dict[str, list[str]]:
    """``{upstream model: the versions whose scores were read}``: the lineage a version
    trained on them records."""
    return {
        name: sorted(set(table.column("model_version").to_pylist()))
        for name, table in scores.items()
    }
