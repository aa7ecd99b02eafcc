-- Each model's (and segment's) champion at the end of a day (before :day_after, UTC),
-- from the audit trail (the champion_history view).
SELECT model_name, segment, model_version, champion_from, champion_until, promoted_by, reason
FROM champion_history
WHERE champion_from < :day_after
  AND (champion_until IS NULL OR champion_until >= :day_after)
ORDER BY model_name, segment NULLS FIRST
