-- Challengers: candidates whose out-of-time gates passed and that are not retired.
SELECT * FROM model_registry
WHERE status = 'candidate' AND gate_status = 'passed'
ORDER BY created_at, model_version
