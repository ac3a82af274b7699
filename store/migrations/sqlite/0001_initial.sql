-- Scan history, conversation references and the shared state that replicas
-- coordinate through. Times are INTEGER microseconds since the Unix epoch, UTC.

CREATE TABLE scans (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id        TEXT    NOT NULL,
    started_at       INTEGER NOT NULL,
    finished_at      INTEGER NOT NULL,
    team_count       INTEGER NOT NULL,
    total_used_bytes INTEGER NOT NULL
) STRICT;

CREATE INDEX scans_finished_at ON scans (finished_at);

CREATE TABLE scan_teams (
    scan_id         INTEGER NOT NULL REFERENCES scans (id) ON DELETE CASCADE,
    position        INTEGER NOT NULL,
    team_id         TEXT    NOT NULL,
    display_name    TEXT    NOT NULL,
    outcome         TEXT    NOT NULL,
    used_bytes      INTEGER NOT NULL,
    total_bytes     INTEGER NOT NULL,
    remaining_bytes INTEGER NOT NULL,
    deleted_bytes   INTEGER NOT NULL,
    state           TEXT    NOT NULL,
    reason          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL,
    -- Per-channel quota of private and shared channels as JSON. NULL until the
    -- scanner reads channel drives.
    channels        TEXT,
    PRIMARY KEY (scan_id, position)
) STRICT;

CREATE INDEX scan_teams_team_id ON scan_teams (team_id);

CREATE TABLE conversations (
    conversation_id  TEXT    PRIMARY KEY,
    kind             TEXT    NOT NULL,
    service_url      TEXT    NOT NULL,
    tenant_id        TEXT    NOT NULL,
    bot_id           TEXT    NOT NULL,
    team_id          TEXT    NOT NULL,
    group_id         TEXT    NOT NULL,
    teams_channel_id TEXT    NOT NULL,
    reference        TEXT,
    updated_at       INTEGER NOT NULL
) STRICT;

CREATE INDEX conversations_kind ON conversations (kind);

CREATE TABLE seen_activities (
    activity_id TEXT    PRIMARY KEY,
    expires_at  INTEGER NOT NULL
) STRICT;

CREATE INDEX seen_activities_expires_at ON seen_activities (expires_at);

CREATE TABLE leases (
    name       TEXT    PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE TABLE sends (
    send_key        TEXT    PRIMARY KEY,
    conversation_id TEXT    NOT NULL,
    recorded_at     INTEGER NOT NULL,
    completed_at    INTEGER,
    activity_id     TEXT    NOT NULL
) STRICT;

CREATE INDEX sends_recorded_at ON sends (recorded_at);
