-- One customer's scores over time, from every model that scored them.
SELECT snapshot_date, model_version, score, risk_band, run_id
FROM predictions
WHERE customer_id = 42
ORDER BY snapshot_date, model_version;
