-- Retire the champion of one model's segment (NULL: an unsegmented model, or the pooled one).
UPDATE model_registry SET status = 'retired'
WHERE status = 'champion' AND model_name = :model_name
  AND COALESCE(segment, '') = COALESCE(CAST(:segment AS VARCHAR), '')
