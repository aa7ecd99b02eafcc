-- A model's challengers: candidates whose out-of-time gates passed and that are not retired.
SELECT * FROM model_registry
WHERE status = 'candidate' AND gate_status = 'passed' AND model_name = :model_name
ORDER BY created_at, model_version
