-- Initial RM state store schema: the PostgreSQL twin of migrations/sqlite/0001_initial.sql, with
-- the same tables, columns, types, nullability and constraints (the store conformance tests
-- compare the two schemas). BIGINT for u32/u64 values (an INTEGER is only i32), INTEGER for i32,
-- TEXT for ids (their YARN string form), state names and JSON. Times are milliseconds since the
-- Unix epoch.

-- Fencing: one row, bumped by every RM incarnation that claims the store.
CREATE TABLE rm_epoch (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    epoch      BIGINT  NOT NULL,
    holder     TEXT    NOT NULL,
    claimed_at BIGINT  NOT NULL
);

CREATE TABLE applications (
    id               TEXT    PRIMARY KEY,
    -- `user` is a reserved word.
    user_name        TEXT    NOT NULL,
    queue            TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    application_type TEXT    NOT NULL,
    -- JSON array of strings.
    tags             TEXT    NOT NULL,
    priority         INTEGER NOT NULL,
    max_attempts     BIGINT  NOT NULL,
    am_memory_mb     BIGINT  NOT NULL,
    am_vcores        BIGINT  NOT NULL,
    -- JSON ContainerLaunchContext.
    launch_context   TEXT    NOT NULL,
    submit_time      BIGINT  NOT NULL,
    finish_time      BIGINT,
    state            TEXT    NOT NULL,
    final_status     TEXT    NOT NULL,
    diagnostics      TEXT    NOT NULL,
    -- Epoch of the RM that last wrote the row, for operators reading the store after a failover.
    written_epoch    BIGINT  NOT NULL
);

CREATE TABLE app_attempts (
    id                TEXT    PRIMARY KEY,
    -- app_id and attempt_number repeat what the id encodes, for operators' queries and the cascade.
    app_id            TEXT    NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    attempt_number    BIGINT  NOT NULL,
    state             TEXT    NOT NULL,
    am_container      TEXT,
    node_id           TEXT,
    node_http_address TEXT    NOT NULL,
    start_time        BIGINT  NOT NULL,
    finish_time       BIGINT,
    diagnostics       TEXT    NOT NULL,
    am_exit_status    INTEGER,
    written_epoch     BIGINT  NOT NULL
);

-- Without it, deleting an application scans every attempt to find the ones to cascade to.
CREATE INDEX app_attempts_app_id ON app_attempts (app_id);
