-- Columns of one warehouse table and their types (DuckDB and PostgreSQL alike).
SELECT column_name, data_type
FROM information_schema.columns
WHERE table_name = :table_name
ORDER BY ordinal_position
