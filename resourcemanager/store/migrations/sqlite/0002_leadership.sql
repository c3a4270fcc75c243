-- RM high availability: the leadership lease, the signing keys every RM incarnation shares, and
-- the NodeManagers a new active waits for before it schedules.
--
-- The PostgreSQL store has a migration with this same file name and the same tables and columns.

-- Milliseconds since the Unix epoch by the database's clock; 0 when no lease is held (a single RM
-- claims the epoch without a lease).
ALTER TABLE rm_epoch ADD COLUMN lease_expires_at BIGINT NOT NULL DEFAULT 0;

-- One row per purpose: 'container-token' and 'am-token'.
CREATE TABLE master_keys (
    purpose    TEXT   PRIMARY KEY,
    key_id     BIGINT NOT NULL,
    -- Hex-encoded secret.
    secret_hex TEXT   NOT NULL
);

CREATE TABLE nodes (
    id            TEXT   PRIMARY KEY,
    http_address  TEXT   NOT NULL,
    written_epoch BIGINT NOT NULL
);
