-- The streaming demo's customers: the first 20 of the newest scored snapshot.
SELECT customer_id, score, snapshot_date
FROM predictions
WHERE snapshot_date = (SELECT MAX(snapshot_date) FROM predictions)
ORDER BY customer_id
LIMIT 20
