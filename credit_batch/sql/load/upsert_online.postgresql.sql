-- Newer or equal snapshots replace a customer's row; an older one (a backfill) leaves it.
INSERT INTO online_features AS o (feature_set, customer_id, snapshot_date, features, written_at)
SELECT feature_set, customer_id, snapshot_date, features, written_at FROM online_staged
ON CONFLICT (feature_set, customer_id) DO UPDATE
SET snapshot_date = EXCLUDED.snapshot_date,
    features = EXCLUDED.features,
    written_at = EXCLUDED.written_at
WHERE o.snapshot_date <= EXCLUDED.snapshot_date
