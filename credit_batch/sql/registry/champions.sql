-- Every model's champion (a segmented model's: one per segment, the pooled one first).
SELECT * FROM model_registry WHERE status = 'champion'
ORDER BY model_name, segment NULLS FIRST
