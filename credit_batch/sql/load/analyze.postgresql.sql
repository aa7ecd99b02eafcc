-- Planner statistics after a bulk load (PostgreSQL only; autovacuum may be off or late).
ANALYZE predictions;
ANALYZE quarantine;
ANALYZE scoring_runs;
ANALYZE shap_summary;
ANALYZE drift;
