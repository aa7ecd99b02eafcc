-- The newest loaded run of the slice whose rows the slice still holds.
SELECT s.run_id, s.input_fingerprint
FROM scoring_runs AS s
WHERE s.snapshot_date = :snapshot_date AND s.model_version = :model_version
  AND s.status = 'loaded'
  AND EXISTS (SELECT 1 FROM predictions AS p
              WHERE p.snapshot_date = :snapshot_date AND p.model_version = :model_version
                AND p.run_id = s.run_id)
ORDER BY s.finished_at DESC
LIMIT 1
