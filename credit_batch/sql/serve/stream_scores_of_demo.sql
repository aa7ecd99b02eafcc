-- The streaming demo's scores, oldest event first (its producer's event ids).
SELECT customer_id, score, event_at
FROM stream_predictions
WHERE event_id LIKE 'live-%'
ORDER BY event_at, event_id
