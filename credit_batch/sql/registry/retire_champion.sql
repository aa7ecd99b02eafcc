UPDATE model_registry SET status = 'retired'
WHERE status = 'champion' AND model_name = :model_name
