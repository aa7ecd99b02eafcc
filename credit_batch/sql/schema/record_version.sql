INSERT INTO schema_migrations (version, description, applied_at)
VALUES (:version, :description, :applied_at)
