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

/// A column's bytes whether SQLite holds it as text or as a blob (an
/// edit made with SQL may change which).
fn bytes(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<Vec<u8>> {
    use rusqlite::types::ValueRef;
    Ok(match row.get_ref(idx)? {
        ValueRef::Text(t) | ValueRef::Blob(t) => t.to_vec(),
        _ => Vec::new(),
    })
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
    doc TEXT NOT NULL,
    prev BLOB NOT NULL,
    hash BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS records_time ON records(appended_ms);
CREATE INDEX IF NOT EXISTS records_user ON records(user);
CREATE INDEX IF NOT EXISTS records_sender ON records(sender);
CREATE INDEX IF NOT EXISTS records_recipient ON records(recipient);
CREATE INDEX IF NOT EXISTS records_room ON records(room);
CREATE VIRTUAL TABLE IF NOT EXISTS records_fts USING fts5(body, content='records', content_rowid='seq');
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
        let last = conn
            .query_row(
                "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1",
                [],
                |row| Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?)),
            )
            .optional()?;
        let last = match last {
            Some((seq, hash)) => (seq as u64, hash.try_into().unwrap_or([0; 32])),
            None => (0, [0; 32]),
        };
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
        let tx = self.conn.transaction().map_err(|e| e.to_string())?;
        let (mut seq, mut prev) = self.last;
        let mut seqs = Vec::with_capacity(records.len());
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO records (seq, appended_ms, network, direction, kind, user, sender, \
                     recipient, room, action, tags, body, doc, prev, hash) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                )
                .map_err(|e| e.to_string())?;
            let mut fts = tx
                .prepare_cached("INSERT INTO records_fts (rowid, body) VALUES (?1, ?2)")
                .map_err(|e| e.to_string())?;
            for r in records.iter_mut() {
                seq += 1;
                r.seq = seq;
                let doc = serde_json::to_string(&*r).map_err(|e| e.to_string())?;
                let hash = chain(&prev, doc.as_bytes());
                let c = columns(r);
                insert
                    .execute(params![
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
                    .map_err(|e| e.to_string())?;
                if let Some(body) = &c.body {
                    fts.execute(params![seq as i64, body])
                        .map_err(|e| e.to_string())?;
                }
                prev = hash;
                seqs.push(seq);
            }
        }
        tx.commit().map_err(|e| e.to_string())?;
        self.last = (seq, prev);
        Ok(seqs)
    }

    /// Walks the whole chain.
    ///
    /// # Errors
    /// The first record whose bytes, hash, link or columns do not hold.
    pub fn verify(&self) -> Result<Verified, Broken> {
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
            let stored_prev: Vec<u8> = row.get(13).map_err(db)?;
            let stored_hash: Vec<u8> = row.get(14).map_err(db)?;
            if stored_prev != prev {
                return Err(broken(
                    "its link to the record before does not match".into(),
                ));
            }
            if stored_hash != chain(&prev, &doc) {
                return Err(broken("its contents do not match its hash".into()));
            }
            let record: ArchiveRecord = serde_json::from_slice(&doc)
                .map_err(|e| broken(format!("its contents are not a record: {e}")))?;
            if record.seq != seq {
                return Err(broken(format!("it says it is record {}", record.seq)));
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
            if stored != columns(&record) {
                return Err(broken(
                    "its searchable columns differ from its contents".into(),
                ));
            }
            prev = stored_hash.try_into().unwrap_or([0; 32]);
            expected_seq += 1;
            count += 1;
        }
        Ok(Verified {
            records: count,
            last_hash: hex(&prev),
        })
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
        let mut sql = String::from("SELECT seq, doc, prev, hash FROM records WHERE 1=1");
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
        if let Some(k) = &filter.kind {
            sql += " AND kind = ?";
            args.push(Box::new(k.clone()));
        }
        if let Some(q) = &filter.text {
            sql += " AND seq IN (SELECT rowid FROM records_fts WHERE records_fts MATCH ?)";
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
}
