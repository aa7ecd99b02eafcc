-- Every champion tenure of every model (and segment), oldest first: the inventory
-- page's timeline (the view champion_history, in views/analyst_views.sql).
SELECT model_name, segment, model_version, champion_from, champion_until, promoted_by, reason
FROM champion_history
ORDER BY model_name, segment NULLS FIRST, champion_from
