SELECT * FROM model_registry WHERE status = 'champion'
