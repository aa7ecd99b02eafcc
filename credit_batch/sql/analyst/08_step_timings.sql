-- Where each night goes: seconds per step of every run (score summed over partitions).
SELECT run_id, snapshot_date, model_version, rows_in, partitions,
       ROUND(CAST(extract_seconds AS NUMERIC), 2) AS extract_s,
       ROUND(CAST(score_seconds AS NUMERIC), 2) AS score_s,
       ROUND(CAST(load_seconds AS NUMERIC), 2) AS load_s,
       ROUND(CAST(importance_seconds AS NUMERIC), 2) AS explain_s,
       drift_status, finished_at
FROM scoring_runs
ORDER BY finished_at DESC;
