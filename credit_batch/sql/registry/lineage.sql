-- Lineage: each version reading another model's scores, the upstream versions it was
-- trained on, and its status now (credit-batch lineage).
SELECT l.upstream_model, l.upstream_version, l.model_name, l.model_version, m.status
FROM model_lineage AS l
JOIN model_registry AS m ON m.model_version = l.model_version
ORDER BY l.upstream_model, l.model_name, l.model_version, l.upstream_version
