SELECT feature, reason_text FROM feature_reasons
