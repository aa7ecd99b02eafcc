-- Serialise writers of the same thing (a (snapshot, model) slice, the schema,
-- a model version): held until the transaction ends. Without it, two loads
-- would both delete an empty slice and the second insert would then collide
-- with the first's rows. (DuckDB needs no lock: one process at a time may
-- open the file to write.)
SELECT pg_advisory_xact_lock(hashtextextended(:lock_key, 0))
