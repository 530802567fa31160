//! The archive's tables and the row layer under every other part, on
//! either backend: SQLite in WAL mode with `synchronous = FULL` (FTS5 for
//! full text), or PostgreSQL (`postgres.rs`, a GIN index for full text).
//! One row per chain entry. Each backend's schema is versioned; a store
//! newer than this build is refused.

use std::path::Path;
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use super::ArchiveError;
use super::record::{AuditEntry, Columns, audit_columns};
use crate::store::{Location, Postgres, StoreConfig, StoreError};

pub type Hash = [u8; 32];

/// SQLite's schema versions, oldest first (`PRAGMA user_version`). Version
/// 1 is the schema before versions were kept, so older files adopt it.
const SQLITE_MIGRATIONS: &[&str] = &[SCHEMA_V1, SCHEMA_V2];

/// The compliance console's accounts (a password only as an argon2id
/// PHC string), and indexes for its searches: by verdict and kind (their
/// rows come in number order, so newest-first pages stop early), and the
/// tagged records alone, so a tag is looked for among them and not in
/// every row.
const SCHEMA_V2: &str = "
CREATE INDEX IF NOT EXISTS records_action ON records(action);
CREATE INDEX IF NOT EXISTS records_kind ON records(kind);
CREATE INDEX IF NOT EXISTS records_tagged ON records(seq) WHERE tags <> '||';
CREATE TABLE IF NOT EXISTS console_users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    hash TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    created_by TEXT NOT NULL
);
";

const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    appended_ms INTEGER NOT NULL,
    network TEXT NOT NULL,
    direction TEXT NOT NULL,
    kind TEXT NOT NULL,
    user TEXT NOT NULL,
    sender TEXT,
    recipient TEXT,
    room TEXT,
    action TEXT,
    tags TEXT NOT NULL,
    body TEXT,
    doc TEXT,
    prev BLOB NOT NULL,
    hash BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS records_time ON records(appended_ms);
CREATE INDEX IF NOT EXISTS records_user ON records(user);
CREATE INDEX IF NOT EXISTS records_sender ON records(sender);
CREATE INDEX IF NOT EXISTS records_recipient ON records(recipient);
CREATE INDEX IF NOT EXISTS records_room ON records(room);
CREATE VIRTUAL TABLE IF NOT EXISTS records_fts USING fts5(body, content='records', content_rowid='seq');
CREATE TABLE IF NOT EXISTS checkpoints (
    records INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    line TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS held (
    event_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    held_ms INTEGER NOT NULL,
    network TEXT NOT NULL,
    session TEXT NOT NULL,
    user TEXT NOT NULL,
    sender TEXT NOT NULL,
    target TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT,
    reason TEXT NOT NULL,
    held_by TEXT,
    status TEXT NOT NULL,
    decided_ms INTEGER,
    reviewer TEXT,
    note TEXT,
    outcome TEXT
);
CREATE INDEX IF NOT EXISTS held_status ON held(status, held_ms);
CREATE TABLE IF NOT EXISTS holds (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    created_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS bridge_copies (
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
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS bridge_copies_origin ON bridge_copies(origin_event);
CREATE INDEX IF NOT EXISTS bridge_copies_time ON bridge_copies(created_ms);
CREATE TABLE IF NOT EXISTS bridge_ids (
    network TEXT NOT NULL,
    id TEXT NOT NULL,
    event TEXT NOT NULL,
    kind TEXT NOT NULL,
    by_whom TEXT,
    PRIMARY KEY (network, id, event)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS bridge_ids_event ON bridge_ids(event);
";

/// Applies the SQLite migrations this file lacks, in one transaction.
fn migrate_sqlite(conn: &mut Connection) -> Result<(), ArchiveError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    check_version_sqlite(found)?;
    for sql in SQLITE_MIGRATIONS.iter().skip(found as usize) {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", SQLITE_MIGRATIONS.len() as i64)?;
    tx.commit()?;
    Ok(())
}

fn check_version_sqlite(found: i64) -> Result<(), ArchiveError> {
    let known = SQLITE_MIGRATIONS.len() as i64;
    if found > known {
        return Err(StoreError::SchemaTooNew { found, known }.into());
    }
    Ok(())
}

/// The database under a store.
pub(super) enum Db {
    Sqlite(Connection),
    Postgres(Arc<Postgres>),
}

/// The archive database.
pub struct Store {
    pub(super) db: Db,
    pub(super) last: (u64, Hash),
}

impl Store {
    /// Opens or creates the archive at `path`.
    ///
    /// # Errors
    /// The file cannot be opened or is not an imgate archive.
    pub fn open(path: &Path) -> Result<Store, ArchiveError> {
        let mut conn = Connection::open(path)?;
        // WAL with FULL sync: a committed transaction survives power loss
        // and kill -9; readers (search, verify) do not block the writer.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate_sqlite(&mut conn)?;
        let last = last_of(&conn)?;
        Ok(Store {
            db: Db::Sqlite(conn),
            last,
        })
    }

    /// Opens (or creates, or migrates) the store `[store]` names.
    ///
    /// # Errors
    /// It cannot be reached or opened, or its schema is newer than this
    /// build knows.
    pub fn connect(config: &StoreConfig) -> Result<Store, ArchiveError> {
        match config.location()? {
            Location::Sqlite(path) => Store::open(&path),
            Location::Postgres(url) => {
                let pg = Postgres::shared(&url, config, true)?;
                let last = pg.run(super::postgres::head(&pg))?;
                Ok(Store {
                    db: Db::Postgres(pg),
                    last,
                })
            }
        }
    }

    /// Opens the store `[store]` names to read, creating nothing.
    ///
    /// # Errors
    /// It cannot be reached, is not an imgate store, or is too new.
    pub fn connect_read_only(config: &StoreConfig) -> Result<Store, ArchiveError> {
        match config.location()? {
            Location::Sqlite(path) => Store::open_read_only(&path),
            Location::Postgres(url) => Ok(Store {
                db: Db::Postgres(Postgres::shared(&url, config, false)?),
                last: (0, [0; 32]),
            }),
        }
    }

    /// The PostgreSQL pool under this store, if that is its backend.
    pub fn postgres(&self) -> Option<&Arc<Postgres>> {
        match &self.db {
            Db::Postgres(pg) => Some(pg),
            Db::Sqlite(_) => None,
        }
    }

    /// The SQLite connection (tests that tamper by hand).
    #[cfg(test)]
    pub(super) fn sqlite(&self) -> &Connection {
        match &self.db {
            Db::Sqlite(conn) => conn,
            Db::Postgres(_) => panic!("not a SQLite store"),
        }
    }

    /// Opens an existing archive to read (verify, search) while a gateway
    /// may be writing it.
    ///
    /// # Errors
    /// The file does not exist or is not an imgate archive.
    pub fn open_read_only(path: &Path) -> Result<Store, ArchiveError> {
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Fails here, clearly, when the file is not an archive.
        conn.query_row("SELECT count(*) FROM records", [], |_| Ok(()))?;
        check_version_sqlite(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)?;
        Ok(Store {
            db: Db::Sqlite(conn),
            last: (0, [0; 32]),
        })
    }

    /// The next record's number.
    pub fn next_seq(&self) -> u64 {
        self.last.0 + 1
    }

    pub(super) fn audit(
        tx: &rusqlite::Transaction<'_>,
        entry: &str,
        by: &str,
        at_ms: u64,
        details: serde_json::Value,
    ) -> Result<(u64, Hash), ArchiveError> {
        let (last, prev) = last_of(tx)?;
        let a = AuditEntry {
            seq: last + 1,
            entry: entry.into(),
            at_ms,
            by: by.into(),
            details,
        };
        let doc = serde_json::to_string(&a)?;
        let hash = insert_row(tx, a.seq, &prev, &doc, &audit_columns(&a))?;
        Ok((a.seq, hash))
    }
}

/// Where the chain ends: the last record's number and hash.
pub(super) fn last_of(conn: &Connection) -> rusqlite::Result<(u64, Hash)> {
    let last = conn
        .query_row(
            "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1",
            [],
            |row| Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?)),
        )
        .optional()?;
    Ok(match last {
        Some((seq, hash)) => (seq as u64, hash.try_into().unwrap_or([0; 32])),
        None => (0, [0; 32]),
    })
}

/// A column's bytes whether SQLite holds it as text or as a blob (an
/// edit made with SQL may change which).
pub(super) fn bytes(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<Vec<u8>> {
    use rusqlite::types::ValueRef;
    Ok(match row.get_ref(idx)? {
        ValueRef::Text(t) | ValueRef::Blob(t) => t.to_vec(),
        _ => Vec::new(),
    })
}

/// Inserts one row at `seq` after `prev`; returns its hash.
pub(super) fn insert_row(
    tx: &rusqlite::Transaction<'_>,
    seq: u64,
    prev: &Hash,
    doc: &str,
    c: &Columns,
) -> Result<Hash, ArchiveError> {
    let hash = link(prev, doc.as_bytes());
    tx.prepare_cached(
        "INSERT INTO records (seq, appended_ms, network, direction, kind, user, sender, \
         recipient, room, action, tags, body, doc, prev, hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )
    .and_then(|mut insert| {
        insert.execute(params![
            seq as i64,
            c.appended_ms as i64,
            c.network,
            c.direction,
            c.kind,
            c.user,
            c.sender,
            c.recipient,
            c.room,
            c.action,
            c.tags,
            c.body,
            doc,
            prev.to_vec(),
            hash.to_vec()
        ])
    })?;
    if let Some(body) = &c.body {
        tx.prepare_cached("INSERT INTO records_fts (rowid, body) VALUES (?1, ?2)")
            .and_then(|mut fts| fts.execute(params![seq as i64, body]))?;
    }
    Ok(hash)
}

/// A record's hash: SHA-256 over the previous hash and its bytes.
pub(super) fn link(prev: &Hash, bytes: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(bytes);
    h.finalize().into()
}
