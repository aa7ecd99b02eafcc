-- Columns of model_registry (to add the ones a database created by an older
-- version lacks, without taking a lock when none is missing).
SELECT column_name FROM information_schema.columns WHERE table_name = 'model_registry'
