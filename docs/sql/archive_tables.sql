-- Tables with the columns of mabdash's retention archives (docs/OPERATIONS.md, "Retention").
-- Load an archived period into them for an investigation, e.g. with psql:
--   \copy archived_rewards FROM PROGRAM 'gzip -dc var/archive/<slug>/<run>/rewards.csv.gz' WITH (FORMAT csv, HEADER)
--   \copy archived_decisions FROM PROGRAM 'gzip -dc var/archive/<slug>/<run>/decisions.csv.gz' WITH (FORMAT csv, HEADER)
CREATE TABLE IF NOT EXISTS archived_decisions (
    decision_id text,
    arm integer,
    model text,
    model_version text,
    propensity double precision,
    policy_version bigint,
    served_by text,
    created_at timestamptz
);
CREATE TABLE IF NOT EXISTS archived_rewards (
    id bigint,
    event_id text,
    arm integer,
    model text,
    model_version text,
    decision_id text,
    value double precision,
    trials integer,
    decided_at timestamptz,
    observed_at timestamptz,
    received_at timestamptz,
    learn boolean,
    applied_version bigint
);
