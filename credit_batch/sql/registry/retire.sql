UPDATE model_registry SET status = 'retired' WHERE model_version = :model_version
