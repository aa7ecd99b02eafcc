-- What changes when a load commits or a model is promoted: the service's index key.
SELECT (SELECT max(finished_at) FROM scoring_runs) AS last_load,
       (SELECT max(model_version) FROM model_registry WHERE status = 'champion') AS champion,
       (SELECT max(promoted_at) FROM model_registry) AS last_promotion
