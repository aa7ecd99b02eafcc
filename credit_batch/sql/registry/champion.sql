-- The champion of one model (at most one row: promote retires the one before).
SELECT * FROM model_registry WHERE status = 'champion' AND model_name = :model_name
