-- The loaded (snapshot, model version) slices, newest first.
SELECT DISTINCT snapshot_date, model_version
FROM scoring_runs
WHERE status = 'loaded'
ORDER BY snapshot_date DESC, model_version
