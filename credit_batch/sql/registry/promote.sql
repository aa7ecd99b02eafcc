UPDATE model_registry SET status = 'champion', promoted_at = :promoted_at
WHERE model_version = :model_version
