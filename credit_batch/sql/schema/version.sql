SELECT MAX(version) AS version FROM schema_migrations
