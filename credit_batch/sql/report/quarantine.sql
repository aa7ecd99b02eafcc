SELECT reason, COUNT(*) AS rows_quarantined
FROM quarantine
WHERE snapshot_date = :snapshot_date AND model_version = :model_version
GROUP BY reason ORDER BY 2 DESC, 1
LIMIT 15
