SELECT feature, grid_index, grid_value, grid_label, average, ice_p10, ice_p50, ice_p90
FROM partial_dependence
WHERE snapshot_date = :snapshot_date AND model_version = :model_version
ORDER BY feature, grid_index
