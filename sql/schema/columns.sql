-- Columns of one table and their types (DuckDB and PostgreSQL alike): to check
-- a warehouse table against a spec, and to add the columns a results database
-- created by an older version lacks, without taking a lock when none is missing.
SELECT column_name, data_type
FROM information_schema.columns
WHERE table_name = :table_name
ORDER BY ordinal_position
