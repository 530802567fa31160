-- imgate store, schema version 2 (PostgreSQL): the compliance console's
-- accounts (a password only as an argon2id PHC string), and indexes for
-- its searches: by verdict and kind, and the tagged records alone.
CREATE INDEX records_action ON records (action);
CREATE INDEX records_kind ON records (kind);
CREATE INDEX records_tagged ON records (seq) WHERE tags <> '||';
CREATE TABLE console_users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    hash TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    created_by TEXT NOT NULL
);
