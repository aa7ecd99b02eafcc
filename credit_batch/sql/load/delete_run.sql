DELETE FROM scoring_runs WHERE run_id = :run_id
