-- Every scoring run: what it scored, with what, how many rows, how long each step took.
SELECT run_id, snapshot_date, model_version, airflow_run_id, status,
       rows_in, rows_scored, rows_quarantined, partitions,
       ROUND(CAST(extract_seconds AS NUMERIC), 2) AS extract_s,
       ROUND(CAST(score_seconds AS NUMERIC), 2) AS score_s,
       ROUND(CAST(load_seconds AS NUMERIC), 2) AS load_s,
       importance_status, finished_at
FROM scoring_runs
ORDER BY finished_at DESC;
