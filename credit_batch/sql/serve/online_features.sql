-- One customer's newest batch features of one feature set (the online store).
SELECT snapshot_date, features, written_at
FROM online_features
WHERE feature_set = :feature_set AND customer_id = :customer_id
