-- Every API key's hash and whether it is revoked: the service keeps them in memory.
SELECT key_sha256, revoked_at FROM api_keys
