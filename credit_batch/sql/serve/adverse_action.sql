-- The adverse-action reasons of one snapshot: each declined customer's principal
-- reasons (at most four, rank 1 first), from the version that decided: the run
-- scored as its model's (or segment's) champion, or the version asked for.
-- Optional filters: the model's name and one customer.
SELECT a.snapshot_date, m.model_name, m.segment, a.model_version, a.customer_id,
       a.score, a.cutoff, a.reason_rank, a.feature, a.reason_text, a.contribution, a.value,
       a.category
FROM adverse_action AS a
JOIN scoring_runs AS s ON s.run_id = a.run_id
JOIN model_registry AS m ON m.model_version = a.model_version
WHERE a.snapshot_date = :snapshot_date
  AND (CASE WHEN CAST(:model_version AS VARCHAR) IS NULL THEN s.role = 'champion'
            ELSE a.model_version = CAST(:model_version AS VARCHAR) END)
  AND (CAST(:model_name AS VARCHAR) IS NULL OR m.model_name = CAST(:model_name AS VARCHAR))
  AND (CAST(:customer_id AS VARCHAR) IS NULL OR CAST(a.customer_id AS VARCHAR) = CAST(:customer_id AS VARCHAR))
ORDER BY m.model_name, a.model_version, a.customer_id, a.reason_rank
