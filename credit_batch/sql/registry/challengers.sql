-- The challengers of one model's segment: candidates whose out-of-time gates passed and
-- that are not retired (segment NULL: an unsegmented model, or the pooled one).
SELECT * FROM model_registry
WHERE status = 'candidate' AND gate_status = 'passed' AND model_name = :model_name
  AND COALESCE(segment, '') = COALESCE(CAST(:segment AS VARCHAR), '')
ORDER BY created_at, model_version
