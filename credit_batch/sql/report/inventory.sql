-- The model inventory: every registered version with what the inventory says of its
-- model (the model file's owner, purpose, tier, limitations, as registered), its role
-- and its validation (out-of-time date and gates), newest version first per model.
SELECT model_name, segment, model_version,
       CASE WHEN status = 'candidate' AND gate_status = 'passed' THEN 'challenger'
            ELSE status END AS role,
       algorithm, created_at, inventory, validation_date, gate_status, model_card
FROM model_registry
ORDER BY model_name, segment NULLS FIRST, created_at DESC, model_version
