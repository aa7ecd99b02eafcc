-- Migration 2 (named models): each event takes the name of its version's model.
UPDATE model_events SET model_name = (
    SELECT r.model_name FROM model_registry AS r WHERE r.model_version = model_events.model_version
)
WHERE model_name IS NULL
