-- The stored scores of one model's champions (a segmented model's: one per segment,
-- each over its own rows) for the snapshots in a range: what a model reading it takes
-- as a feature (credit_batch.steps.upstream), with the version each score came from.
SELECT p.snapshot_date, p.customer_id, p.score, p.points, p.model_version
FROM predictions AS p
JOIN model_registry AS m ON m.model_version = p.model_version
WHERE m.model_name = :model_name AND m.status = 'champion'
  AND p.snapshot_date BETWEEN :date_from AND :date_to
