-- The readable text of each feature (the specs' reason texts).
SELECT feature, reason_text FROM feature_reasons ORDER BY feature
