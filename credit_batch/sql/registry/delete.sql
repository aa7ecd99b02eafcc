DELETE FROM model_registry WHERE model_version = :model_version
