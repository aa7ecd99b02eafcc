UPDATE scoring_runs
SET importance_status = :importance_status, importance_seconds = :importance_seconds
WHERE run_id = :run_id
