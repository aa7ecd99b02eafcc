-- Rows and distinct customers of one (snapshot, model) slice: equal when no
-- customer is stored twice. A GROUP BY rather than COUNT(DISTINCT): DuckDB
-- spills a grouping to disk past its memory limit (a 20M-row slice).
SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) AS n_rows, COUNT(*) AS n_customers
FROM (
    SELECT customer_id, COUNT(*) AS n
    FROM predictions
    WHERE snapshot_date = :snapshot_date AND model_version = :model_version
    GROUP BY customer_id
) AS per_customer
