-- Every stored score of a customer, newest snapshot first, with each model's role now.
SELECT p.snapshot_date, p.model_version,
       CASE WHEN m.status = 'candidate' AND m.gate_status = 'passed' THEN 'challenger'
            ELSE m.status END AS role,
       p.run_id, p.score, p.risk_band, p.points, p.reason_1, p.reason_2, p.reason_3
FROM predictions AS p
JOIN model_registry AS m ON m.model_version = p.model_version
WHERE p.customer_id = :customer_id
ORDER BY p.snapshot_date DESC, p.model_version
