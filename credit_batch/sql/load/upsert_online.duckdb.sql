-- Newer or equal snapshots replace a customer's row; an older one (a backfill) leaves it.
-- Two statements in the caller's transaction (no PRIMARY KEY for ON CONFLICT here).
DELETE FROM online_features AS o
USING online_staged AS s
WHERE o.feature_set = s.feature_set AND o.customer_id = s.customer_id
  AND o.snapshot_date <= s.snapshot_date;
INSERT INTO online_features (feature_set, customer_id, snapshot_date, features, written_at)
SELECT s.feature_set, s.customer_id, s.snapshot_date, s.features, s.written_at
FROM online_staged AS s
WHERE NOT EXISTS (
    SELECT 1 FROM online_features AS o
    WHERE o.feature_set = s.feature_set AND o.customer_id = s.customer_id
)
