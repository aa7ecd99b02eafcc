-- Views of the scores, for analysts; recreated on every schema apply, one set per key
-- type the database holds: the names as written for its first, suffixed
-- "_string_keys" (or "_integer_keys") for models keyed the other way
-- (credit_batch.stores.results.KEY_SUFFIX).

-- Each customer's newest score from each model's champion.
CREATE OR REPLACE VIEW latest_predictions{suffix} AS
SELECT snapshot_date, customer_id, model_version, run_id, score, risk_band, model_name
FROM (
    SELECT p.*, m.model_name,
           ROW_NUMBER() OVER (
               PARTITION BY m.model_name, p.customer_id ORDER BY p.snapshot_date DESC
           ) AS rn
    FROM predictions{suffix} AS p
    JOIN model_registry AS m
      ON m.model_version = p.model_version AND m.status = 'champion'
) AS ranked
WHERE rn = 1;

-- Scores as scorecard points, and each reason code's contribution in points
-- (negative: the points the feature costs against the average customer).
CREATE OR REPLACE VIEW prediction_points{suffix} AS
SELECT p.snapshot_date, p.customer_id, p.model_version, p.run_id, p.score, p.points,
       p.risk_band,
       p.reason_1, -p.reason_1_value * r.points_pdo / ln(2.0) AS reason_1_points,
       p.reason_2, -p.reason_2_value * r.points_pdo / ln(2.0) AS reason_2_points,
       p.reason_3, -p.reason_3_value * r.points_pdo / ln(2.0) AS reason_3_points
FROM predictions{suffix} AS p
JOIN scoring_runs AS r ON r.run_id = p.run_id;
