-- Every model's champion.
SELECT * FROM model_registry WHERE status = 'champion' ORDER BY model_name
