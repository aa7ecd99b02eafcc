-- The rows one materialization writes, before they are merged into online_features.
CREATE TEMPORARY TABLE online_staged (
    feature_set    VARCHAR NOT NULL,
    customer_id    {key_type} NOT NULL,
    snapshot_date  DATE NOT NULL,
    features       VARCHAR NOT NULL,
    written_at     TIMESTAMP NOT NULL
)
