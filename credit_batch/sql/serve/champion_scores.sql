-- Every champion score with its lineage, by customer and snapshot (the service's index).
SELECT p.customer_id, p.snapshot_date, p.model_version, p.run_id, p.score, p.risk_band,
       p.points, p.reason_1, p.reason_1_value, p.reason_2, p.reason_2_value,
       p.reason_3, p.reason_3_value
FROM predictions AS p
JOIN model_registry AS m ON m.model_version = p.model_version AND m.status = 'champion'
ORDER BY p.customer_id, p.snapshot_date
