SELECT run_id, snapshot_date, model_version, status, started_at, finished_at,
       airflow_dag_id, airflow_run_id, rows_in, rows_scored, rows_quarantined,
       partitions, extract_seconds, score_seconds, load_seconds, importance_seconds,
       drift_status
FROM scoring_runs
ORDER BY finished_at DESC
LIMIT :limit
