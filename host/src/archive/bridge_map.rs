//! The bridge's id map: which message on one network is a copy of which
//! on another, in tables of their own beside the records, so an edit,
//! retraction or reply made after a restart still finds the message it
//! follows on the other side.
//!
//! - `bridge_copies`: one row per copy (its event id is its ticket): its
//!   origin event, both places, the origin's author and the start of its
//!   text (for a quoted reply where the network has no replies), and what
//!   became of it (`pending`, `delivered`, `refused`, `failed`).
//! - `bridge_ids`: each network id an original or a copy has, pointing at
//!   its event id: `(network, id) → event ↔ copy → event → (network, id)`.
//!
//! Retention purges them with the records (`retention.rs`).

use rusqlite::{OptionalExtension, params};

use super::schema::Db;
use super::{ArchiveError, Store, postgres};
use crate::event::NetworkId;
use crate::event::bridge::{Delivery, Follows};

/// [`Store::bridge_place`]'s query, for both backends (`?1` is `$1` there).
pub(super) const PLACE: &str = "SELECT origin_network, origin_room, created_ms FROM bridge_copies \
     WHERE origin_event = ?1 UNION ALL SELECT copy_network, copy_room, created_ms \
     FROM bridge_copies WHERE copy_event = ?1 LIMIT 1";

/// The longest excerpt kept of an original, in characters.
pub const EXCERPT_CHARS: usize = 120;

/// One copy as first recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyRow {
    pub copy_event: String,
    pub origin_event: String,
    pub origin_network: String,
    pub origin_room: String,
    pub origin_author: Option<String>,
    pub copy_network: String,
    pub copy_room: String,
    pub excerpt: Option<String>,
    pub plugin: String,
    pub created_ms: u64,
}

/// A copy as the admin API and the tests list it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CopyState {
    pub copy_event: String,
    pub origin_event: String,
    pub origin_network: String,
    pub copy_network: String,
    pub copy_room: String,
    pub state: String,
    pub reason: Option<String>,
}

/// The start of a text, for a quote.
pub fn excerpt(text: &str) -> String {
    let mut out: String = text.chars().take(EXCERPT_CHARS).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

impl Store {
    /// Opens the archive for the bridge's id map: its own connection,
    /// committing with `synchronous = NORMAL` (WAL): durable across a crash
    /// of imgate, while a power cut may lose the last few links (an edit of
    /// one of those messages then goes as a plain message). The records
    /// themselves keep `FULL`, on the writer's connection.
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn open_for_bridge(store: &crate::store::StoreConfig) -> Result<Store, ArchiveError> {
        let store = Store::connect(store)?;
        if let Db::Sqlite(conn) = &store.db {
            conn.pragma_update(None, "synchronous", "NORMAL")?;
        }
        Ok(store)
    }

    /// Records a copy (pending) and its origin's network ids. A copy
    /// already recorded (the same ticket again) is left as it is; returns
    /// whether this one is new.
    ///
    /// # Errors
    /// The database failed.
    pub fn bridge_record(
        &mut self,
        copy: &CopyRow,
        origin_ids: &[NetworkId],
    ) -> Result<bool, ArchiveError> {
        let conn = match &mut self.db {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => return pg.run(postgres::bridge_record(pg, copy, origin_ids)),
        };
        let tx = conn.transaction()?;
        let new = tx.execute(
            "INSERT OR IGNORE INTO bridge_copies (copy_event, origin_event, origin_network, \
             origin_room, origin_author, copy_network, copy_room, excerpt, plugin, state, \
             created_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', ?10, ?10)",
            params![
                copy.copy_event,
                copy.origin_event,
                copy.origin_network,
                copy.origin_room,
                copy.origin_author,
                copy.copy_network,
                copy.copy_room,
                copy.excerpt,
                copy.plugin,
                copy.created_ms as i64
            ],
        )? == 1;
        insert_ids(&tx, &copy.origin_network, &copy.origin_event, origin_ids)?;
        tx.commit()?;
        Ok(new)
    }

    /// Records what became of a copy, and the ids its network gave it.
    ///
    /// # Errors
    /// The database failed.
    pub fn bridge_settle(
        &mut self,
        copy_event: &str,
        delivery: &Delivery,
        now_ms: u64,
    ) -> Result<(), ArchiveError> {
        let conn = match &mut self.db {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => {
                return pg.run(postgres::bridge_settle(pg, copy_event, delivery, now_ms));
            }
        };
        let tx = conn.transaction()?;
        let network: Option<String> = tx
            .query_row(
                "SELECT copy_network FROM bridge_copies WHERE copy_event = ?1",
                params![copy_event],
                |r| r.get(0),
            )
            .optional()?;
        tx.execute(
            "UPDATE bridge_copies SET state = ?2, reason = ?3, updated_ms = ?4 WHERE copy_event = ?1",
            params![
                copy_event,
                delivery.state(),
                delivery.reason(),
                now_ms as i64
            ],
        )?;
        if let (Some(network), Delivery::Delivered(ids)) = (network, delivery) {
            insert_ids(&tx, &network, copy_event, ids)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// What became of the copy with this ticket; `None` when unknown.
    ///
    /// # Errors
    /// The database failed.
    pub fn bridge_status(&self, ticket: &str) -> Result<Option<Delivery>, ArchiveError> {
        let conn = match &self.db {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => return pg.run(postgres::bridge_status(pg, ticket)),
        };
        let row: Option<(String, Option<String>)> = conn
            .query_row(
                "SELECT state, reason FROM bridge_copies WHERE copy_event = ?1",
                params![ticket],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((state, reason)) = row else {
            return Ok(None);
        };
        let ids = ids_of(conn, ticket)?;
        Ok(Some(Delivery::from_state(&state, reason, ids)))
    }

    /// The message that `target` names (a network id on `network`, or an
    /// event id), as it is in `to_room` on `to_network`: the copy made
    /// there of it, or, when it is itself a copy from there, its original.
    /// `None` when the map does not link the two.
    ///
    /// # Errors
    /// The database failed.
    pub fn bridge_follow(
        &self,
        network: &str,
        target: &str,
        to_network: &str,
        to_room: &str,
    ) -> Result<Option<Follows>, ArchiveError> {
        let conn = match &self.db {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => {
                return pg.run(postgres::bridge_follow(
                    pg, network, target, to_network, to_room,
                ));
            }
        };
        let mut events: Vec<String> = {
            let mut stmt =
                conn.prepare_cached("SELECT event FROM bridge_ids WHERE network = ?1 AND id = ?2")?;
            stmt.query_map(params![network, target], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        events.push(target.to_owned());
        for event in events {
            // Its copy on the destination.
            let copy: Option<(String, Option<String>, Option<String>)> = conn
                .query_row(
                    "SELECT copy_event, origin_author, excerpt FROM bridge_copies \
                     WHERE origin_event = ?1 AND copy_network = ?2 AND copy_room = ?3 \
                     AND state = 'delivered'",
                    params![event, to_network, to_room],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            if let Some((copy, author, excerpt)) = copy {
                return Ok(Some(Follows {
                    rel_type: String::new(),
                    ids: ids_of(conn, &copy)?,
                    author,
                    excerpt,
                    key: None,
                }));
            }
            // Its original, when it is a copy from the destination.
            let origin: Option<(String, Option<String>, Option<String>)> = conn
                .query_row(
                    "SELECT origin_event, origin_author, excerpt FROM bridge_copies \
                     WHERE copy_event = ?1 AND origin_network = ?2 AND origin_room = ?3",
                    params![event, to_network, to_room],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            if let Some((origin, author, excerpt)) = origin {
                return Ok(Some(Follows {
                    rel_type: String::new(),
                    ids: ids_of(conn, &origin)?,
                    author,
                    excerpt,
                    key: None,
                }));
            }
        }
        Ok(None)
    }

    /// Every copy made of `origin_event`, for the tests and the admin API.
    ///
    /// # Errors
    /// The database failed.
    pub fn bridge_copies_of(&self, origin_event: &str) -> Result<Vec<CopyState>, ArchiveError> {
        let conn = match &self.db {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => return pg.run(postgres::bridge_copies_of(pg, origin_event)),
        };
        list_copies(
            conn,
            "SELECT copy_event, origin_event, origin_network, copy_network, copy_room, state, \
             reason FROM bridge_copies WHERE origin_event = ?1 ORDER BY created_ms",
            params![origin_event],
        )
    }

    /// Where an event on either side of a copy was said: its network,
    /// its room, and when the copy was made (near its record's time).
    ///
    /// # Errors
    /// The database failed.
    pub fn bridge_place(&self, event: &str) -> Result<Option<(String, String, u64)>, ArchiveError> {
        let conn = match &self.db {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => return pg.run(postgres::bridge_place(pg, event)),
        };
        Ok(conn
            .query_row(PLACE, params![event], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
            })
            .optional()?)
    }

    /// The most recent copies, newest first, at most `limit`; with a state,
    /// only those (`failed`).
    ///
    /// # Errors
    /// The database failed.
    pub fn bridge_recent(
        &self,
        state: Option<&str>,
        limit: usize,
    ) -> Result<Vec<CopyState>, ArchiveError> {
        let conn = match &self.db {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => return pg.run(postgres::bridge_recent(pg, state, limit)),
        };
        list_copies(
            conn,
            "SELECT copy_event, origin_event, origin_network, copy_network, copy_room, state, \
             reason FROM bridge_copies WHERE ?1 IS NULL OR state = ?1 \
             ORDER BY created_ms DESC, copy_event DESC LIMIT ?2",
            params![state, limit as i64],
        )
    }
}

fn list_copies(
    conn: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<CopyState>, ArchiveError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt
        .query_map(params, |r| {
            Ok(CopyState {
                copy_event: r.get(0)?,
                origin_event: r.get(1)?,
                origin_network: r.get(2)?,
                copy_network: r.get(3)?,
                copy_room: r.get(4)?,
                state: r.get(5)?,
                reason: r.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

fn ids_of(conn: &rusqlite::Connection, event: &str) -> Result<Vec<NetworkId>, ArchiveError> {
    let mut stmt =
        conn.prepare_cached("SELECT kind, id, by_whom FROM bridge_ids WHERE event = ?1")?;
    let ids = stmt
        .query_map(params![event], |r| {
            Ok(NetworkId {
                kind: r.get(0)?,
                value: r.get(1)?,
                by: r.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(ids)
}
fn insert_ids(
    tx: &rusqlite::Transaction<'_>,
    network: &str,
    event: &str,
    ids: &[NetworkId],
) -> Result<(), ArchiveError> {
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO bridge_ids (network, id, event, kind, by_whom) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for id in ids.iter().filter(|i| !i.value.is_empty()) {
        insert.execute(params![network, id.value, event, id.kind, id.by])?;
    }
    Ok(())
}

/// Purges the map's rows past retention with the records, except those a
/// legal hold covers (by room, or by the original's author). Returns how
/// many copies went.
pub(super) fn purge(
    tx: &rusqlite::Transaction<'_>,
    rules: &super::retention::Retention<'_>,
) -> Result<usize, ArchiveError> {
    let mut due = Vec::new();
    {
        let mut stmt = tx.prepare(
            "SELECT copy_event, origin_event, origin_network, origin_room, origin_author, \
             copy_network, copy_room, created_ms FROM bridge_copies",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let created = r.get::<_, i64>(7)? as u64;
            let origin_network: String = r.get(2)?;
            let copy_network: String = r.get(5)?;
            // Past both sides' retention: a copy lives as long as the
            // longer-kept of the two records it links.
            if !rules.past(&origin_network, created) || !rules.past(&copy_network, created) {
                continue;
            }
            let origin_room: String = r.get(3)?;
            let copy_room: String = r.get(6)?;
            let author: Option<String> = r.get(4)?;
            if rules.held(&[author.as_deref()], &[&origin_room, &copy_room]) {
                continue;
            }
            due.push((r.get::<_, String>(0)?, r.get::<_, String>(1)?));
        }
    }
    for (copy, origin) in &due {
        tx.execute(
            "DELETE FROM bridge_copies WHERE copy_event = ?1",
            params![copy],
        )?;
        tx.execute("DELETE FROM bridge_ids WHERE event = ?1", params![copy])?;
        // The original's ids go with its last copy.
        let left: i64 = tx.query_row(
            "SELECT count(*) FROM bridge_copies WHERE origin_event = ?1",
            params![origin],
            |r| r.get(0),
        )?;
        if left == 0 {
            tx.execute("DELETE FROM bridge_ids WHERE event = ?1", params![origin])?;
        }
    }
    Ok(due.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(kind: &str, value: &str) -> NetworkId {
        NetworkId {
            kind: kind.into(),
            value: value.into(),
            by: None,
        }
    }

    fn row(copy: &str, origin: &str) -> CopyRow {
        CopyRow {
            copy_event: copy.into(),
            origin_event: origin.into(),
            origin_network: "xmpp".into(),
            origin_room: "lobby@conference.example".into(),
            origin_author: Some("alice".into()),
            copy_network: "irc".into(),
            copy_room: "#lobby".into(),
            excerpt: Some(excerpt("hello wrld")),
            plugin: "bridge".into(),
            created_ms: 1_000,
        }
    }

    #[test]
    fn an_edit_finds_the_copy_and_a_reply_finds_the_original_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        {
            let mut store = Store::open(&path).unwrap();
            assert!(
                store
                    .bridge_record(&row("c1", "o1"), &[id("message-id", "m1")])
                    .unwrap()
            );
            assert!(!store.bridge_record(&row("c1", "o1"), &[]).unwrap(), "once");
            assert_eq!(store.bridge_status("c1").unwrap(), Some(Delivery::Pending));
            store
                .bridge_settle("c1", &Delivery::Delivered(vec![id("msgid", "i1")]), 2_000)
                .unwrap();
        }
        let store = Store::open(&path).unwrap();
        // An XMPP correction of m1, bound for IRC: the IRC copy.
        let f = store
            .bridge_follow("xmpp", "m1", "irc", "#lobby")
            .unwrap()
            .unwrap();
        assert_eq!(f.ids, vec![id("msgid", "i1")]);
        assert_eq!(f.author.as_deref(), Some("alice"));
        assert_eq!(f.excerpt.as_deref(), Some("hello wrld"));
        // An IRC reply to the copy i1, bound for XMPP: the original m1.
        let f = store
            .bridge_follow("irc", "i1", "xmpp", "lobby@conference.example")
            .unwrap()
            .unwrap();
        assert_eq!(f.ids, vec![id("message-id", "m1")]);
        // By event id too; and nothing for another room.
        assert!(
            store
                .bridge_follow("xmpp", "o1", "irc", "#lobby")
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .bridge_follow("xmpp", "m1", "irc", "#other")
                .unwrap()
                .is_none()
        );
        assert_eq!(
            store.bridge_status("c1").unwrap(),
            Some(Delivery::Delivered(vec![id("msgid", "i1")]))
        );
        assert_eq!(store.bridge_status("nope").unwrap(), None);
    }

    #[test]
    fn a_failed_copy_is_listed_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("a.db")).unwrap();
        store.bridge_record(&row("c1", "o1"), &[]).unwrap();
        store
            .bridge_settle("c1", &Delivery::Failed("relay not connected".into()), 5)
            .unwrap();
        let failed = store.bridge_recent(Some("failed"), 10).unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].reason.as_deref(), Some("relay not connected"));
        assert!(
            store
                .bridge_recent(Some("delivered"), 10)
                .unwrap()
                .is_empty()
        );
        // Not delivered: an edit does not follow it.
        assert!(
            store
                .bridge_follow("xmpp", "o1", "irc", "#lobby")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn retention_purges_the_map_except_where_a_hold_covers_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("a.db")).unwrap();
        store
            .bridge_record(&row("c1", "o1"), &[id("message-id", "m1")])
            .unwrap();
        let mut ops = row("c2", "o2");
        ops.copy_room = "#ops".into();
        store
            .bridge_record(&ops, &[id("message-id", "m2")])
            .unwrap();
        store
            .hold_add("room", "#ops", "litigation", "tester", 0)
            .unwrap();
        let day = 86_400_000;
        // Not yet past a day: nothing goes.
        let report = store
            .purge(day / 2, Some(1), &Default::default(), "tester")
            .unwrap();
        assert_eq!(report.entry, None);
        assert!(store.bridge_status("c1").unwrap().is_some());
        let report = store
            .purge(3 * day, Some(1), &Default::default(), "tester")
            .unwrap();
        assert!(report.entry.is_some(), "the purge is in the chain");
        assert_eq!(store.bridge_status("c1").unwrap(), None);
        assert!(
            store
                .bridge_follow("xmpp", "m1", "irc", "#lobby")
                .unwrap()
                .is_none()
        );
        assert_eq!(
            store.bridge_status("c2").unwrap(),
            Some(Delivery::Pending),
            "held"
        );
    }

    #[test]
    fn excerpts_are_cut_at_a_character() {
        let long = "é".repeat(200);
        let e = excerpt(&long);
        assert_eq!(e.chars().count(), EXCERPT_CHARS + 1);
        assert!(e.ends_with('…'));
        assert_eq!(excerpt("short"), "short");
    }
}
