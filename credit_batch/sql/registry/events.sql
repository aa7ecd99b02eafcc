SELECT event_at, model_name, model_version, event, actor, reason, details
FROM model_events
ORDER BY event_at, event_id
