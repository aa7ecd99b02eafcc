UPDATE model_registry SET status = 'retired' WHERE status = 'champion'
