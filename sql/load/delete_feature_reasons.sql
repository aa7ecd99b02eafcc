DELETE FROM feature_reasons
