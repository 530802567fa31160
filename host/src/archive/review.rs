//! Messages held for review (a plugin's `hold`): kept from delivery,
//! archived as held, and decided by a reviewer — released or rejected.
//!
//! Holding appends the event to the chain (the host's own record, with
//! the verdict `hold`) and adds a row to `held`, in one transaction. A
//! reviewer's decision is a chain entry too (`review`), with who decided,
//! when, why, and what came of it: delivered, the sender told, or why
//! neither could happen. The row keeps the latest state for listing.

use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use super::schema::Db;
use super::{ArchiveError, ArchiveRecord, Store, postgres};

/// Who the host's own records name as their plugin.
pub const HOST: &str = "imgate";

/// A held message, as listed for reviewers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeldMessage {
    /// The gateway's event id (a UUIDv7).
    pub event_id: String,
    /// The chain entry that holds it.
    pub seq: u64,
    pub held_ms: u64,
    pub network: String,
    /// The session it was said in: release delivers into it.
    pub session: String,
    pub user: String,
    pub sender: String,
    /// The recipient or room.
    pub target: String,
    pub kind: String,
    pub body: Option<String>,
    /// Why it was held, and by which plugin.
    pub reason: String,
    pub held_by: Option<String>,
    /// `held`, `released`, `rejected`, or `failed` (a release that could
    /// not deliver: the sender's session had ended).
    pub status: String,
    pub decided_ms: Option<u64>,
    pub reviewer: Option<String>,
    pub note: Option<String>,
    /// What the decision did: `delivered`, `sender told`, or why not.
    pub outcome: Option<String>,
}

/// A reviewer's decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Release,
    /// With the note the sender is told.
    Reject,
}

impl Decision {
    pub fn name(&self) -> &'static str {
        match self {
            Decision::Release => "release",
            Decision::Reject => "reject",
        }
    }
}

/// A decision as the archive records it.
#[derive(Clone, Debug)]
pub struct Review<'a> {
    pub decision: Decision,
    pub reviewer: &'a str,
    pub note: &'a str,
    /// What came of it: `Ok(what was done)` or `Err(why nothing was)`.
    pub outcome: Result<String, String>,
}

pub(super) const COLUMNS: &str = "event_id, seq, held_ms, network, session, user, sender, target, kind, \
     body, reason, held_by, status, decided_ms, reviewer, note, outcome";

fn held_of(row: &Row<'_>) -> rusqlite::Result<HeldMessage> {
    Ok(HeldMessage {
        event_id: row.get(0)?,
        seq: row.get::<_, i64>(1)? as u64,
        held_ms: row.get::<_, i64>(2)? as u64,
        network: row.get(3)?,
        session: row.get(4)?,
        user: row.get(5)?,
        sender: row.get(6)?,
        target: row.get(7)?,
        kind: row.get(8)?,
        body: row.get(9)?,
        reason: row.get(10)?,
        held_by: row.get(11)?,
        status: row.get(12)?,
        decided_ms: row.get::<_, Option<i64>>(13)?.map(|v| v as u64),
        reviewer: row.get(14)?,
        note: row.get(15)?,
        outcome: row.get(16)?,
    })
}

impl HeldMessage {
    /// The row for `record`, an event the chain held.
    pub fn of(record: &ArchiveRecord, reason: &str, held_by: Option<&str>) -> HeldMessage {
        let columns = super::record::columns(record);
        let e = &record.event;
        HeldMessage {
            event_id: e.id.clone().unwrap_or_default(),
            seq: 0,
            held_ms: record.appended_ms,
            network: e.network.clone(),
            session: e.session.id.clone(),
            user: e.session.user.clone(),
            sender: columns.sender.clone().unwrap_or_default(),
            target: columns
                .room
                .clone()
                .or(columns.recipient.clone())
                .unwrap_or_default(),
            kind: columns.kind.clone(),
            body: columns.body.clone(),
            reason: reason.to_owned(),
            held_by: held_by.map(str::to_owned),
            status: "held".into(),
            decided_ms: None,
            reviewer: None,
            note: None,
            outcome: None,
        }
    }
}

impl Store {
    /// Archives `record` (an event the chain held) and lists it for
    /// review, in one durable transaction. Returns its chain entry.
    ///
    /// # Errors
    /// The database failed, or the event is already held.
    pub fn hold_message(
        &mut self,
        mut record: ArchiveRecord,
        reason: &str,
        held_by: Option<&str>,
    ) -> Result<u64, ArchiveError> {
        let mut held = HeldMessage::of(&record, reason, held_by);
        let conn = match &mut self.db {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => {
                let (seq, last) = pg.run(postgres::hold_message(pg, record, held))?;
                self.last = last;
                return Ok(seq);
            }
        };
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let (seqs, last) = super::chain::append_in(&tx, std::slice::from_mut(&mut record))?;
        held.seq = seqs[0];
        tx.execute(
            &format!(
                "INSERT INTO held ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, \
                 ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
            ),
            params![
                held.event_id,
                held.seq as i64,
                held.held_ms as i64,
                held.network,
                held.session,
                held.user,
                held.sender,
                held.target,
                held.kind,
                held.body,
                held.reason,
                held.held_by,
                held.status,
                None::<i64>,
                None::<String>,
                None::<String>,
                None::<String>,
            ],
        )?;
        tx.commit()?;
        self.last = last;
        Ok(held.seq)
    }

    /// Held messages, oldest first: those awaiting review, or all.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn held_messages(&self, all: bool) -> Result<Vec<HeldMessage>, ArchiveError> {
        let filter = if all { "" } else { "WHERE status = 'held'" };
        let conn = match &self.db {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => return pg.run(postgres::held_messages(pg, all)),
        };
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM held {filter} ORDER BY held_ms, event_id"
        ))?;
        let rows = stmt.query_map([], held_of)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// One held message, whatever its state.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn held_message(&self, event_id: &str) -> Result<Option<HeldMessage>, ArchiveError> {
        let conn = match &self.db {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => return pg.run(postgres::held_message(pg, event_id)),
        };
        Ok(conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM held WHERE event_id = ?1"),
                params![event_id],
                held_of,
            )
            .optional()?)
    }

    /// Records a reviewer's decision on a message awaiting review: a
    /// `review` chain entry, and its new state. A release that could not
    /// deliver leaves it `failed`.
    ///
    /// # Errors
    /// No such message, it was already decided, or the database failed.
    pub fn review(
        &mut self,
        event_id: &str,
        review: &Review<'_>,
        now_ms: u64,
    ) -> Result<HeldMessage, ArchiveError> {
        let conn = match &mut self.db {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => {
                let (held, last) = pg.run(postgres::review(pg, event_id, review, now_ms))?;
                self.last = last;
                return Ok(held);
            }
        };
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let held = tx
            .query_row(
                &format!("SELECT {COLUMNS} FROM held WHERE event_id = ?1"),
                params![event_id],
                held_of,
            )
            .optional()?
            .ok_or_else(|| ArchiveError::NotHeld(event_id.to_owned()))?;
        let (status, outcome, details) = review.decide(&held)?;
        let (seq, hash) = Store::audit(&tx, "review", review.reviewer, now_ms, details)?;
        tx.execute(
            "UPDATE held SET status = ?2, decided_ms = ?3, reviewer = ?4, note = ?5, outcome = ?6 \
             WHERE event_id = ?1",
            params![
                event_id,
                status,
                now_ms as i64,
                review.reviewer,
                review.note,
                outcome
            ],
        )?;
        tx.commit()?;
        self.last = (seq, hash);
        Ok(review.applied_to(held, status, outcome, now_ms))
    }
}

impl Review<'_> {
    /// What deciding `held` makes it: its new status, the outcome as
    /// recorded, and the chain entry's details.
    ///
    /// # Errors
    /// It was decided already.
    pub(super) fn decide(
        &self,
        held: &HeldMessage,
    ) -> Result<(&'static str, String, serde_json::Value), ArchiveError> {
        if held.status != "held" {
            return Err(ArchiveError::AlreadyDecided {
                event_id: held.event_id.clone(),
                status: held.status.clone(),
            });
        }
        let status = match (&self.decision, &self.outcome) {
            (Decision::Release, Ok(_)) => "released",
            (Decision::Release, Err(_)) => "failed",
            (Decision::Reject, _) => "rejected",
        };
        let outcome = match &self.outcome {
            Ok(done) => done.clone(),
            Err(why) => format!("not done: {why}"),
        };
        let details = serde_json::json!({
            "event_id": held.event_id,
            "held_seq": held.seq,
            "decision": self.decision.name(),
            "note": self.note,
            "status": status,
            "outcome": outcome,
        });
        Ok((status, outcome, details))
    }

    /// `held` as this decision leaves it.
    pub(super) fn applied_to(
        &self,
        held: HeldMessage,
        status: &str,
        outcome: String,
        now_ms: u64,
    ) -> HeldMessage {
        HeldMessage {
            status: status.into(),
            decided_ms: Some(now_ms),
            reviewer: Some(self.reviewer.to_owned()),
            note: Some(self.note.to_owned()),
            outcome: Some(outcome),
            ..held
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::testing::{record, store_with};

    fn held_record(body: &str, id: &str) -> ArchiveRecord {
        let mut r = record(body);
        r.event.id = Some(id.into());
        r.event.session.id = "xmpp-1".into();
        r.plugin = HOST.into();
        r
    }

    #[test]
    fn a_held_message_is_in_the_chain_and_listed_until_decided() {
        let (_dir, mut store) = store_with(2);
        let seq = store
            .hold_message(held_record("wire $1M", "e-1"), "review", Some("dlp"))
            .unwrap();
        assert_eq!(seq, 3);
        store
            .hold_message(held_record("other", "e-2"), "review", None)
            .unwrap();
        let held = store.held_messages(false).unwrap();
        assert_eq!(held.len(), 2);
        assert_eq!(held[0].event_id, "e-1");
        assert_eq!(held[0].session, "xmpp-1");
        assert_eq!(held[0].body.as_deref(), Some("wire $1M"));
        assert_eq!(held[0].held_by.as_deref(), Some("dlp"));

        let released = store
            .review(
                "e-1",
                &Review {
                    decision: Decision::Release,
                    reviewer: "carol",
                    note: "ok",
                    outcome: Ok("delivered".into()),
                },
                99,
            )
            .unwrap();
        assert_eq!(released.status, "released");
        let failed = store
            .review(
                "e-2",
                &Review {
                    decision: Decision::Release,
                    reviewer: "carol",
                    note: "",
                    outcome: Err("the sender's session has ended".into()),
                },
                100,
            )
            .unwrap();
        assert_eq!(failed.status, "failed");
        assert!(failed.outcome.unwrap().contains("session has ended"));
        assert!(store.held_messages(false).unwrap().is_empty());
        assert_eq!(store.held_messages(true).unwrap().len(), 2);

        // Decided once; the chain has both decisions and still verifies.
        let again = store.review(
            "e-1",
            &Review {
                decision: Decision::Reject,
                reviewer: "mallory",
                note: "",
                outcome: Ok("sender told".into()),
            },
            101,
        );
        assert!(matches!(again, Err(ArchiveError::AlreadyDecided { .. })));
        assert!(matches!(
            store.review(
                "nope",
                &Review {
                    decision: Decision::Reject,
                    reviewer: "x",
                    note: "",
                    outcome: Ok(String::new())
                },
                1
            ),
            Err(ArchiveError::NotHeld(_))
        ));
        let verified = store.verify().unwrap();
        assert_eq!(verified.records, 6);
        let entries = store
            .search(&crate::archive::Filter {
                kind: Some("audit:review".into()),
                ..Default::default()
            })
            .unwrap();
        let review = serde_json::to_value(&entries[0]).unwrap();
        assert_eq!(review["entry"], "review");
        assert_eq!(review["by"], "carol");
        assert_eq!(review["details"]["event_id"], "e-1");
        assert_eq!(review["details"]["status"], "released");
    }
}
