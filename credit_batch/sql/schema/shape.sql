-- The shape of the schema the connection works in: how many columns its tables
-- and views have. A process that has applied the schema skips its DDL on a later
-- open while the shape and the recorded version are unchanged (a column dropped,
-- a table restored from a dump: the DDL runs again).
SELECT COUNT(*) AS columns
FROM information_schema.columns
WHERE table_schema = current_schema()
