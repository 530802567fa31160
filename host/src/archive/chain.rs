//! The hash chain: appending records in order, and verifying that nothing
//! was changed, removed, reordered, cut off or re-hashed.
//!
//! Each record's `hash` is SHA-256 over the previous record's hash and the
//! record's canonical bytes (its JSON as [`ArchiveRecord`] serialises it),
//! so changing, removing or reordering any record breaks the chain at that
//! record. The searchable columns are copies taken from the canonical
//! bytes; `verify` checks those too, so a search cannot be fed altered data
//! either. Signed checkpoints anchor the head (see `checkpoint`).

use std::collections::{BTreeMap, BTreeSet};

use super::checkpoint::Checkpoint;
use super::record::{ArchiveRecord, Columns, Entry, audit_columns, columns};
use super::schema::{Db, Hash, bytes, insert_row, last_of, link};
use super::{ArchiveError, Store, postgres};
use crate::util::hex::encode;

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

/// Appends `records` inside `tx` (which holds the write lock), numbering
/// and chaining them from where the chain ends. Returns their numbers and
/// the new head.
///
/// # Errors
/// Encoding or the database failed.
pub(super) fn append_in(
    tx: &rusqlite::Transaction<'_>,
    records: &mut [ArchiveRecord],
) -> Result<(Vec<u64>, (u64, Hash)), ArchiveError> {
    let (mut seq, mut prev) = last_of(tx)?;
    let mut seqs = Vec::with_capacity(records.len());
    for r in records.iter_mut() {
        seq += 1;
        r.seq = seq;
        let doc = serde_json::to_string(&*r)?;
        prev = insert_row(tx, seq, &prev, &doc, &columns(r))?;
        seqs.push(seq);
    }
    Ok((seqs, (seq, prev)))
}

/// One chain entry as stored, for verifying.
pub(super) struct StoredRow {
    pub seq: u64,
    pub columns: Columns,
    /// `None` once purged.
    pub doc: Option<Vec<u8>>,
    pub prev: Vec<u8>,
    pub hash: Vec<u8>,
}

/// Walks the chain in order, one stored entry at a time, checking each
/// against the one before; the same walk for either backend.
pub(super) struct Walk<'a> {
    want: &'a BTreeSet<u64>,
    heads: BTreeMap<u64, String>,
    prev: Hash,
    expected_seq: u64,
    count: u64,
    /// Records without contents, waiting for the purge entry naming them.
    pending: BTreeMap<u64, String>,
    /// Columns as PostgreSQL keeps them (no NUL).
    postgres: bool,
}

impl<'a> Walk<'a> {
    /// A walk keeping the hash at each count in `want`.
    pub fn new(want: &'a BTreeSet<u64>, postgres: bool) -> Self {
        Walk {
            postgres,
            want,
            heads: BTreeMap::new(),
            prev: [0; 32],
            expected_seq: 1,
            count: 0,
            pending: BTreeMap::new(),
        }
    }

    /// Checks the next entry.
    ///
    /// # Errors
    /// What is wrong with it.
    pub fn step(&mut self, row: StoredRow) -> Result<(), Broken> {
        let seq = row.seq;
        let broken = |why: String| Broken { seq, why };
        if seq != self.expected_seq {
            return Err(Broken {
                seq: self.expected_seq,
                why: format!("missing (the next record is {seq})"),
            });
        }
        if row.prev != self.prev {
            return Err(broken(
                "its link to the record before does not match".into(),
            ));
        }
        match &row.doc {
            // Its contents went in a purge; an entry later on must say so.
            None => {
                self.pending.insert(seq, encode(&row.hash));
            }
            Some(doc) => {
                if row.hash != link(&self.prev, doc) {
                    return Err(broken("its contents do not match its hash".into()));
                }
                let entry = Entry::parse(doc)
                    .map_err(|e| broken(format!("its contents are not a record: {e}")))?;
                let (doc_seq, expected) = match entry {
                    Entry::Audit(a) => {
                        if a.entry == "purge" {
                            for item in a.details["purged"].as_array().into_iter().flatten() {
                                let (Some(s), Some(h)) = (item[0].as_u64(), item[1].as_str())
                                else {
                                    return Err(broken(
                                        "a purge entry lists a malformed record".into(),
                                    ));
                                };
                                if self.pending.remove(&s).is_none_or(|stored| stored != h) {
                                    return Err(broken(format!(
                                        "it lists record {s} as purged, which is not (or with another hash)"
                                    )));
                                }
                            }
                        }
                        (a.seq, audit_columns(&a))
                    }
                    Entry::Record(record) => (record.seq, columns(&record)),
                };
                if doc_seq != seq {
                    return Err(broken(format!("it says it is record {doc_seq}")));
                }
                let expected = if self.postgres {
                    expected.for_postgres()
                } else {
                    expected
                };
                if row.columns != expected {
                    return Err(broken(
                        "its searchable columns differ from its contents".into(),
                    ));
                }
            }
        }
        self.prev = row.hash.try_into().unwrap_or([0; 32]);
        if self.want.contains(&seq) {
            self.heads.insert(seq, encode(&self.prev));
        }
        self.expected_seq += 1;
        self.count += 1;
        Ok(())
    }

    /// The end of the chain.
    ///
    /// # Errors
    /// A purged record no purge entry names.
    pub fn finish(self) -> Result<(Verified, BTreeMap<u64, String>), Broken> {
        if let Some((&seq, _)) = self.pending.iter().next() {
            return Err(Broken {
                seq,
                why: "its contents are gone and no purge entry records it".into(),
            });
        }
        Ok((
            Verified {
                records: self.count,
                last_hash: encode(&self.prev),
            },
            self.heads,
        ))
    }
}

/// A database failure while verifying, as the first unreadable entry.
pub(super) fn unreadable(e: impl std::fmt::Display) -> Broken {
    Broken {
        seq: 0,
        why: format!("cannot read the archive: {e}"),
    }
}

impl Store {
    /// Appends `records` in one transaction, numbering and chaining them;
    /// durable when it returns `Ok`. Returns each record's number.
    ///
    /// # Errors
    /// Encoding or the database failed; nothing of the batch is kept.
    pub fn append(&mut self, records: &mut [ArchiveRecord]) -> Result<Vec<u64>, ArchiveError> {
        let (seqs, last) = match &mut self.db {
            Db::Sqlite(conn) => {
                // IMMEDIATE: take the write lock first, then read where the
                // chain ends — another process (`imgate archive purge`) may
                // have added entries since this connection last wrote.
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let out = append_in(&tx, records)?;
                tx.commit()?;
                out
            }
            Db::Postgres(pg) => pg.run(postgres::append(pg, records))?,
        };
        self.last = last;
        Ok(seqs)
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
    pub fn verify_anchored(&self, checkpoints: &[Checkpoint]) -> Result<Verified, Broken> {
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
                encode(&[0; 32])
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
    /// purge, another gateway) may have appended.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn head(&self) -> Result<(u64, String), ArchiveError> {
        let (seq, hash) = match &self.db {
            Db::Sqlite(conn) => last_of(conn)?,
            Db::Postgres(pg) => pg.run(postgres::head(pg))?,
        };
        Ok((seq, encode(&hash)))
    }

    /// Keeps a checkpoint in the database too (the file is the anchor;
    /// this copy is for reading them alongside the records).
    ///
    /// # Errors
    /// The database cannot be written.
    pub fn add_checkpoint(&self, c: &Checkpoint) -> Result<(), ArchiveError> {
        let line = c.to_line();
        match &self.db {
            Db::Sqlite(conn) => {
                conn.execute(
                    "INSERT INTO checkpoints (records, time_ms, line) VALUES (?1, ?2, ?3)",
                    rusqlite::params![c.records as i64, c.time_ms as i64, line.trim_end()],
                )?;
            }
            Db::Postgres(pg) => pg.run(postgres::add_checkpoint(pg, c, line.trim_end()))?,
        }
        Ok(())
    }

    /// The checkpoints kept in the database, oldest first.
    ///
    /// # Errors
    /// The database cannot be read, or a kept line is not a checkpoint.
    pub fn checkpoints(&self) -> Result<Vec<Checkpoint>, ArchiveError> {
        let lines: Vec<String> = match &self.db {
            Db::Sqlite(conn) => conn
                .prepare("SELECT line FROM checkpoints ORDER BY rowid")?
                .query_map([], |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<_>>()?,
            Db::Postgres(pg) => pg.run(postgres::checkpoint_lines(pg))?,
        };
        let mut out = Vec::new();
        for line in lines {
            out.push(serde_json::from_str(&line)?);
        }
        Ok(out)
    }

    /// Walks the chain, keeping the hash at each count in `want`.
    fn verify_heads(
        &self,
        want: &BTreeSet<u64>,
    ) -> Result<(Verified, BTreeMap<u64, String>), Broken> {
        let mut walk = Walk::new(want, matches!(self.db, Db::Postgres(_)));
        match &self.db {
            Db::Sqlite(conn) => {
                let mut stmt = conn
                    .prepare(
                        "SELECT seq, appended_ms, network, direction, kind, user, sender, recipient, room, \
                         action, tags, body, doc, prev, hash FROM records ORDER BY seq",
                    )
                    .map_err(unreadable)?;
                let mut rows = stmt.query([]).map_err(unreadable)?;
                while let Some(row) = rows.next().map_err(unreadable)? {
                    walk.step(stored_row(row).map_err(unreadable)?)?;
                }
            }
            Db::Postgres(pg) => {
                let mut after = 0;
                loop {
                    let rows = pg
                        .run(postgres::rows_after(pg, after, 5_000))
                        .map_err(unreadable)?;
                    let Some(last) = rows.last() else { break };
                    after = last.seq;
                    for row in rows {
                        walk.step(row)?;
                    }
                }
            }
        }
        walk.finish()
    }
}

fn stored_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRow> {
    let purged = matches!(row.get_ref(12)?, rusqlite::types::ValueRef::Null);
    Ok(StoredRow {
        seq: row.get::<_, i64>(0)? as u64,
        columns: Columns {
            appended_ms: row.get::<_, i64>(1)? as u64,
            network: row.get(2)?,
            direction: row.get(3)?,
            kind: row.get(4)?,
            user: row.get(5)?,
            sender: row.get(6)?,
            recipient: row.get(7)?,
            room: row.get(8)?,
            action: row.get(9)?,
            tags: row.get(10)?,
            body: row.get(11)?,
        },
        doc: (!purged).then(|| bytes(row, 12)).transpose()?,
        prev: row.get(13)?,
        hash: row.get(14)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::testing::{record, store_with};

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
        let read = |f: &std::path::Path| {
            crate::archive::checkpoint::read_file(f, &key.verifying_key()).unwrap()
        };
        assert_eq!(store.verify_anchored(&read(&file)).unwrap().records, 10);
        assert_eq!(store.checkpoints().unwrap(), read(&file));

        // The last record cut off: the chain alone still holds.
        store
            .sqlite()
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
            .sqlite()
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
            let hash = link(&prev, doc.as_bytes());
            let body = if seq == 3 {
                "message number X".to_string()
            } else {
                format!("message number {}", seq - 1)
            };
            store
                .sqlite()
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
            .sqlite()
            .execute(
                "UPDATE records SET doc = replace(doc, 'number 2', 'number 7') WHERE seq = 3",
                [],
            )
            .unwrap();
        assert_eq!(store.verify().unwrap_err().seq, 3);

        let (_dir, store) = store_with(5);
        store
            .sqlite()
            .execute(
                "UPDATE records SET body = 'nothing to see' WHERE seq = 4",
                [],
            )
            .unwrap();
        let e = store.verify().unwrap_err();
        assert_eq!((e.seq, e.why.contains("searchable")), (4, true));

        let (_dir, store) = store_with(5);
        store
            .sqlite()
            .execute("DELETE FROM records WHERE seq = 2", [])
            .unwrap();
        assert_eq!(store.verify().unwrap_err().seq, 2);
    }
}
