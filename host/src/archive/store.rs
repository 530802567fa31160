//! The archive's storage: SQLite in WAL mode with `synchronous = FULL`, one
//! row per record, hash-chained.
//!
//! Each record's `hash` is SHA-256 over the previous record's hash and the
//! record's canonical bytes (its JSON as [`ArchiveRecord`] serialises it),
//! so changing, removing or reordering any record breaks the chain at that
//! record. The searchable columns (participants, room, body, verdict, tags)
//! are copies taken from the canonical bytes; `verify` checks those too, so
//! a search cannot be fed altered data either.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::capabilities::archive::ArchiveRecord;
use crate::event::json::DirectionDoc;

pub type Hash = [u8; 32];

/// What goes in the searchable columns, taken from a record.
#[derive(Debug, PartialEq)]
struct Columns {
    appended_ms: u64,
    network: String,
    direction: String,
    kind: String,
    user: String,
    sender: Option<String>,
    recipient: Option<String>,
    room: Option<String>,
    action: Option<String>,
    tags: String,
    body: Option<String>,
}

fn columns(r: &ArchiveRecord) -> Columns {
    let e = &r.event;
    let (kind, sender, recipient, room, body) = if let Some(m) = &e.message {
        (
            "message",
            Some(m.sender.clone()),
            Some(m.recipient.clone()),
            m.room.clone(),
            Some(m.body.clone()),
        )
    } else if let Some(f) = &e.file_offer {
        (
            "file_offer",
            Some(f.sender.clone()),
            Some(f.recipient.clone()),
            None,
            Some(f.name.clone()),
        )
    } else if let Some(p) = &e.presence {
        (
            "presence",
            Some(p.sender.clone()),
            p.recipient.clone(),
            None,
            None,
        )
    } else if let Some(j) = &e.room_join {
        (
            "room_join",
            Some(j.occupant.clone()),
            None,
            Some(j.room.clone()),
            None,
        )
    } else if let Some(l) = &e.room_leave {
        (
            "room_leave",
            Some(l.occupant.clone()),
            None,
            Some(l.room.clone()),
            None,
        )
    } else if e.session_start.is_some() {
        ("session_start", None, None, None, None)
    } else {
        ("session_end", None, None, None, None)
    };
    let tags = r
        .verdict
        .as_ref()
        .map(|v| v.tags.clone())
        .unwrap_or_else(|| e.tags.clone());
    Columns {
        appended_ms: r.appended_ms,
        network: e.network.clone(),
        direction: match e.direction {
            DirectionDoc::Outbound => "outbound".into(),
            DirectionDoc::Inbound => "inbound".into(),
        },
        kind: kind.into(),
        user: e.session.user.clone(),
        sender,
        recipient,
        room,
        action: r.verdict.as_ref().map(|v| {
            serde_json::to_value(&v.action)
                .ok()
                .and_then(|a| a.get("action").and_then(|x| x.as_str()).map(str::to_owned))
                .unwrap_or_default()
        }),
        // Tags are stored `|a|b|`, so a tag is found with LIKE '%|tag|%'.
        tags: format!("|{}|", tags.join("|")),
        body,
    }
}

fn holds_of(conn: &Connection) -> rusqlite::Result<Vec<Hold>> {
    let mut stmt = conn
        .prepare("SELECT id, kind, value, reason, created_ms, created_by FROM holds ORDER BY id")?;
    let rows = stmt.query_map([], |row| {
        Ok(Hold {
            id: row.get(0)?,
            kind: row.get(1)?,
            value: row.get(2)?,
            reason: row.get(3)?,
            created_ms: row.get::<_, i64>(4)? as u64,
            created_by: row.get(5)?,
        })
    })?;
    rows.collect()
}

/// Where the chain ends: the last record's number and hash.
fn last_of(conn: &Connection) -> rusqlite::Result<(u64, Hash)> {
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
fn bytes(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<Vec<u8>> {
    use rusqlite::types::ValueRef;
    Ok(match row.get_ref(idx)? {
        ValueRef::Text(t) | ValueRef::Blob(t) => t.to_vec(),
        _ => Vec::new(),
    })
}

/// An entry the archive makes about itself, in the same chain as the
/// records: a retention purge, or a legal hold added or removed (the
/// audit-trail alternative of SEC 17a-4(f): who did what, when).
#[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct AuditEntry {
    pub seq: u64,
    /// `purge`, `hold-add`, `hold-remove`.
    pub entry: String,
    pub at_ms: u64,
    pub by: String,
    pub details: serde_json::Value,
}

fn audit_columns(a: &AuditEntry) -> Columns {
    Columns {
        appended_ms: a.at_ms,
        network: String::new(),
        direction: String::new(),
        kind: format!("audit:{}", a.entry),
        user: a.by.clone(),
        sender: None,
        recipient: None,
        room: None,
        action: None,
        tags: "||".into(),
        body: None,
    }
}

/// Inserts one row at `seq` after `prev`; returns its hash.
fn insert_row(
    tx: &rusqlite::Transaction<'_>,
    seq: u64,
    prev: &Hash,
    doc: &str,
    c: &Columns,
) -> Result<Hash, String> {
    let hash = chain(prev, doc.as_bytes());
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
    })
    .map_err(|e| e.to_string())?;
    if let Some(body) = &c.body {
        tx.prepare_cached("INSERT INTO records_fts (rowid, body) VALUES (?1, ?2)")
            .and_then(|mut fts| fts.execute(params![seq as i64, body]))
            .map_err(|e| e.to_string())?;
    }
    Ok(hash)
}

/// A legal hold: records of this user, or in this room, are never purged.
#[derive(Debug, PartialEq, serde::Serialize)]
pub struct Hold {
    pub id: i64,
    /// `user` or `room`.
    pub kind: String,
    pub value: String,
    pub reason: String,
    pub created_ms: u64,
    pub created_by: String,
}

/// What a purge did.
#[derive(Debug, PartialEq)]
pub struct PurgeReport {
    pub purged: usize,
    /// Past retention but kept by a legal hold.
    pub held: usize,
    /// The chain entry recording the purge (none when nothing was due).
    pub entry: Option<u64>,
}

fn chain(prev: &Hash, bytes: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(bytes);
    h.finalize().into()
}

pub fn hex(h: &[u8]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// The archive database.
pub struct Store {
    conn: Connection,
    last: (u64, Hash),
}

/// Why the chain does not verify, naming the first bad record.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("record {seq} is broken: {why}")]
pub struct Broken {
    pub seq: u64,
    pub why: String,
}

/// A verified archive.
#[derive(Debug, PartialEq)]
pub struct Verified {
    pub records: u64,
    pub last_hash: String,
}

const SCHEMA: &str = "
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
CREATE TABLE IF NOT EXISTS holds (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    created_by TEXT NOT NULL
);
";

impl Store {
    /// Opens or creates the archive at `path`.
    ///
    /// # Errors
    /// The file cannot be opened or is not an imgate archive.
    pub fn open(path: &Path) -> rusqlite::Result<Store> {
        let conn = Connection::open(path)?;
        // WAL with FULL sync: a committed transaction survives power loss
        // and kill -9; readers (search, verify) do not block the writer.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        let last = last_of(&conn)?;
        Ok(Store { conn, last })
    }

    /// Opens an existing archive to read (verify, search) while a gateway
    /// may be writing it.
    ///
    /// # Errors
    /// The file does not exist or is not an imgate archive.
    pub fn open_read_only(path: &Path) -> rusqlite::Result<Store> {
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Fails here, clearly, when the file is not an archive.
        conn.query_row("SELECT count(*) FROM records", [], |_| Ok(()))?;
        Ok(Store {
            conn,
            last: (0, [0; 32]),
        })
    }

    /// The next record's number.
    pub fn next_seq(&self) -> u64 {
        self.last.0 + 1
    }

    /// Appends `records` in one transaction, numbering and chaining them;
    /// durable when it returns `Ok`. Returns each record's number.
    ///
    /// # Errors
    /// Encoding or the database failed; nothing of the batch is kept.
    pub fn append(&mut self, records: &mut [ArchiveRecord]) -> Result<Vec<u64>, String> {
        // IMMEDIATE: take the write lock first, then read where the chain
        // ends — another process (`imgate archive purge`) may have added
        // entries since this connection last wrote.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| e.to_string())?;
        let (mut seq, mut prev) = last_of(&tx).map_err(|e| e.to_string())?;
        let mut seqs = Vec::with_capacity(records.len());
        for r in records.iter_mut() {
            seq += 1;
            r.seq = seq;
            let doc = serde_json::to_string(&*r).map_err(|e| e.to_string())?;
            prev = insert_row(&tx, seq, &prev, &doc, &columns(r))?;
            seqs.push(seq);
        }
        tx.commit().map_err(|e| e.to_string())?;
        self.last = (seq, prev);
        Ok(seqs)
    }

    fn audit(
        tx: &rusqlite::Transaction<'_>,
        entry: &str,
        by: &str,
        at_ms: u64,
        details: serde_json::Value,
    ) -> Result<(u64, Hash), String> {
        let (last, prev) = last_of(tx).map_err(|e| e.to_string())?;
        let a = AuditEntry {
            seq: last + 1,
            entry: entry.into(),
            at_ms,
            by: by.into(),
            details,
        };
        let doc = serde_json::to_string(&a).map_err(|e| e.to_string())?;
        let hash = insert_row(tx, a.seq, &prev, &doc, &audit_columns(&a))?;
        Ok((a.seq, hash))
    }

    /// Removes the contents (text, participants) of records older than
    /// their retention, except those under a legal hold. Each purged record
    /// keeps its number and hash, and one chain entry lists them all, so
    /// the chain still verifies and shows what was removed, when, by whom.
    ///
    /// # Errors
    /// The database failed; nothing was purged.
    pub fn purge(
        &mut self,
        now_ms: u64,
        retention_days: Option<u64>,
        per_network: &std::collections::BTreeMap<String, u64>,
        by: &str,
    ) -> Result<PurgeReport, String> {
        let err = |e: rusqlite::Error| e.to_string();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let holds = holds_of(&tx).map_err(err)?;
        let mut due = Vec::new();
        let mut held = 0;
        {
            let mut stmt = tx
                .prepare(
                    "SELECT seq, appended_ms, network, user, sender, recipient, room, body, hash \
                     FROM records WHERE doc IS NOT NULL AND kind NOT LIKE 'audit:%'",
                )
                .map_err(err)?;
            let mut rows = stmt.query([]).map_err(err)?;
            while let Some(row) = rows.next().map_err(err)? {
                let network: String = row.get(2).map_err(err)?;
                let Some(days) = per_network.get(&network).copied().or(retention_days) else {
                    continue;
                };
                let appended = row.get::<_, i64>(1).map_err(err)? as u64;
                if appended.saturating_add(days.saturating_mul(86_400_000)) > now_ms {
                    continue;
                }
                let people: Vec<Option<String>> = (3..=5)
                    .map(|i| row.get::<_, Option<String>>(i))
                    .collect::<rusqlite::Result<_>>()
                    .map_err(err)?;
                let room: Option<String> = row.get(6).map_err(err)?;
                let bare = |s: &str| s.split('/').next().unwrap_or(s).to_ascii_lowercase();
                let under_hold = holds.iter().any(|h| match h.kind.as_str() {
                    "user" => people.iter().flatten().any(|p| bare(p) == bare(&h.value)),
                    _ => room.as_deref().is_some_and(|r| bare(r) == bare(&h.value)),
                });
                if under_hold {
                    held += 1;
                    continue;
                }
                let seq = row.get::<_, i64>(0).map_err(err)?;
                let body: Option<String> = row.get(7).map_err(err)?;
                let hash: Vec<u8> = row.get(8).map_err(err)?;
                due.push((seq, body, hash));
            }
        }
        if due.is_empty() {
            return Ok(PurgeReport {
                purged: 0,
                held,
                entry: None,
            });
        }
        for (seq, body, _) in &due {
            if let Some(body) = body {
                tx.execute(
                    "INSERT INTO records_fts (records_fts, rowid, body) VALUES ('delete', ?1, ?2)",
                    params![seq, body],
                )
                .map_err(err)?;
            }
            tx.execute(
                "UPDATE records SET doc = NULL, body = NULL, user = '', sender = NULL, \
                 recipient = NULL, room = NULL, tags = '||' WHERE seq = ?1",
                params![seq],
            )
            .map_err(err)?;
        }
        let listed: Vec<serde_json::Value> = due
            .iter()
            .map(|(seq, _, hash)| serde_json::json!([seq, hex(hash)]))
            .collect();
        let details = serde_json::json!({
            "retention_days": retention_days,
            "per_network": per_network,
            "held": held,
            "purged": listed,
        });
        let (entry, _) = Store::audit(&tx, "purge", by, now_ms, details)?;
        tx.commit().map_err(err)?;
        Ok(PurgeReport {
            purged: due.len(),
            held,
            entry: Some(entry),
        })
    }

    /// Places a legal hold on a user's or a room's records.
    ///
    /// # Errors
    /// `kind` is not `user` or `room`, or the database failed.
    pub fn hold_add(
        &mut self,
        kind: &str,
        value: &str,
        reason: &str,
        by: &str,
        now_ms: u64,
    ) -> Result<i64, String> {
        if kind != "user" && kind != "room" {
            return Err(format!("a hold is on a user or a room, not `{kind}`"));
        }
        let err = |e: rusqlite::Error| e.to_string();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        tx.execute(
            "INSERT INTO holds (kind, value, reason, created_ms, created_by) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![kind, value, reason, now_ms as i64, by],
        )
        .map_err(err)?;
        let id = tx.last_insert_rowid();
        Store::audit(
            &tx,
            "hold-add",
            by,
            now_ms,
            serde_json::json!({"id": id, "kind": kind, "value": value, "reason": reason}),
        )?;
        tx.commit().map_err(err)?;
        Ok(id)
    }

    /// Lifts a legal hold.
    ///
    /// # Errors
    /// No such hold, or the database failed.
    pub fn hold_remove(&mut self, id: i64, by: &str, now_ms: u64) -> Result<Hold, String> {
        let err = |e: rusqlite::Error| e.to_string();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let hold = holds_of(&tx)
            .map_err(err)?
            .into_iter()
            .find(|h| h.id == id)
            .ok_or_else(|| format!("no hold {id}"))?;
        tx.execute("DELETE FROM holds WHERE id = ?1", params![id])
            .map_err(err)?;
        Store::audit(
            &tx,
            "hold-remove",
            by,
            now_ms,
            serde_json::json!({"id": id, "kind": hold.kind, "value": hold.value}),
        )?;
        tx.commit().map_err(err)?;
        Ok(hold)
    }

    /// The legal holds in force.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn holds(&self) -> rusqlite::Result<Vec<Hold>> {
        holds_of(&self.conn)
    }

    /// Walks the whole chain.
    ///
    /// # Errors
    /// The first record whose bytes, hash, link or columns do not hold.
    pub fn verify(&self) -> Result<Verified, Broken> {
        self.verify_heads(&Default::default()).map(|(v, _)| v)
    }

    /// [`Self::verify`], and then the chain against signed checkpoints:
    /// it must be at least as long as each, with the same hash at each
    /// one's count. This finds a cut-off end and a re-hashed chain, which
    /// a chain alone cannot.
    ///
    /// # Errors
    /// The first broken record, or the first checkpoint the chain fails.
    pub fn verify_anchored(
        &self,
        checkpoints: &[super::checkpoint::Checkpoint],
    ) -> Result<Verified, Broken> {
        let want = checkpoints.iter().map(|c| c.records).collect();
        let (verified, heads) = self.verify_heads(&want)?;
        for c in checkpoints {
            let when = super::export::rfc3339(c.time_ms);
            if c.records > verified.records {
                return Err(Broken {
                    seq: verified.records + 1,
                    why: format!(
                        "missing: the signed checkpoint of {when} says the archive held {} records, \
                         it holds {}: records were cut off its end",
                        c.records, verified.records
                    ),
                });
            }
            let actual = if c.records == 0 {
                hex(&[0; 32])
            } else {
                heads.get(&c.records).cloned().unwrap_or_default()
            };
            if actual != c.head {
                return Err(Broken {
                    seq: c.records,
                    why: format!(
                        "its hash {actual} differs from the signed checkpoint of {when} ({}): \
                         the chain was rewritten and re-hashed",
                        c.head
                    ),
                });
            }
        }
        Ok(verified)
    }

    /// The chain's head now: its record count and last hash, as a
    /// checkpoint states them. Read afresh, since another process (a
    /// purge) may have appended.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn head(&self) -> rusqlite::Result<(u64, String)> {
        let (seq, hash) = last_of(&self.conn)?;
        Ok((seq, hex(&hash)))
    }

    /// Keeps a checkpoint in the database too (the file is the anchor;
    /// this copy is for reading them alongside the records).
    ///
    /// # Errors
    /// The database cannot be written.
    pub fn add_checkpoint(&self, c: &super::checkpoint::Checkpoint) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT INTO checkpoints (records, time_ms, line) VALUES (?1, ?2, ?3)",
            rusqlite::params![c.records as i64, c.time_ms as i64, c.to_line().trim_end()],
        )?;
        Ok(())
    }

    /// The checkpoints kept in the database, oldest first.
    ///
    /// # Errors
    /// The database cannot be read, or a kept line is not a checkpoint.
    pub fn checkpoints(&self) -> rusqlite::Result<Vec<super::checkpoint::Checkpoint>> {
        let mut stmt = self
            .conn
            .prepare("SELECT line FROM checkpoints ORDER BY rowid")?;
        let lines = stmt.query_map([], |row| row.get::<_, String>(0))?;
        let mut out = Vec::new();
        for line in lines {
            let line = line?;
            out.push(serde_json::from_str(&line).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
            })?);
        }
        Ok(out)
    }

    /// Walks the chain, keeping the hash at each count in `want`.
    fn verify_heads(
        &self,
        want: &std::collections::BTreeSet<u64>,
    ) -> Result<(Verified, std::collections::BTreeMap<u64, String>), Broken> {
        let mut heads = std::collections::BTreeMap::new();
        let db = |e: rusqlite::Error| Broken {
            seq: 0,
            why: format!("cannot read the archive: {e}"),
        };
        let mut stmt = self
            .conn
            .prepare(
                "SELECT seq, appended_ms, network, direction, kind, user, sender, recipient, room, \
                 action, tags, body, doc, prev, hash FROM records ORDER BY seq",
            )
            .map_err(db)?;
        let mut rows = stmt.query([]).map_err(db)?;
        let mut prev: Hash = [0; 32];
        let mut expected_seq = 1u64;
        let mut count = 0;
        // Records without contents, waiting for the purge entry naming them.
        let mut pending: std::collections::BTreeMap<u64, String> = Default::default();
        while let Some(row) = rows.next().map_err(db)? {
            let seq = row.get::<_, i64>(0).map_err(db)? as u64;
            let broken = |why: String| Broken { seq, why };
            if seq != expected_seq {
                return Err(Broken {
                    seq: expected_seq,
                    why: format!("missing (the next record is {seq})"),
                });
            }
            let doc = bytes(row, 12).map_err(db)?;
            let purged = matches!(
                row.get_ref(12).map_err(db)?,
                rusqlite::types::ValueRef::Null
            );
            let stored_prev: Vec<u8> = row.get(13).map_err(db)?;
            let stored_hash: Vec<u8> = row.get(14).map_err(db)?;
            if stored_prev != prev {
                return Err(broken(
                    "its link to the record before does not match".into(),
                ));
            }
            if purged {
                // Its contents went in a purge; an entry later on must say so.
                pending.insert(seq, hex(&stored_hash));
            } else {
                if stored_hash != chain(&prev, &doc) {
                    return Err(broken("its contents do not match its hash".into()));
                }
                let value: serde_json::Value = serde_json::from_slice(&doc)
                    .map_err(|e| broken(format!("its contents are not a record: {e}")))?;
                let (doc_seq, expected) = if value.get("entry").is_some() {
                    let a: AuditEntry = serde_json::from_value(value)
                        .map_err(|e| broken(format!("its contents are not an entry: {e}")))?;
                    if a.entry == "purge" {
                        for item in a.details["purged"].as_array().into_iter().flatten() {
                            let (Some(s), Some(h)) = (item[0].as_u64(), item[1].as_str()) else {
                                return Err(broken(
                                    "a purge entry lists a malformed record".into(),
                                ));
                            };
                            if pending.remove(&s).is_none_or(|stored| stored != h) {
                                return Err(broken(format!(
                                    "it lists record {s} as purged, which is not (or with another hash)"
                                )));
                            }
                        }
                    }
                    (a.seq, audit_columns(&a))
                } else {
                    let record: ArchiveRecord = serde_json::from_value(value)
                        .map_err(|e| broken(format!("its contents are not a record: {e}")))?;
                    (record.seq, columns(&record))
                };
                if doc_seq != seq {
                    return Err(broken(format!("it says it is record {doc_seq}")));
                }
                let stored = Columns {
                    appended_ms: row.get::<_, i64>(1).map_err(db)? as u64,
                    network: row.get(2).map_err(db)?,
                    direction: row.get(3).map_err(db)?,
                    kind: row.get(4).map_err(db)?,
                    user: row.get(5).map_err(db)?,
                    sender: row.get(6).map_err(db)?,
                    recipient: row.get(7).map_err(db)?,
                    room: row.get(8).map_err(db)?,
                    action: row.get(9).map_err(db)?,
                    tags: row.get(10).map_err(db)?,
                    body: row.get(11).map_err(db)?,
                };
                if stored != expected {
                    return Err(broken(
                        "its searchable columns differ from its contents".into(),
                    ));
                }
            }
            prev = stored_hash.try_into().unwrap_or([0; 32]);
            if want.contains(&seq) {
                heads.insert(seq, hex(&prev));
            }
            expected_seq += 1;
            count += 1;
        }
        if let Some((&seq, _)) = pending.iter().next() {
            return Err(Broken {
                seq,
                why: "its contents are gone and no purge entry records it".into(),
            });
        }
        Ok((
            Verified {
                records: count,
                last_hash: hex(&prev),
            },
            heads,
        ))
    }

    /// Records matching `filter`, oldest first, as stored (canonical JSON).
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn search(&self, filter: &Filter) -> rusqlite::Result<Vec<serde_json::Value>> {
        Ok(self
            .select(filter)?
            .into_iter()
            .map(|r| serde_json::from_slice(&r.doc).unwrap_or(serde_json::Value::Null))
            .collect())
    }

    /// Records matching `filter` with their exact stored bytes and chain
    /// links, for export.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn select(&self, filter: &Filter) -> rusqlite::Result<Vec<Stored>> {
        let mut sql =
            String::from("SELECT seq, doc, prev, hash FROM records WHERE doc IS NOT NULL");
        let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
        if let Some(p) = &filter.participant {
            sql += " AND (user = ? OR sender = ? OR recipient = ?)";
            for _ in 0..3 {
                args.push(Box::new(p.clone()));
            }
        }
        if let Some(r) = &filter.room {
            sql += " AND room = ?";
            args.push(Box::new(r.clone()));
        }
        if let Some(t) = filter.since_ms {
            sql += " AND appended_ms >= ?";
            args.push(Box::new(t as i64));
        }
        if let Some(t) = filter.until_ms {
            sql += " AND appended_ms < ?";
            args.push(Box::new(t as i64));
        }
        if let Some(a) = &filter.action {
            sql += " AND action = ?";
            args.push(Box::new(a.clone()));
        }
        if let Some(t) = &filter.tag {
            sql += " AND tags LIKE ?";
            args.push(Box::new(format!("%|{t}|%")));
        }
        match &filter.kind {
            Some(k) => {
                sql += " AND kind = ?";
                args.push(Box::new(k.clone()));
            }
            // The archive's own entries (purges, holds) only when asked for.
            None => sql += " AND kind NOT LIKE 'audit:%'",
        }
        if let Some(q) = &filter.text {
            // With a participant or room the indexed rows are few: check
            // each against the full-text index by rowid. Alone, the text
            // query is the selective part: take its matches as a set.
            sql += if filter.participant.is_some() || filter.room.is_some() {
                " AND EXISTS (SELECT 1 FROM records_fts WHERE records_fts MATCH ? AND rowid = records.seq)"
            } else {
                " AND seq IN (SELECT rowid FROM records_fts WHERE records_fts MATCH ?)"
            };
            args.push(Box::new(q.clone()));
        }
        sql += " ORDER BY seq";
        if let Some(n) = filter.limit {
            sql += &format!(" LIMIT {n}");
        }
        let mut stmt = self.conn.prepare(&sql)?;
        let params: Vec<&dyn rusqlite::ToSql> = args.iter().map(|b| b.as_ref()).collect();
        let rows = stmt.query_map(params.as_slice(), |row| {
            Ok(Stored {
                seq: row.get::<_, i64>(0)? as u64,
                doc: bytes(row, 1)?,
                prev: bytes(row, 2)?,
                hash: bytes(row, 3)?,
            })
        })?;
        rows.collect()
    }
}

/// A record as stored: its canonical bytes and its links in the chain.
#[derive(Debug)]
pub struct Stored {
    pub seq: u64,
    pub doc: Vec<u8>,
    pub prev: Vec<u8>,
    pub hash: Vec<u8>,
}

/// What `search` selects; every field narrows.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// The session user, sender or recipient.
    pub participant: Option<String>,
    pub room: Option<String>,
    pub since_ms: Option<u64>,
    pub until_ms: Option<u64>,
    /// Full-text query (SQLite FTS5 syntax: words, "phrases", prefix*).
    pub text: Option<String>,
    pub tag: Option<String>,
    /// `allow`, `block`, `drop`, `rewrite`.
    pub action: Option<String>,
    /// `message`, `file_offer`, `session_start`...
    pub kind: Option<String>,
    pub limit: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::json::{EventDoc, MessageDoc};

    fn record(body: &str) -> ArchiveRecord {
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

    fn store_with(n: usize) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("a.db")).unwrap();
        let mut batch: Vec<_> = (0..n)
            .map(|i| record(&format!("message number {i}")))
            .collect();
        assert_eq!(store.append(&mut batch).unwrap().len(), n);
        (dir, store)
    }

    #[test]
    fn appends_chain_and_verify_and_survive_reopening() {
        let (dir, store) = store_with(5);
        let v = store.verify().unwrap();
        assert_eq!(v.records, 5);
        drop(store);
        let mut store = Store::open(&dir.path().join("a.db")).unwrap();
        assert_eq!(store.next_seq(), 6);
        store.append(&mut [record("after reopening")]).unwrap();
        assert_eq!(store.verify().unwrap().records, 6);
    }

    #[test]
    fn checkpoints_find_a_cut_off_end_and_a_rehashed_chain() {
        use crate::archive::checkpoint::Checkpointer;
        let key = crate::signing::generate().unwrap();
        let (dir, mut store) = store_with(5);
        let file = dir.path().join("cp.jsonl");
        let mut cp = Checkpointer::new(
            key.clone(),
            file.clone(),
            std::time::Duration::from_secs(60),
        );
        assert!(cp.write(&store, 1_000).unwrap().is_some());
        // Nothing new: no checkpoint.
        assert!(cp.write(&store, 2_000).unwrap().is_none());
        let mut more: Vec<_> = (0..5).map(|i| record(&format!("later {i}"))).collect();
        store.append(&mut more).unwrap();
        assert_eq!(cp.write(&store, 3_000).unwrap().unwrap().records, 10);
        let read =
            |f: &Path| crate::archive::checkpoint::read_file(f, &key.verifying_key()).unwrap();
        assert_eq!(store.verify_anchored(&read(&file)).unwrap().records, 10);
        assert_eq!(store.checkpoints().unwrap(), read(&file));

        // The last record cut off: the chain alone still holds.
        store
            .conn
            .execute("DELETE FROM records WHERE seq = 10", [])
            .unwrap();
        assert_eq!(store.verify().unwrap().records, 9);
        let e = store.verify_anchored(&read(&file)).unwrap_err();
        assert_eq!(e.seq, 10, "{e}");
        assert!(e.why.contains("cut off"), "{e}");

        // Record 3 edited and every later hash recomputed with plain SHA-256.
        let (dir, store) = store_with(6);
        let file = dir.path().join("cp.jsonl");
        Checkpointer::new(
            key.clone(),
            file.clone(),
            std::time::Duration::from_secs(60),
        )
        .write(&store, 1_000)
        .unwrap();
        let rows: Vec<(i64, String)> = store
            .conn
            .prepare("SELECT seq, doc FROM records ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        let mut prev: Hash = [0; 32];
        for (seq, doc) in rows {
            let doc = if seq == 3 {
                doc.replace("number 2", "number X")
            } else {
                doc
            };
            let hash = chain(&prev, doc.as_bytes());
            let body = if seq == 3 {
                "message number X".to_string()
            } else {
                format!("message number {}", seq - 1)
            };
            store
                .conn
                .execute(
                    "UPDATE records SET doc = ?1, body = ?2, prev = ?3, hash = ?4 WHERE seq = ?5",
                    rusqlite::params![doc, body, prev.to_vec(), hash.to_vec(), seq],
                )
                .unwrap();
            prev = hash;
        }
        assert_eq!(store.verify().unwrap().records, 6);
        let e = store.verify_anchored(&read(&file)).unwrap_err();
        assert_eq!(e.seq, 6, "{e}");
        assert!(e.why.contains("re-hashed"), "{e}");
    }

    #[test]
    fn any_change_is_found_and_named() {
        let (_dir, store) = store_with(5);
        store
            .conn
            .execute(
                "UPDATE records SET doc = replace(doc, 'number 2', 'number 7') WHERE seq = 3",
                [],
            )
            .unwrap();
        assert_eq!(store.verify().unwrap_err().seq, 3);

        let (_dir, store) = store_with(5);
        store
            .conn
            .execute(
                "UPDATE records SET body = 'nothing to see' WHERE seq = 4",
                [],
            )
            .unwrap();
        let e = store.verify().unwrap_err();
        assert_eq!((e.seq, e.why.contains("searchable")), (4, true));

        let (_dir, store) = store_with(5);
        store
            .conn
            .execute("DELETE FROM records WHERE seq = 2", [])
            .unwrap();
        assert_eq!(store.verify().unwrap_err().seq, 2);
    }

    #[test]
    fn purges_keep_the_chain_whole_and_respect_legal_holds() {
        let (_dir, mut store) = store_with(4);
        let mut carol = record("carol's message");
        carol.event.message.as_mut().unwrap().sender = "carol@corp.example".into();
        store.append(&mut [carol]).unwrap();
        let hold = store
            .hold_add("user", "carol@corp.example", "case 42", "legal", 1)
            .unwrap();
        let later = 1_764_000_000_000 + 8 * 86_400_000;
        let report = store
            .purge(later, Some(7), &Default::default(), "retention job")
            .unwrap();
        assert_eq!((report.purged, report.held), (4, 1));
        let v = store.verify().unwrap();
        assert_eq!(v.records, 7, "5 records, a hold and a purge entry");
        let left = store.search(&Filter::default()).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0]["event"]["message"]["body"], "carol's message");
        let purges = store
            .search(&Filter {
                kind: Some("audit:purge".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(purges[0]["details"]["purged"].as_array().unwrap().len(), 4);
        // Text search no longer finds purged text.
        let hits = store
            .search(&Filter {
                text: Some("number".into()),
                ..Default::default()
            })
            .unwrap();
        assert!(hits.is_empty());
        // Lifting the hold lets the next purge take carol's record too.
        store.hold_remove(hold, "legal", 2).unwrap();
        assert_eq!(
            store
                .purge(later, Some(7), &Default::default(), "job")
                .unwrap()
                .purged,
            1
        );
        assert!(store.verify().is_ok());
        // Contents removed behind the chain's back are caught.
        store
            .conn
            .execute(
                "UPDATE records SET doc = NULL WHERE kind = 'audit:hold-add'",
                [],
            )
            .unwrap();
        assert!(store.verify().is_err());
    }

    #[test]
    fn search_by_participant_and_full_text() {
        let (_dir, mut store) = store_with(3);
        let mut other = record("quarterly results are confidential");
        other.event.message.as_mut().unwrap().sender = "carol@corp.example".into();
        store.append(&mut [other]).unwrap();
        let hits = store
            .search(&Filter {
                text: Some("confidential".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0]["seq"], 4);
        let carol = store
            .search(&Filter {
                participant: Some("carol@corp.example".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(carol.len(), 1);
        let numbered = store
            .search(&Filter {
                text: Some("number".into()),
                limit: Some(2),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(numbered.len(), 2);
    }

    /// Text with a participant or a room is checked row by row against the
    /// full-text index; the answers must be those of the set form.
    #[test]
    fn full_text_combined_with_participant_or_room() {
        let (_dir, mut store) = store_with(3);
        let mut batch: Vec<_> = ["the merger is on", "merger talk", "lunch?"]
            .iter()
            .enumerate()
            .map(|(i, body)| {
                let mut r = record(body);
                let m = r.event.message.as_mut().unwrap();
                m.sender = "carol@corp.example".into();
                if i > 0 {
                    m.room = Some("deals@conference.corp.example".into());
                }
                r
            })
            .collect();
        store.append(&mut batch).unwrap();
        let seqs = |f: Filter| -> Vec<u64> {
            store
                .search(&f)
                .unwrap()
                .iter()
                .map(|h| h["seq"].as_u64().unwrap())
                .collect()
        };
        let text = || Some("merger".to_string());
        assert_eq!(
            seqs(Filter {
                text: text(),
                ..Default::default()
            }),
            [4, 5]
        );
        let carol = Some("carol@corp.example".to_string());
        assert_eq!(
            seqs(Filter {
                text: text(),
                participant: carol.clone(),
                ..Default::default()
            }),
            [4, 5]
        );
        let room = Some("deals@conference.corp.example".to_string());
        assert_eq!(
            seqs(Filter {
                text: text(),
                room: room.clone(),
                ..Default::default()
            }),
            [5]
        );
        let alice = Some("alice@corp.example".to_string());
        assert!(
            seqs(Filter {
                text: text(),
                participant: alice,
                ..Default::default()
            })
            .is_empty()
        );
        assert_eq!(
            seqs(Filter {
                text: Some("lunch".into()),
                participant: carol,
                room,
                ..Default::default()
            }),
            [6]
        );
    }
}
