-- Registries created before feature specs: their models are GMSC models
-- (a NULL spec reads as the default spec).
ALTER TABLE model_registry ADD COLUMN spec VARCHAR;
ALTER TABLE model_registry ADD COLUMN spec_hash VARCHAR
