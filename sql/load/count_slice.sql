SELECT COUNT(*) AS n_rows, COUNT(DISTINCT customer_id) AS n_customers
FROM predictions
WHERE snapshot_date = :snapshot_date AND model_version = :model_version
