-- The customers scored on the newest scored snapshot (their stored features passed its rules).
SELECT DISTINCT customer_id
FROM predictions
WHERE snapshot_date = (SELECT MAX(snapshot_date) FROM predictions)
