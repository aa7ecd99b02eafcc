-- A customer's newest score at or before :as_of from each model's champion (a row per
-- model), with the reasons' texts.
SELECT model_name, snapshot_date, customer_id, model_version, run_id, score, risk_band, points,
       reason_1, reason_1_text, reason_1_value,
       reason_2, reason_2_text, reason_2_value,
       reason_3, reason_3_text, reason_3_value
FROM (
    SELECT m.model_name, p.snapshot_date, p.customer_id, p.model_version, p.run_id, p.score,
           p.risk_band, p.points,
           p.reason_1, r1.reason_text AS reason_1_text, p.reason_1_value,
           p.reason_2, r2.reason_text AS reason_2_text, p.reason_2_value,
           p.reason_3, r3.reason_text AS reason_3_text, p.reason_3_value,
           ROW_NUMBER() OVER (PARTITION BY m.model_name ORDER BY p.snapshot_date DESC) AS rn
    FROM predictions AS p
    JOIN model_registry AS m ON m.model_version = p.model_version AND m.status = 'champion'
    LEFT JOIN feature_reasons AS r1 ON r1.feature = p.reason_1
    LEFT JOIN feature_reasons AS r2 ON r2.feature = p.reason_2
    LEFT JOIN feature_reasons AS r3 ON r3.feature = p.reason_3
    WHERE p.customer_id = :customer_id AND p.snapshot_date <= :as_of
) AS ranked
WHERE rn = 1
ORDER BY model_name
