INSERT INTO model_events
    (event_id, model_version, model_name, event, event_at, actor, reason, details)
VALUES (:event_id, :model_version, :model_name, :event, :event_at, :actor, :reason, :details)
