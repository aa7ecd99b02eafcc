-- Every model's specs (its versions not retired): which models it reads
-- (credit_batch.graph; a spec feature's upstream_model).
SELECT DISTINCT model_name, spec FROM model_registry
WHERE status <> 'retired' AND spec IS NOT NULL
ORDER BY model_name
