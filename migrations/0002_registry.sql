-- The MLOps loop: training runs (what each saw and scored), model versions with one
-- champion per sensor, the promotion history, the forecasts issued, their live scores,
-- drift events and scheduler job runs.

CREATE TABLE training_runs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sensor_id     bigint      NOT NULL REFERENCES sensors (id) ON DELETE CASCADE,
    trigger       text        NOT NULL CHECK (trigger IN ('schedule', 'drift', 'manual', 'new-sensor')),
    -- queued → running → succeeded | failed. Queued runs are claimed with SKIP LOCKED,
    -- so replicas share the work.
    status        text        NOT NULL DEFAULT 'queued'
                              CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    -- A requested algorithm (manual runs); NULL lets the backtest choose.
    requested     text,
    queued_at     timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz,
    duration_ms   bigint,
    claimed_by    text,
    algorithm     text,
    params        jsonb,
    -- The data it saw: the exact resampled series is identified by its digest.
    step_secs     integer,
    data_first    timestamptz,
    data_last     timestamptz,
    data_rows     integer,
    data_digest   text,
    -- Backtest table: one entry per candidate model.
    metrics       jsonb,
    error         text
);
CREATE INDEX training_runs_sensor ON training_runs (sensor_id, id DESC);
CREATE INDEX training_runs_queued ON training_runs (id) WHERE status = 'queued';

CREATE TABLE model_versions (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sensor_id            bigint      NOT NULL REFERENCES sensors (id) ON DELETE CASCADE,
    version              integer     NOT NULL,
    run_id               bigint      NOT NULL REFERENCES training_runs (id) ON DELETE CASCADE,
    algorithm            text        NOT NULL,
    baseline             boolean     NOT NULL,
    model                bytea       NOT NULL,
    format_version       integer     NOT NULL,
    smartcore_version    text        NOT NULL,
    feature_spec_version integer     NOT NULL,
    metrics              jsonb       NOT NULL,
    mase_1_24            double precision,
    mase_scale           double precision,
    status               text        NOT NULL CHECK (status IN ('champion', 'challenger', 'retired')),
    status_reason        text        NOT NULL DEFAULT '',
    created_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (sensor_id, version)
);
-- The invariant the whole loop rests on: at most one champion per sensor.
CREATE UNIQUE INDEX model_versions_one_champion ON model_versions (sensor_id) WHERE status = 'champion';

CREATE TABLE promotions (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sensor_id       bigint      NOT NULL REFERENCES sensors (id) ON DELETE CASCADE,
    from_version_id bigint      REFERENCES model_versions (id) ON DELETE SET NULL,
    to_version_id   bigint      NOT NULL REFERENCES model_versions (id) ON DELETE CASCADE,
    kind            text        NOT NULL CHECK (kind IN ('initial', 'promote', 'rollback', 'manual')),
    reason          text        NOT NULL,
    at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX promotions_sensor ON promotions (sensor_id, at DESC);

-- Every forecast the champion issued, kept so it can be scored when the readings arrive.
CREATE TABLE issued_forecasts (
    sensor_id        bigint           NOT NULL REFERENCES sensors (id) ON DELETE CASCADE,
    model_version_id bigint           NOT NULL REFERENCES model_versions (id) ON DELETE CASCADE,
    issued_at        timestamptz      NOT NULL,
    target_ts        timestamptz      NOT NULL,
    horizon          integer          NOT NULL,
    value            double precision NOT NULL,
    lo80             double precision NOT NULL,
    hi80             double precision NOT NULL,
    lo95             double precision NOT NULL,
    hi95             double precision NOT NULL,
    PRIMARY KEY (sensor_id, issued_at, target_ts)
);
CREATE INDEX issued_forecasts_target ON issued_forecasts (sensor_id, target_ts);

CREATE TABLE live_scores (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sensor_id        bigint           NOT NULL REFERENCES sensors (id) ON DELETE CASCADE,
    model_version_id bigint           REFERENCES model_versions (id) ON DELETE SET NULL,
    scored_at        timestamptz      NOT NULL DEFAULT now(),
    window_hours     integer          NOT NULL,
    n                integer          NOT NULL,
    mae_1_24         double precision,
    mase_1_24        double precision,
    coverage_80      double precision,
    coverage_95      double precision
);
CREATE INDEX live_scores_sensor ON live_scores (sensor_id, scored_at DESC);

CREATE TABLE drift_events (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sensor_id     bigint           NOT NULL REFERENCES sensors (id) ON DELETE CASCADE,
    at            timestamptz      NOT NULL DEFAULT now(),
    live_mase     double precision NOT NULL,
    backtest_mase double precision,
    reason        text             NOT NULL,
    run_id        bigint           REFERENCES training_runs (id) ON DELETE SET NULL
);

-- One row per scheduled firing: the unique key makes exactly one replica run it.
CREATE TABLE job_runs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job           text        NOT NULL,
    scheduled_for timestamptz NOT NULL,
    instance      text        NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    status        text        NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed')),
    detail        text,
    UNIQUE (job, scheduled_for)
);
