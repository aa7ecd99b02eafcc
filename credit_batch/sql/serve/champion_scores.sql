-- Every champion score with its lineage and model, by customer and snapshot (the
-- service's index: one per model).
SELECT p.customer_id, p.snapshot_date, p.model_version, p.run_id, p.score, p.risk_band,
       p.points, p.reason_1, p.reason_1_value, p.reason_2, p.reason_2_value,
       p.reason_3, p.reason_3_value, m.model_name
FROM predictions AS p
JOIN model_registry AS m ON m.model_version = p.model_version AND m.status = 'champion'
ORDER BY p.customer_id, p.snapshot_date
