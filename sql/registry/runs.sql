SELECT run_id, snapshot_date, model_version, status, rows_in, rows_scored, rows_quarantined,
       partitions, extract_seconds, score_seconds, load_seconds, importance_seconds,
       drift_status, finished_at
FROM scoring_runs
ORDER BY finished_at DESC
LIMIT :limit
