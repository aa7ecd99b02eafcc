-- The PostgreSQL schema of the results (CREDIT_BATCH_RESULTS_SCHEMA), made by the first writer.
-- {schema} is replaced by an identifier that passed the allow-list rule (an identifier cannot be bound).
CREATE SCHEMA IF NOT EXISTS {schema};
