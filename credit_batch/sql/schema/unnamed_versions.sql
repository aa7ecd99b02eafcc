-- Migration 2 (named models): the versions registered before models had names.
SELECT model_version, spec FROM model_registry WHERE model_name IS NULL ORDER BY model_version
