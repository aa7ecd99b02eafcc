-- Roles of a production results database (PostgreSQL), run once by an administrator:
--
--   psql "postgresql://admin@host/db" -v schema=credit_results -f sql/roles/postgresql.sql
--
-- analyst              reads the results schema (tables and views): SELECT only, nothing else.
-- credit_batch_writer  what the pipeline runs as: creates and writes the results tables.
-- Both are group roles (NOLOGIN): grant them to login roles, e.g.
--   CREATE ROLE jane LOGIN PASSWORD '...' IN ROLE analyst;
-- The pipeline then runs with CREDIT_BATCH_RESULTS_SCHEMA set to the same schema.
\set ON_ERROR_STOP on

-- One transaction; runs of this script on the same database wait for each other (two
-- grants of one schema at once fail with "tuple concurrently updated").
BEGIN;
SELECT pg_advisory_xact_lock(hashtext('credit_batch: sql/roles/postgresql.sql')) \gset

-- Each role is created unless it exists; an administrator running this script at the same
-- moment (two deployments, two tests) may create it first: that is not an error.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'analyst') THEN
        CREATE ROLE analyst NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- made by a concurrent run of this script
END
$$;
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'credit_batch_writer') THEN
        CREATE ROLE credit_batch_writer NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

CREATE SCHEMA IF NOT EXISTS :"schema";

-- The writer owns what it creates in the schema; it reads and writes every table there.
GRANT USAGE, CREATE ON SCHEMA :"schema" TO credit_batch_writer;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA :"schema" TO credit_batch_writer;

-- The analyst reads the schema, now and every table or view made there later by the writer.
GRANT USAGE ON SCHEMA :"schema" TO analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA :"schema" TO analyst;
ALTER DEFAULT PRIVILEGES FOR ROLE credit_batch_writer IN SCHEMA :"schema"
    GRANT SELECT ON TABLES TO analyst;
ALTER DEFAULT PRIVILEGES IN SCHEMA :"schema" GRANT SELECT ON TABLES TO analyst;

-- Nothing else: no CREATE anywhere (PostgreSQL 15 already keeps public closed), no temporary tables.
REVOKE CREATE ON SCHEMA public FROM analyst;
REVOKE ALL ON SCHEMA :"schema" FROM PUBLIC;

COMMIT;
