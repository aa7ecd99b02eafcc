SELECT name, revoked_at FROM api_keys WHERE key_sha256 = :key_sha256
