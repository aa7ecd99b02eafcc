-- The newest champion score of one customer (an application's lookup).
SELECT customer_id, snapshot_date, score, risk_band, model_version
FROM latest_predictions
WHERE customer_id = 42;
