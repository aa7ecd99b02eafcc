UPDATE scoring_runs SET load_seconds = :load_seconds WHERE run_id = :run_id
