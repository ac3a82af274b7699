-- Scan history, conversation references and the shared state that replicas
-- coordinate through.

CREATE TABLE scans (
    id               BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id        TEXT        NOT NULL,
    started_at       TIMESTAMPTZ NOT NULL,
    finished_at      TIMESTAMPTZ NOT NULL,
    team_count       INTEGER     NOT NULL,
    total_used_bytes BIGINT      NOT NULL
);

CREATE INDEX scans_finished_at ON scans (finished_at);

CREATE TABLE scan_teams (
    scan_id         BIGINT  NOT NULL REFERENCES scans (id) ON DELETE CASCADE,
    position        INTEGER NOT NULL,
    team_id         TEXT    NOT NULL,
    display_name    TEXT    NOT NULL,
    outcome         TEXT    NOT NULL,
    used_bytes      BIGINT  NOT NULL,
    total_bytes     BIGINT  NOT NULL,
    remaining_bytes BIGINT  NOT NULL,
    deleted_bytes   BIGINT  NOT NULL,
    state           TEXT    NOT NULL,
    reason          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL,
    -- Per-channel quota of private and shared channels. NULL until the
    -- scanner reads channel drives.
    channels        JSONB,
    PRIMARY KEY (scan_id, position)
);

CREATE INDEX scan_teams_team_id ON scan_teams (team_id);

CREATE TABLE conversations (
    conversation_id  TEXT        PRIMARY KEY,
    kind             TEXT        NOT NULL,
    service_url      TEXT        NOT NULL,
    tenant_id        TEXT        NOT NULL,
    bot_id           TEXT        NOT NULL,
    team_id          TEXT        NOT NULL,
    group_id         TEXT        NOT NULL,
    teams_channel_id TEXT        NOT NULL,
    reference        JSONB,
    updated_at       TIMESTAMPTZ NOT NULL
);

CREATE INDEX conversations_kind ON conversations (kind);

CREATE TABLE seen_activities (
    activity_id TEXT        PRIMARY KEY,
    expires_at  TIMESTAMPTZ NOT NULL
);

CREATE INDEX seen_activities_expires_at ON seen_activities (expires_at);

CREATE TABLE leases (
    name       TEXT        PRIMARY KEY,
    holder     TEXT        NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE sends (
    send_key        TEXT        PRIMARY KEY,
    conversation_id TEXT        NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL,
    completed_at    TIMESTAMPTZ,
    activity_id     TEXT        NOT NULL
);

CREATE INDEX sends_recorded_at ON sends (recorded_at);
