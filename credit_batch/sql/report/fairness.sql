-- The night's fair-lending rows of a slice: approval rate and adverse impact ratio by
-- group of each fairness attribute, the reference group first.
SELECT attribute, group_value, is_reference, customers, cutoff, approval_rate,
       approval_rate_low, approval_rate_high, air, air_low, air_high,
       roc_auc, roc_auc_low, roc_auc_high, ks, ks_low, ks_high, bad_rate, mean_score
FROM fairness
WHERE kind = 'night' AND snapshot_date = :snapshot_date AND model_version = :model_version
ORDER BY attribute, is_reference DESC, group_value
