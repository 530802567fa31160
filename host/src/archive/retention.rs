//! Retention and legal holds: purging the contents of records past their
//! time, except what a hold keeps, with every purge and hold change
//! recorded in the chain itself.

use rusqlite::{Connection, params};

use super::schema::Db;
use super::{ArchiveError, Store};
use crate::util::hex::encode;

/// A legal hold: records of this user, or in this room, are never purged.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
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

/// Which records a purge removes: those past their network's retention
/// that no legal hold covers. The same rules on either backend.
pub(super) struct Retention<'a> {
    pub now_ms: u64,
    pub retention_days: Option<u64>,
    pub per_network: &'a std::collections::BTreeMap<String, u64>,
    pub holds: Vec<Hold>,
}

impl Retention<'_> {
    pub fn days_for(&self, network: &str) -> Option<u64> {
        self.per_network
            .get(network)
            .copied()
            .or(self.retention_days)
    }

    /// Whether something on `network` made at `at_ms` is past retention.
    pub fn past(&self, network: &str, at_ms: u64) -> bool {
        self.days_for(network)
            .is_some_and(|d| at_ms.saturating_add(d.saturating_mul(86_400_000)) <= self.now_ms)
    }

    /// Whether a legal hold covers these people or rooms.
    pub fn held(&self, people: &[Option<&str>], rooms: &[&str]) -> bool {
        let bare = |s: &str| s.split('/').next().unwrap_or(s).to_ascii_lowercase();
        self.holds.iter().any(|h| match h.kind.as_str() {
            "user" => people.iter().flatten().any(|p| bare(p) == bare(&h.value)),
            _ => rooms.iter().any(|r| bare(r) == bare(&h.value)),
        })
    }

    /// The purge's chain entry: what went, and the rules it went by.
    pub fn details(
        &self,
        held: usize,
        due: &[(i64, Vec<u8>)],
        bridged: usize,
    ) -> serde_json::Value {
        let listed: Vec<serde_json::Value> = due
            .iter()
            .map(|(seq, hash)| serde_json::json!([seq, encode(hash)]))
            .collect();
        serde_json::json!({
            "retention_days": self.retention_days,
            "per_network": self.per_network,
            "held": held,
            "purged": listed,
            "bridge_copies": bridged,
        })
    }
}

impl Store {
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
    ) -> Result<PurgeReport, ArchiveError> {
        let rules = Retention {
            now_ms,
            retention_days,
            per_network,
            holds: Vec::new(),
        };
        let conn = match &mut self.db {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => return pg.run(super::postgres::purge(pg, rules, by)),
        };
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let rules = Retention {
            holds: holds_of(&tx)?,
            ..rules
        };
        let mut due = Vec::new();
        let mut held = 0;
        {
            let mut stmt = tx.prepare(
                "SELECT seq, appended_ms, network, user, sender, recipient, room, body, hash \
                     FROM records WHERE doc IS NOT NULL AND kind NOT LIKE 'audit:%'",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let network: String = row.get(2)?;
                if !rules.past(&network, row.get::<_, i64>(1)? as u64) {
                    continue;
                }
                let people: Vec<Option<String>> = (3..=5)
                    .map(|i| row.get::<_, Option<String>>(i))
                    .collect::<rusqlite::Result<_>>()?;
                let people: Vec<Option<&str>> = people.iter().map(Option::as_deref).collect();
                let room: Option<String> = row.get(6)?;
                let rooms: Vec<&str> = room.as_deref().into_iter().collect();
                if rules.held(&people, &rooms) {
                    held += 1;
                    continue;
                }
                let seq = row.get::<_, i64>(0)?;
                let body: Option<String> = row.get(7)?;
                let hash: Vec<u8> = row.get(8)?;
                due.push((seq, body, hash));
            }
        }
        let bridged = super::bridge_map::purge(&tx, &rules)?;
        if due.is_empty() && bridged == 0 {
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
                )?;
            }
            tx.execute(
                "UPDATE records SET doc = NULL, body = NULL, user = '', sender = NULL, \
                 recipient = NULL, room = NULL, tags = '||' WHERE seq = ?1",
                params![seq],
            )?;
        }
        let listed: Vec<(i64, Vec<u8>)> = due.into_iter().map(|(s, _, h)| (s, h)).collect();
        let details = rules.details(held, &listed, bridged);
        let (entry, _) = Store::audit(&tx, "purge", by, now_ms, details)?;
        tx.commit()?;
        Ok(PurgeReport {
            purged: listed.len(),
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
    ) -> Result<i64, ArchiveError> {
        if kind != "user" && kind != "room" {
            return Err(ArchiveError::HoldKind(kind.to_owned()));
        }
        let conn = match &mut self.db {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => {
                return pg.run(super::postgres::hold_add(
                    pg, kind, value, reason, by, now_ms,
                ));
            }
        };
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO holds (kind, value, reason, created_ms, created_by) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![kind, value, reason, now_ms as i64, by],
        )?;
        let id = tx.last_insert_rowid();
        Store::audit(
            &tx,
            "hold-add",
            by,
            now_ms,
            hold_added(id, kind, value, reason),
        )?;
        tx.commit()?;
        Ok(id)
    }

    /// Lifts a legal hold.
    ///
    /// # Errors
    /// No such hold, or the database failed.
    pub fn hold_remove(&mut self, id: i64, by: &str, now_ms: u64) -> Result<Hold, ArchiveError> {
        let conn = match &mut self.db {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => return pg.run(super::postgres::hold_remove(pg, id, by, now_ms)),
        };
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let hold = holds_of(&tx)?
            .into_iter()
            .find(|h| h.id == id)
            .ok_or(ArchiveError::NoHold(id))?;
        tx.execute("DELETE FROM holds WHERE id = ?1", params![id])?;
        Store::audit(&tx, "hold-remove", by, now_ms, hold_removed(&hold))?;
        tx.commit()?;
        Ok(hold)
    }

    /// The legal holds in force.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn holds(&self) -> Result<Vec<Hold>, ArchiveError> {
        match &self.db {
            Db::Sqlite(conn) => Ok(holds_of(conn)?),
            Db::Postgres(pg) => pg.run(super::postgres::holds(pg)),
        }
    }
}

/// The chain entry's details for a hold placed.
pub(super) fn hold_added(id: i64, kind: &str, value: &str, reason: &str) -> serde_json::Value {
    serde_json::json!({"id": id, "kind": kind, "value": value, "reason": reason})
}

/// The chain entry's details for a hold lifted.
pub(super) fn hold_removed(hold: &Hold) -> serde_json::Value {
    serde_json::json!({"id": hold.id, "kind": hold.kind, "value": hold.value})
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

#[cfg(test)]
mod tests {
    use crate::archive::testing::{record, store_with};
    use crate::archive::{Entry, Filter};

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
        let Entry::Record(kept) = &left[0] else {
            panic!("not a record: {:?}", left[0])
        };
        assert_eq!(
            kept.event.message.as_ref().map(|m| m.body.as_str()),
            Some("carol's message")
        );
        let purges = store
            .search(&Filter {
                kind: Some("audit:purge".into()),
                ..Default::default()
            })
            .unwrap();
        let Entry::Audit(purge) = &purges[0] else {
            panic!("not an audit entry: {:?}", purges[0])
        };
        assert_eq!(purge.details["purged"].as_array().unwrap().len(), 4);
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
            .sqlite()
            .execute(
                "UPDATE records SET doc = NULL WHERE kind = 'audit:hold-add'",
                [],
            )
            .unwrap();
        assert!(store.verify().is_err());
    }
}
