-- The champions of one model: one row, or one per segment of a segmented model (at most
-- one per (model_name, segment): promote retires the one before); the pooled one first.
SELECT * FROM model_registry WHERE status = 'champion' AND model_name = :model_name
ORDER BY segment NULLS FIRST
