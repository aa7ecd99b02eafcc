UPDATE model_registry
SET validation_date = :validation_date, validation = :validation,
    gate_status = :gate_status, model_card = :model_card
WHERE model_version = :model_version
