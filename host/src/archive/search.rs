//! Finding records: by participant, room, time, verdict, tag, kind and
//! full text (FTS5), with the exact stored bytes for export.

use super::record::Entry;
use super::schema::{Db, bytes};
use super::{ArchiveError, Store};

impl Store {
    /// Entries matching `filter`, oldest first.
    ///
    /// # Errors
    /// The database cannot be read, or a stored entry is not one (run
    /// `imgate archive verify`).
    pub fn search(&self, filter: &Filter) -> Result<Vec<Entry>, ArchiveError> {
        self.select(filter)?
            .iter()
            .map(|r| {
                Entry::parse(&r.doc).map_err(|e| ArchiveError::Unreadable {
                    seq: r.seq,
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// Records matching `filter` with their exact stored bytes and chain
    /// links, for export.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn select(&self, filter: &Filter) -> Result<Vec<Stored>, ArchiveError> {
        let conn = match &self.db {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => return pg.run(super::postgres::select(pg, filter)),
        };
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
        if let Some(w) = &filter.with {
            // A conversation between two: either one wrote to the other.
            let p = filter.participant.clone().unwrap_or_default();
            sql += " AND ((sender = ? AND recipient = ?) OR (sender = ? AND recipient = ?))";
            for v in [p.clone(), w.clone(), w.clone(), p] {
                args.push(Box::new(v));
            }
        }
        if let Some(n) = &filter.network {
            sql += " AND network = ?";
            args.push(Box::new(n.clone()));
        }
        if let Some(s) = filter.after_seq {
            sql += " AND seq > ?";
            args.push(Box::new(s as i64));
        }
        if let Some(s) = filter.before_seq {
            sql += " AND seq < ?";
            args.push(Box::new(s as i64));
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
            // The first term lets the partial index of tagged records serve.
            sql += " AND tags <> '||' AND tags LIKE ?";
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
        sql += if filter.newest_first {
            " ORDER BY seq DESC"
        } else {
            " ORDER BY seq"
        };
        if let Some(n) = filter.limit {
            sql += &format!(" LIMIT {n}");
        }
        let mut stmt = conn.prepare(&sql)?;
        let params: Vec<&dyn rusqlite::ToSql> = args.iter().map(|b| b.as_ref()).collect();
        let rows = stmt.query_map(params.as_slice(), |row| {
            Ok(Stored {
                seq: row.get::<_, i64>(0)? as u64,
                doc: bytes(row, 1)?,
                prev: bytes(row, 2)?,
                hash: bytes(row, 3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
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
    /// Full-text query: on SQLite FTS5 syntax (words, "phrases",
    /// prefix*); on PostgreSQL web-search syntax (words, "phrases", or,
    /// -word), matched without stemming.
    pub text: Option<String>,
    pub tag: Option<String>,
    /// `allow`, `block`, `drop`, `rewrite`.
    pub action: Option<String>,
    /// `message`, `file_offer`, `session_start`...
    pub kind: Option<String>,
    pub limit: Option<usize>,
    /// `xmpp`, `irc`, `matrix`.
    pub network: Option<String>,
    /// With `participant`: only what passed between the two of them.
    pub with: Option<String>,
    /// Entries numbered above this one (paging).
    pub after_seq: Option<u64>,
    /// Entries numbered below this one (paging).
    pub before_seq: Option<u64>,
    /// The newest first (and `limit` takes the newest).
    pub newest_first: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::testing::{record, store_with};

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
        assert_eq!(hits[0].seq(), 4);
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
        let seqs =
            |f: Filter| -> Vec<u64> { store.search(&f).unwrap().iter().map(Entry::seq).collect() };
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
