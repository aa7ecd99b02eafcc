-- Columns of one table and their types (DuckDB and PostgreSQL alike): to check
-- a warehouse table against a spec, and to add the columns a results database
-- created by an older version lacks, without taking a lock when none is missing.
-- Only the schema the connection works in (the results may live in a named one).
SELECT column_name, data_type
FROM information_schema.columns
WHERE table_name = :table_name AND table_schema = current_schema()
ORDER BY ordinal_position
