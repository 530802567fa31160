//! The compliance archive: a tamper-evident, searchable store of events
//! and their final verdicts, written through the `archive` capability and
//! read by `imgate archive`.
//!
//! Owns: its records, their canonical form, their tables on either
//! backend (SQLite or PostgreSQL, chosen by `[store]`) and the
//! group-commit writer. Must not touch: the plugin runtime, its contract
//! or the capabilities; it knows events only in their JSON form
//! (`event::json`).
//!
//! - `record`: what is archived, canonically, and the searchable columns.
//! - `schema`: the tables and the row layer ([`Store`]), SQLite's here.
//! - `postgres`: the same operations on PostgreSQL.
//! - `chain`: appending in order and verifying the hash chain.
//! - `retention`: purges and legal holds, recorded in the chain.
//! - `accounts`: the console's accounts and the entries reviewers leave.
//! - `review`: messages held for review and reviewers' decisions.
//! - `search`: finding entries; the stored bytes for export.
//! - `writer`: the group-commit writer thread.
//! - [`checkpoint`]: signed checkpoints of the chain's head, the anchor
//!   that makes truncation and re-hashing detectable.
//! - [`export`]: entries out as JSONL or EML, with a manifest of hashes.
//! - `config`: the `[archive]` section.

mod accounts;
mod bridge_map;
mod chain;
pub mod checkpoint;
mod config;
pub mod export;
mod postgres;
mod record;
mod retention;
mod review;
mod schema;
mod search;
mod writer;

pub use accounts::{
    Account, MIN_PASSWORD_CHARS, Role, check_name, hash_password, password_matches,
};
pub use bridge_map::{CopyRow, CopyState, excerpt};
pub use chain::{Broken, Verified};
pub use config::ArchiveConfig;
pub use record::{ArchiveRecord, AuditEntry, Columns, Entry};
pub use retention::{Hold, PurgeReport};
pub use review::{Decision, HOST, HeldMessage, Review};
pub use schema::{Hash, Store};
pub use search::{Filter, Stored};
pub use writer::{AppendStats, ArchiveWriter};

/// Why the archive could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("cannot encode an entry: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("entry {seq} cannot be read ({reason}); run `imgate archive verify`")]
    Unreadable { seq: u64, reason: String },
    #[error("a hold is on a user or a room, not `{0}`")]
    HoldKind(String),
    #[error("an account named {0} exists")]
    AccountExists(String),
    #[error("no account named {0}")]
    NoAccount(String),
    #[error("{0}")]
    BadAccount(String),
    #[error("no hold {0}")]
    NoHold(i64),
    #[error("no message {0} was held for review")]
    NotHeld(String),
    #[error("message {event_id} was already decided: {status}")]
    AlreadyDecided { event_id: String, status: String },
    #[error("checkpoint key: {0}")]
    Key(#[from] crate::signing::KeyError),
    #[error("cannot start the archive writer: {0}")]
    Thread(std::io::Error),
    #[error("the archive writer has stopped")]
    WriterStopped,
    /// Shared by every record of the batch that failed to commit.
    #[error("archive write failed: {0}")]
    WriteFailed(String),
}

impl From<tokio_postgres::Error> for ArchiveError {
    fn from(e: tokio_postgres::Error) -> Self {
        ArchiveError::Store(e.into())
    }
}

impl From<deadpool_postgres::PoolError> for ArchiveError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        ArchiveError::Store(e.into())
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::{ArchiveRecord, Store};
    use crate::event::json::{EventDoc, MessageDoc};

    pub fn record(body: &str) -> ArchiveRecord {
        ArchiveRecord {
            seq: 0,
            plugin: "archiver".into(),
            appended_ms: 1_764_000_000_000,
            event: EventDoc {
                network: "xmpp".into(),
                message: Some(MessageDoc {
                    sender: "alice@corp.example".into(),
                    recipient: "bob@example.net".into(),
                    body: body.into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            verdict: None,
            annotations: Vec::new(),
        }
    }

    pub fn store_with(n: usize) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("a.db")).unwrap();
        let mut batch: Vec<_> = (0..n)
            .map(|i| record(&format!("message number {i}")))
            .collect();
        assert_eq!(store.append(&mut batch).unwrap().len(), n);
        (dir, store)
    }
}
