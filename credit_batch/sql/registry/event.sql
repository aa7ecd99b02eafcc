INSERT INTO model_events (event_id, model_version, event, event_at, actor, reason, details)
VALUES (:event_id, :model_version, :event, :event_at, :actor, :reason, :details)
