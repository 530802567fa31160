-- imgate store, schema version 1 (PostgreSQL).

-- The archive: one row per chain entry. `doc` is the entry's canonical
-- bytes (NULL once purged); the other columns are searchable copies that
-- `imgate archive verify` checks against it.
CREATE TABLE records (
    seq BIGINT PRIMARY KEY,
    appended_ms BIGINT NOT NULL,
    network TEXT NOT NULL,
    direction TEXT NOT NULL,
    kind TEXT NOT NULL,
    "user" TEXT NOT NULL,
    sender TEXT,
    recipient TEXT,
    room TEXT,
    action TEXT,
    tags TEXT NOT NULL,
    body TEXT,
    doc TEXT,
    prev BYTEA NOT NULL,
    hash BYTEA NOT NULL,
    body_tsv TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', coalesce(body, ''))) STORED
);
CREATE INDEX records_time ON records (appended_ms);
CREATE INDEX records_user ON records ("user");
CREATE INDEX records_sender ON records (sender);
CREATE INDEX records_recipient ON records (recipient);
CREATE INDEX records_room ON records (room);
CREATE INDEX records_fts ON records USING GIN (body_tsv);

CREATE TABLE checkpoints (
    id BIGSERIAL PRIMARY KEY,
    records BIGINT NOT NULL,
    time_ms BIGINT NOT NULL,
    line TEXT NOT NULL
);

CREATE TABLE held (
    event_id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    held_ms BIGINT NOT NULL,
    network TEXT NOT NULL,
    session TEXT NOT NULL,
    "user" TEXT NOT NULL,
    sender TEXT NOT NULL,
    target TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT,
    reason TEXT NOT NULL,
    held_by TEXT,
    status TEXT NOT NULL,
    decided_ms BIGINT,
    reviewer TEXT,
    note TEXT,
    outcome TEXT
);
CREATE INDEX held_status ON held (status, held_ms);

CREATE TABLE holds (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    created_by TEXT NOT NULL
);

-- The bridge's id maps.
CREATE TABLE bridge_copies (
    copy_event TEXT PRIMARY KEY,
    origin_event TEXT NOT NULL,
    origin_network TEXT NOT NULL,
    origin_room TEXT NOT NULL,
    origin_author TEXT,
    copy_network TEXT NOT NULL,
    copy_room TEXT NOT NULL,
    excerpt TEXT,
    plugin TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE INDEX bridge_copies_origin ON bridge_copies (origin_event);
CREATE INDEX bridge_copies_time ON bridge_copies (created_ms);
CREATE TABLE bridge_ids (
    network TEXT NOT NULL,
    id TEXT NOT NULL,
    event TEXT NOT NULL,
    kind TEXT NOT NULL,
    by_whom TEXT,
    PRIMARY KEY (network, id, event)
);
CREATE INDEX bridge_ids_event ON bridge_ids (event);

-- The plugins' kv: one namespace per plugin, with its usage kept beside
-- it (its row is the namespace's lock for quota checks).
CREATE TABLE kv (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value BYTEA NOT NULL,
    expires_ms BIGINT,
    PRIMARY KEY (namespace, key)
);
CREATE INDEX kv_expiry ON kv (expires_ms) WHERE expires_ms IS NOT NULL;
CREATE TABLE kv_usage (
    namespace TEXT PRIMARY KEY,
    keys BIGINT NOT NULL,
    bytes BIGINT NOT NULL
);
