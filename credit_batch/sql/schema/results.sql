-- Results database: runs unchanged on DuckDB and PostgreSQL; idempotent.

-- The schema versions applied to this database (credit_batch.stores.results.MIGRATIONS);
-- a database made before versions were recorded is version 1.
CREATE TABLE IF NOT EXISTS schema_migrations (
    version      INTEGER PRIMARY KEY,
    description  VARCHAR NOT NULL,
    applied_at   TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS model_registry (
    model_version  VARCHAR PRIMARY KEY,        -- unique across models
    model_name     VARCHAR,                    -- the model (pd_cards): champion per model
    created_at     TIMESTAMP NOT NULL,
    algorithm      VARCHAR NOT NULL,
    features       VARCHAR NOT NULL,           -- JSON list, in model order
    training_rows  BIGINT NOT NULL,
    train_from     DATE,
    train_until    DATE NOT NULL,
    roc_auc        DOUBLE PRECISION,
    log_loss       DOUBLE PRECISION,
    ks             DOUBLE PRECISION,
    artifact_path  VARCHAR NOT NULL,           -- relative to CREDIT_BATCH_HOME
    sha256         VARCHAR NOT NULL,
    explainer_background VARCHAR,              -- JSON: mean transformed features (linear)
    drift_reference VARCHAR,                   -- JSON: training bins of features and score
    spec           VARCHAR,                    -- JSON: the feature spec, queries included
    spec_hash      VARCHAR,                    -- sha256 of the spec's canonical JSON
    status         VARCHAR NOT NULL CHECK (status IN ('candidate', 'champion', 'retired')),
    promoted_at    TIMESTAMP,
    -- out-of-time validation and gates (credit-batch train-candidate, the training DAG);
    -- a candidate whose gates passed is a challenger (role in registry/list.sql)
    validation_date DATE,                      -- the newest matured snapshot, not trained on
    validation     VARCHAR,                    -- JSON: metrics, calibration, PSI, champion's AUC
    gate_status    VARCHAR,                    -- passed | failed: <gate>; ... | NULL: not gated
    model_card     VARCHAR,                    -- the model card's URI (HTML)
    policy         VARCHAR,                    -- JSON: risk bands, points scale, gates, swap cutoff
    -- a segmented model (schema version 3): one champion per (model_name, segment)
    segment_by     VARCHAR,                    -- the feature-set column it is segmented by
    segment        VARCHAR,                    -- the segment's value; NULL: every row (pooled)
    -- the model inventory (schema version 5): the model file's owner, description,
    -- purpose, tier and limitations, as registered with the version
    inventory      VARCHAR                     -- JSON
);

-- Lineage (schema version 4): the versions of other models whose stored scores a
-- version was trained on (a spec feature with upstream_model). "Which models does
-- changing pd_cards affect?": the versions whose upstream_model is pd_cards.
CREATE TABLE IF NOT EXISTS model_lineage (
    model_version     VARCHAR NOT NULL,   -- the reading version
    model_name        VARCHAR NOT NULL,
    upstream_model    VARCHAR NOT NULL,   -- the model it reads
    upstream_version  VARCHAR NOT NULL,   -- a version whose scores it was trained on
    PRIMARY KEY (model_version, upstream_version)
);

-- The audit trail of the model lifecycle: who did what to which version, when and why.
CREATE TABLE IF NOT EXISTS model_events (
    event_id       VARCHAR PRIMARY KEY,
    model_version  VARCHAR NOT NULL,
    model_name     VARCHAR,
    event          VARCHAR NOT NULL,   -- registered | gates_passed | gates_failed | promoted | retired
    event_at       TIMESTAMP NOT NULL,
    actor          VARCHAR NOT NULL,   -- a user name, or airflow:<dag id>/<run id>
    reason         VARCHAR,
    details        VARCHAR             -- JSON
);

-- A challenger's scores against the champion's on the same snapshot (written by
-- the night that scored both): score correlation, band migration, swap set.
CREATE TABLE IF NOT EXISTS challenger_comparison (
    snapshot_date       DATE NOT NULL,
    champion_version    VARCHAR NOT NULL,
    challenger_version  VARCHAR NOT NULL,
    kind                VARCHAR NOT NULL,  -- correlation | migration | swap
    bucket              VARCHAR NOT NULL,  -- pearson | "B>C" (champion band > challenger's) |
                                           -- champion only | challenger only (accepted)
    customers           BIGINT NOT NULL,
    value               DOUBLE PRECISION,  -- the correlation
    swap_cutoff         DOUBLE PRECISION NOT NULL,  -- accepted: score <= it
    PRIMARY KEY (snapshot_date, champion_version, challenger_version, kind, bucket)
);

-- Realized performance of stored scores once the outcomes of their snapshot are known.
CREATE TABLE IF NOT EXISTS realized_performance (
    snapshot_date     DATE NOT NULL,
    model_version     VARCHAR NOT NULL,
    role              VARCHAR NOT NULL,   -- the model's role when computed
    rows_scored       BIGINT NOT NULL,
    rows_known        BIGINT NOT NULL,    -- scored rows whose outcome is known
    bads              BIGINT NOT NULL,
    bad_rate          DOUBLE PRECISION,
    mean_score        DOUBLE PRECISION,
    roc_auc           DOUBLE PRECISION,
    gini              DOUBLE PRECISION,
    ks                DOUBLE PRECISION,
    log_loss          DOUBLE PRECISION,
    brier             DOUBLE PRECISION,
    computed_at       TIMESTAMP NOT NULL,
    in_sample         BOOLEAN,            -- the snapshot lies in the model's training window
    PRIMARY KEY (snapshot_date, model_version)
);

-- Mean score against bad rate, by score decile and by risk band, per realized slice.
CREATE TABLE IF NOT EXISTS calibration (
    snapshot_date  DATE NOT NULL,
    model_version  VARCHAR NOT NULL,
    grouping       VARCHAR NOT NULL,    -- decile | band
    bucket_index   INTEGER NOT NULL,
    bucket         VARCHAR NOT NULL,    -- "decile 1" (lowest scores) .. or a risk band
    customers      BIGINT NOT NULL,
    bads           BIGINT NOT NULL,
    mean_score     DOUBLE PRECISION NOT NULL,
    bad_rate       DOUBLE PRECISION NOT NULL,
    min_score      DOUBLE PRECISION NOT NULL,
    max_score      DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (snapshot_date, model_version, grouping, bucket_index)
);

CREATE TABLE IF NOT EXISTS scoring_runs (
    run_id              VARCHAR PRIMARY KEY,
    snapshot_date       DATE NOT NULL,
    model_version       VARCHAR NOT NULL,
    airflow_dag_id      VARCHAR,
    airflow_run_id      VARCHAR,
    started_at          TIMESTAMP NOT NULL,
    finished_at         TIMESTAMP,
    status              VARCHAR NOT NULL,
    rows_in             BIGINT NOT NULL,
    rows_scored         BIGINT NOT NULL,
    rows_quarantined    BIGINT NOT NULL,
    partitions          INTEGER NOT NULL,
    chunk_rows          INTEGER NOT NULL,
    extract_seconds     DOUBLE PRECISION,
    score_seconds       DOUBLE PRECISION,   -- summed over partitions
    load_seconds        DOUBLE PRECISION,
    importance_seconds  DOUBLE PRECISION,
    importance_status   VARCHAR,            -- pending | computed | skipped: ...
    score_psi           DOUBLE PRECISION,   -- PSI of the scores against training
    drift_status        VARCHAR,            -- stable | watch | act (of the score)
    report_path         VARCHAR,            -- the run's HTML report
    rows_other_category BIGINT,             -- scored with an undeclared category as "other"
    input_fingerprint   VARCHAR,            -- sha256 of the extracted features and the spec
    points_base         DOUBLE PRECISION,   -- the points scale: base points at base odds,
    points_odds         DOUBLE PRECISION,   -- (good:bad), points to double the odds
    points_pdo          DOUBLE PRECISION,
    role                VARCHAR,            -- champion | challenger (scored in shadow) | ...
    -- declined: scored above the version's cutoff (policy swap_cutoff); their reasons
    -- are in adverse_action (schema version 5)
    decline_cutoff      DOUBLE PRECISION,
    rows_declined       BIGINT,
    CHECK (rows_in = rows_scored + rows_quarantined)
);

-- predictions: see predictions.duckdb.sql / predictions.postgresql.sql

CREATE TABLE IF NOT EXISTS feature_importance (
    run_id           VARCHAR NOT NULL,
    snapshot_date    DATE NOT NULL,
    model_version    VARCHAR NOT NULL,
    method           VARCHAR NOT NULL,
    metric           VARCHAR NOT NULL,
    feature          VARCHAR NOT NULL,
    importance_rank  INTEGER NOT NULL,
    importance_mean  DOUBLE PRECISION NOT NULL,
    importance_std   DOUBLE PRECISION NOT NULL,
    baseline_score   DOUBLE PRECISION NOT NULL,
    n_repeats        INTEGER NOT NULL,
    sample_rows      BIGINT NOT NULL,
    PRIMARY KEY (snapshot_date, model_version, method, feature)
);

-- Global SHAP summary of a run: mean |SHAP| (log-odds) of each feature over its scores.
CREATE TABLE IF NOT EXISTS shap_summary (
    snapshot_date   DATE NOT NULL,
    model_version   VARCHAR NOT NULL,
    run_id          VARCHAR NOT NULL,
    feature         VARCHAR NOT NULL,
    mean_abs_shap   DOUBLE PRECISION NOT NULL,
    importance_rank INTEGER NOT NULL,
    rows_explained  BIGINT NOT NULL,
    PRIMARY KEY (snapshot_date, model_version, feature)
);

-- Population stability of each feature and of the score against the training data.
CREATE TABLE IF NOT EXISTS drift (
    snapshot_date  DATE NOT NULL,
    model_version  VARCHAR NOT NULL,
    run_id         VARCHAR NOT NULL,
    feature        VARCHAR NOT NULL,            -- a feature, or 'score'
    psi            DOUBLE PRECISION NOT NULL,
    band           VARCHAR NOT NULL,            -- stable (< 0.1) | watch | act (> 0.25)
    rows_compared  BIGINT NOT NULL,
    PRIMARY KEY (snapshot_date, model_version, feature)
);

-- Partial dependence of the score on the run's most important features (label-free
-- ranking), on a sample: the mean curve and percentiles of the per-row (ICE) curves.
CREATE TABLE IF NOT EXISTS partial_dependence (
    snapshot_date  DATE NOT NULL,
    model_version  VARCHAR NOT NULL,
    run_id         VARCHAR NOT NULL,
    feature        VARCHAR NOT NULL,
    grid_index     INTEGER NOT NULL,
    grid_value     DOUBLE PRECISION NOT NULL,  -- a categorical feature: the level's index
    grid_label     VARCHAR,                    -- a categorical feature: the level
    average        DOUBLE PRECISION NOT NULL,
    ice_p10        DOUBLE PRECISION NOT NULL,
    ice_p50        DOUBLE PRECISION NOT NULL,
    ice_p90        DOUBLE PRECISION NOT NULL,
    sample_rows    BIGINT NOT NULL,
    PRIMARY KEY (snapshot_date, model_version, feature, grid_index)
);

-- Readable text of each reason code (a feature name), for letters and screens.
CREATE TABLE IF NOT EXISTS feature_reasons (
    feature      VARCHAR PRIMARY KEY,
    reason_text  VARCHAR NOT NULL
);

-- quarantine, adverse_action: schema/quarantine.sql, schema/adverse_action.sql (a table
-- per key type, as predictions).


-- API keys of the HTTP service: only each key's sha256 is kept (the key is shown once).
CREATE TABLE IF NOT EXISTS api_keys (
    name        VARCHAR PRIMARY KEY,
    key_sha256  VARCHAR NOT NULL UNIQUE,
    created_at  TIMESTAMP NOT NULL,
    revoked_at  TIMESTAMP
);

-- Streaming prediction (credit-batch stream-score): one row per event, whatever the
-- deliveries (at least once from Redis Streams; a replay inserts nothing).
CREATE TABLE IF NOT EXISTS stream_predictions (
    event_id       VARCHAR PRIMARY KEY,          -- the producer's id of the event
    stream_entry   VARCHAR NOT NULL,             -- the Redis Streams entry it came as
    model_name     VARCHAR NOT NULL,
    model_version  VARCHAR NOT NULL,
    customer_id    VARCHAR NOT NULL,             -- as text, whatever the key type
    event_at       TIMESTAMP,                    -- when the event happened (the producer's)
    features_snapshot_date DATE NOT NULL,        -- the batch features' snapshot it was joined to
    overridden     VARCHAR NOT NULL,             -- JSON object: the values the event gave, and its streaming features
    score          DOUBLE PRECISION NOT NULL,
    risk_band      VARCHAR NOT NULL,
    points         DOUBLE PRECISION,
    reason_1       VARCHAR,
    reason_1_value DOUBLE PRECISION,
    reason_2       VARCHAR,
    reason_2_value DOUBLE PRECISION,
    reason_3       VARCHAR,
    reason_3_value DOUBLE PRECISION,
    scored_at      TIMESTAMP NOT NULL
);

-- Fair-lending tests (schema version 5; credit_batch.steps.fairness): per fairness
-- attribute of the spec and group, the approval rate at the version's cutoff and
-- the adverse impact ratio against the reference group (every night and at
-- validation), with ROC AUC, KS, bad rate and mean score where outcomes are known
-- (validation). Bounds: 2.5 % and 97.5 % bootstrap quantiles.
CREATE TABLE IF NOT EXISTS fairness (
    kind              VARCHAR NOT NULL,           -- night | validation
    snapshot_date     DATE NOT NULL,
    model_version     VARCHAR NOT NULL,
    run_id            VARCHAR,                    -- the night's run; NULL at validation
    attribute         VARCHAR NOT NULL,           -- the spec's [[fairness]] attribute
    group_value       VARCHAR NOT NULL,           -- (missing): NULL in the warehouse
    is_reference      BOOLEAN NOT NULL,
    customers         BIGINT NOT NULL,
    cutoff            DOUBLE PRECISION NOT NULL,  -- approved: score at or below it
    approval_rate     DOUBLE PRECISION NOT NULL,
    approval_rate_low DOUBLE PRECISION,
    approval_rate_high DOUBLE PRECISION,
    air               DOUBLE PRECISION,           -- approval rate over the reference's
    air_low           DOUBLE PRECISION,
    air_high          DOUBLE PRECISION,
    roc_auc           DOUBLE PRECISION,           -- with outcomes only
    roc_auc_low       DOUBLE PRECISION,
    roc_auc_high      DOUBLE PRECISION,
    ks                DOUBLE PRECISION,
    ks_low            DOUBLE PRECISION,
    ks_high           DOUBLE PRECISION,
    bad_rate          DOUBLE PRECISION,           -- calibration: bad rate beside mean score
    mean_score        DOUBLE PRECISION
);
