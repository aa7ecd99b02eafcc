SELECT name, created_at, revoked_at FROM api_keys WHERE name = :name
