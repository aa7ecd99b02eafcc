-- Several customers' newest batch features of one feature set (the online store);
-- the id list becomes one bound parameter per id (k0, k1, ...).
SELECT customer_id, snapshot_date, features, written_at
FROM online_features
WHERE feature_set = :feature_set AND customer_id IN (:customer_ids)
