UPDATE model_registry SET model_name = :model_name WHERE model_version = :model_version
