SELECT * FROM scoring_runs
WHERE snapshot_date = :snapshot_date AND model_version = :model_version
ORDER BY finished_at DESC
LIMIT 1
