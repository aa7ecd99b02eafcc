-- The online store: each customer's newest batch features per feature set, and the
-- snapshot they came from (credit_batch.stores.online_store). One row per (feature
-- set, customer); a backfill of an older snapshot never replaces a newer row.
-- A regular table, not UNLOGGED: a crash would empty an UNLOGGED one until the next night.
CREATE TABLE IF NOT EXISTS online_features (
    feature_set    VARCHAR NOT NULL,  -- <spec name>-<digest[:12]>, as the lake's folders
    customer_id    {key_type} NOT NULL,
    snapshot_date  DATE NOT NULL,
    features       VARCHAR NOT NULL,  -- JSON array: the features in the spec's order, as in the lake
    written_at     TIMESTAMP NOT NULL,
    PRIMARY KEY (feature_set, customer_id)
);
