DELETE FROM feature_reasons WHERE feature = :feature
