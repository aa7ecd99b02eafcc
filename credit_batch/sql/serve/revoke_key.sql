UPDATE api_keys SET revoked_at = :revoked_at WHERE name = :name AND revoked_at IS NULL
