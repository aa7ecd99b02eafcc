SELECT LEAST(CAST(FLOOR(score * 50) AS INTEGER), 49) AS bin, COUNT(*) AS customers
FROM predictions
WHERE snapshot_date = :snapshot_date AND model_version = :model_version
GROUP BY 1 ORDER BY 1
