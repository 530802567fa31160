//! The archive's operations on PostgreSQL: the same tables, rules and
//! chain as on SQLite (`schema`, `chain`, `retention`, `review`, `search`,
//! `bridge_map`), shared by every gateway that points at the database.
//!
//! One chain across gateways: every transaction that appends takes the
//! advisory lock [`CHAIN_LOCK`] first, then reads the head, so two
//! gateways never number or link from the same head. The lock is released
//! at commit; an append is acknowledged only after it.
//!
//! PostgreSQL's text cannot hold NUL, which a Matrix message can: the
//! searchable copies replace it with U+FFFD on the way in (and `verify`
//! expects exactly that); the canonical bytes are JSON, where it is
//! escaped.

use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::chain::StoredRow;
use super::record::{ArchiveRecord, AuditEntry, Columns, audit_columns, columns};
use super::retention::{Hold, PurgeReport, Retention};
use super::review::{COLUMNS, HeldMessage, Review};
use super::schema::{Hash, link};
use super::search::{Filter, Stored};
use super::{ArchiveError, CopyRow, CopyState};
use crate::event::NetworkId;
use crate::event::bridge::{Delivery, Follows};
use crate::store::Postgres;
use crate::store::postgres::CHAIN_LOCK;

/// `s` as PostgreSQL text can hold it.
pub(super) fn text(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') {
        s.replace('\0', "\u{FFFD}").into()
    } else {
        s.into()
    }
}

fn opt_text(s: &Option<String>) -> Option<String> {
    s.as_deref().map(|s| text(s).into_owned())
}

impl Columns {
    /// The columns as PostgreSQL stores them.
    pub(super) fn for_postgres(&self) -> Columns {
        Columns {
            appended_ms: self.appended_ms,
            network: text(&self.network).into_owned(),
            direction: text(&self.direction).into_owned(),
            kind: text(&self.kind).into_owned(),
            user: text(&self.user).into_owned(),
            sender: opt_text(&self.sender),
            recipient: opt_text(&self.recipient),
            room: opt_text(&self.room),
            action: opt_text(&self.action),
            tags: text(&self.tags).into_owned(),
            body: opt_text(&self.body),
        }
    }
}

/// Takes the chain's lock for this transaction and reads its head.
async fn lock_head(tx: &Transaction<'_>) -> Result<(u64, Hash), ArchiveError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CHAIN_LOCK])
        .await?;
    head_in(tx).await
}

async fn head_in(c: &impl GenericClient) -> Result<(u64, Hash), ArchiveError> {
    let row = c
        .query_opt(
            "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .await?;
    Ok(match row {
        Some(r) => {
            let hash: Vec<u8> = r.get(1);
            (
                r.get::<_, i64>(0) as u64,
                hash.try_into().unwrap_or([0; 32]),
            )
        }
        None => (0, [0; 32]),
    })
}

/// Rows to insert, column by column, for one multi-row `INSERT`.
#[derive(Default)]
struct Batch {
    seq: Vec<i64>,
    appended_ms: Vec<i64>,
    network: Vec<String>,
    direction: Vec<String>,
    kind: Vec<String>,
    user: Vec<String>,
    sender: Vec<Option<String>>,
    recipient: Vec<Option<String>>,
    room: Vec<Option<String>>,
    action: Vec<Option<String>>,
    tags: Vec<String>,
    body: Vec<Option<String>>,
    doc: Vec<String>,
    prev: Vec<Vec<u8>>,
    hash: Vec<Vec<u8>>,
}

impl Batch {
    /// Adds the entry `doc` at `seq` after `prev`; returns its hash.
    fn push(&mut self, seq: u64, prev: &Hash, doc: String, c: Columns) -> Hash {
        let hash = link(prev, doc.as_bytes());
        let c = c.for_postgres();
        self.seq.push(seq as i64);
        self.appended_ms.push(c.appended_ms as i64);
        self.network.push(c.network);
        self.direction.push(c.direction);
        self.kind.push(c.kind);
        self.user.push(c.user);
        self.sender.push(c.sender);
        self.recipient.push(c.recipient);
        self.room.push(c.room);
        self.action.push(c.action);
        self.tags.push(c.tags);
        self.body.push(c.body);
        self.doc.push(doc);
        self.prev.push(prev.to_vec());
        self.hash.push(hash.to_vec());
        hash
    }

    async fn insert(self, tx: &Transaction<'_>) -> Result<(), ArchiveError> {
        let stmt = tx
            .prepare_cached(
                "INSERT INTO records (seq, appended_ms, network, direction, kind, \"user\", sender, \
                 recipient, room, action, tags, body, doc, prev, hash) \
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], \
                 $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], \
                 $11::text[], $12::text[], $13::text[], $14::bytea[], $15::bytea[])",
            )
            .await?;
        tx.execute(
            &stmt,
            &[
                &self.seq,
                &self.appended_ms,
                &self.network,
                &self.direction,
                &self.kind,
                &self.user,
                &self.sender,
                &self.recipient,
                &self.room,
                &self.action,
                &self.tags,
                &self.body,
                &self.doc,
                &self.prev,
                &self.hash,
            ],
        )
        .await?;
        Ok(())
    }
}

/// Appends `records` inside `tx`, under the chain's lock.
async fn append_in(
    tx: &Transaction<'_>,
    records: &mut [ArchiveRecord],
) -> Result<(Vec<u64>, (u64, Hash)), ArchiveError> {
    let (mut seq, mut prev) = lock_head(tx).await?;
    let mut batch = Batch::default();
    let mut seqs = Vec::with_capacity(records.len());
    for r in records.iter_mut() {
        seq += 1;
        r.seq = seq;
        let doc = serde_json::to_string(&*r)?;
        prev = batch.push(seq, &prev, doc, columns(r));
        seqs.push(seq);
    }
    batch.insert(tx).await?;
    Ok((seqs, (seq, prev)))
}

/// Appends the archive's own entry inside `tx`, under the chain's lock.
async fn audit_in(
    tx: &Transaction<'_>,
    entry: &str,
    by: &str,
    at_ms: u64,
    details: serde_json::Value,
) -> Result<(u64, Hash), ArchiveError> {
    let (last, prev) = lock_head(tx).await?;
    let a = AuditEntry {
        seq: last + 1,
        entry: entry.into(),
        at_ms,
        by: by.into(),
        details,
    };
    let doc = serde_json::to_string(&a)?;
    let mut batch = Batch::default();
    let hash = batch.push(a.seq, &prev, doc, audit_columns(&a));
    batch.insert(tx).await?;
    Ok((a.seq, hash))
}

pub(super) async fn append(
    pg: &Postgres,
    records: &mut [ArchiveRecord],
) -> Result<(Vec<u64>, (u64, Hash)), ArchiveError> {
    let mut client = pg.pool().get().await?;
    let tx = client.transaction().await?;
    let out = append_in(&tx, records).await?;
    tx.commit().await?;
    Ok(out)
}

pub(super) async fn head(pg: &Postgres) -> Result<(u64, Hash), ArchiveError> {
    head_in(&pg.pool().get().await?).await
}

pub(super) async fn add_checkpoint(
    pg: &Postgres,
    c: &super::checkpoint::Checkpoint,
    line: &str,
) -> Result<(), ArchiveError> {
    pg.pool()
        .get()
        .await?
        .execute(
            "INSERT INTO checkpoints (records, time_ms, line) VALUES ($1, $2, $3)",
            &[&(c.records as i64), &(c.time_ms as i64), &line],
        )
        .await?;
    Ok(())
}

pub(super) async fn checkpoint_lines(pg: &Postgres) -> Result<Vec<String>, ArchiveError> {
    let rows = pg
        .pool()
        .get()
        .await?
        .query("SELECT line FROM checkpoints ORDER BY id", &[])
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Up to `limit` entries after `after`, in order, for `verify`.
pub(super) async fn rows_after(
    pg: &Postgres,
    after: u64,
    limit: i64,
) -> Result<Vec<StoredRow>, ArchiveError> {
    let client = pg.pool().get().await?;
    let rows = client
        .query(
            "SELECT seq, appended_ms, network, direction, kind, \"user\", sender, recipient, room, \
             action, tags, body, doc, prev, hash FROM records WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&(after as i64), &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| StoredRow {
            seq: r.get::<_, i64>(0) as u64,
            columns: Columns {
                appended_ms: r.get::<_, i64>(1) as u64,
                network: r.get(2),
                direction: r.get(3),
                kind: r.get(4),
                user: r.get(5),
                sender: r.get(6),
                recipient: r.get(7),
                room: r.get(8),
                action: r.get(9),
                tags: r.get(10),
                body: r.get(11),
            },
            doc: r.get::<_, Option<String>>(12).map(String::into_bytes),
            prev: r.get(13),
            hash: r.get(14),
        })
        .collect())
}

pub(super) async fn select(pg: &Postgres, filter: &Filter) -> Result<Vec<Stored>, ArchiveError> {
    let mut sql = String::from("SELECT seq, doc, prev, hash FROM records WHERE doc IS NOT NULL");
    let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    let mut arg = |sql: &mut String, clause: &str, value: Box<dyn ToSql + Sync + Send>| {
        args.push(value);
        *sql += &clause.replace('#', &format!("${}", args.len()));
    };
    if let Some(p) = &filter.participant {
        arg(
            &mut sql,
            " AND (\"user\" = # OR sender = # OR recipient = #)",
            Box::new(p.clone()),
        );
    }
    if let Some(r) = &filter.room {
        arg(&mut sql, " AND room = #", Box::new(r.clone()));
    }
    if let Some(w) = &filter.with {
        let p = filter.participant.clone().unwrap_or_default();
        arg(&mut sql, " AND ((sender = #", Box::new(p.clone()));
        arg(&mut sql, " AND recipient = #)", Box::new(w.clone()));
        arg(&mut sql, " OR (sender = #", Box::new(w.clone()));
        arg(&mut sql, " AND recipient = #))", Box::new(p));
    }
    if let Some(n) = &filter.network {
        arg(&mut sql, " AND network = #", Box::new(n.clone()));
    }
    if let Some(s) = filter.after_seq {
        arg(&mut sql, " AND seq > #", Box::new(s as i64));
    }
    if let Some(s) = filter.before_seq {
        arg(&mut sql, " AND seq < #", Box::new(s as i64));
    }
    if let Some(t) = filter.since_ms {
        arg(&mut sql, " AND appended_ms >= #", Box::new(t as i64));
    }
    if let Some(t) = filter.until_ms {
        arg(&mut sql, " AND appended_ms < #", Box::new(t as i64));
    }
    if let Some(a) = &filter.action {
        arg(&mut sql, " AND action = #", Box::new(a.clone()));
    }
    if let Some(t) = &filter.tag {
        arg(
            &mut sql,
            " AND tags <> '||' AND tags LIKE #",
            Box::new(format!("%|{t}|%")),
        );
    }
    match &filter.kind {
        Some(k) => arg(&mut sql, " AND kind = #", Box::new(k.clone())),
        None => sql += " AND kind NOT LIKE 'audit:%'",
    }
    if let Some(q) = &filter.text {
        // With a participant or room the rows are few: check each one's
        // text (the same expression the indexed column holds), so the
        // planner starts from their indexes. Alone, the text query is
        // the selective part: the GIN index.
        let clause = if filter.participant.is_some() || filter.room.is_some() {
            " AND to_tsvector('simple', coalesce(body, '')) @@ websearch_to_tsquery('simple', #)"
        } else {
            " AND body_tsv @@ websearch_to_tsquery('simple', #)"
        };
        arg(&mut sql, clause, Box::new(text(q).into_owned()));
    }
    sql += if filter.newest_first {
        " ORDER BY seq DESC"
    } else {
        " ORDER BY seq"
    };
    if let Some(n) = filter.limit {
        sql += &format!(" LIMIT {n}");
    }
    let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|b| &**b as _).collect();
    let rows = pg.pool().get().await?.query(&sql, &params).await?;
    Ok(rows
        .iter()
        .map(|r| Stored {
            seq: r.get::<_, i64>(0) as u64,
            doc: r.get::<_, String>(1).into_bytes(),
            prev: r.get(2),
            hash: r.get(3),
        })
        .collect())
}

async fn holds_in(c: &impl GenericClient) -> Result<Vec<Hold>, ArchiveError> {
    let rows = c
        .query(
            "SELECT id, kind, value, reason, created_ms, created_by FROM holds ORDER BY id",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Hold {
            id: r.get(0),
            kind: r.get(1),
            value: r.get(2),
            reason: r.get(3),
            created_ms: r.get::<_, i64>(4) as u64,
            created_by: r.get(5),
        })
        .collect())
}

pub(super) async fn holds(pg: &Postgres) -> Result<Vec<Hold>, ArchiveError> {
    holds_in(&pg.pool().get().await?).await
}

pub(super) async fn hold_add(
    pg: &Postgres,
    kind: &str,
    value: &str,
    reason: &str,
    by: &str,
    now_ms: u64,
) -> Result<i64, ArchiveError> {
    let mut client = pg.pool().get().await?;
    let tx = client.transaction().await?;
    let id: i64 = tx
        .query_one(
            "INSERT INTO holds (kind, value, reason, created_ms, created_by) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[
                &kind,
                &text(value),
                &text(reason),
                &(now_ms as i64),
                &text(by),
            ],
        )
        .await?
        .get(0);
    let details = super::retention::hold_added(id, kind, value, reason);
    audit_in(&tx, "hold-add", by, now_ms, details).await?;
    tx.commit().await?;
    Ok(id)
}

pub(super) async fn hold_remove(
    pg: &Postgres,
    id: i64,
    by: &str,
    now_ms: u64,
) -> Result<Hold, ArchiveError> {
    let mut client = pg.pool().get().await?;
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CHAIN_LOCK])
        .await?;
    let hold = holds_in(&tx)
        .await?
        .into_iter()
        .find(|h| h.id == id)
        .ok_or(ArchiveError::NoHold(id))?;
    tx.execute("DELETE FROM holds WHERE id = $1", &[&id])
        .await?;
    audit_in(
        &tx,
        "hold-remove",
        by,
        now_ms,
        super::retention::hold_removed(&hold),
    )
    .await?;
    tx.commit().await?;
    Ok(hold)
}

pub(super) async fn purge(
    pg: &Postgres,
    rules: Retention<'_>,
    by: &str,
) -> Result<PurgeReport, ArchiveError> {
    let mut client = pg.pool().get().await?;
    let tx = client.transaction().await?;
    // The chain's lock first: no append interleaves, and holds cannot
    // change under the purge (placing one appends an entry).
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CHAIN_LOCK])
        .await?;
    let rules = Retention {
        holds: holds_in(&tx).await?,
        ..rules
    };
    // Nothing younger than the shortest retention can be due.
    let shortest = rules
        .per_network
        .values()
        .copied()
        .chain(rules.retention_days)
        .min()
        .unwrap_or(u64::MAX);
    let cutoff = rules
        .now_ms
        .saturating_sub(shortest.saturating_mul(86_400_000)) as i64;
    let rows = tx
        .query(
            "SELECT seq, appended_ms, network, \"user\", sender, recipient, room, hash \
             FROM records WHERE doc IS NOT NULL AND kind NOT LIKE 'audit:%' AND appended_ms <= $1 \
             ORDER BY seq",
            &[&cutoff],
        )
        .await?;
    let mut due: Vec<(i64, Vec<u8>)> = Vec::new();
    let mut held = 0;
    for r in &rows {
        let network: String = r.get(2);
        if !rules.past(&network, r.get::<_, i64>(1) as u64) {
            continue;
        }
        let user: String = r.get(3);
        let sender: Option<String> = r.get(4);
        let recipient: Option<String> = r.get(5);
        let room: Option<String> = r.get(6);
        let people = [Some(user.as_str()), sender.as_deref(), recipient.as_deref()];
        let rooms: Vec<&str> = room.as_deref().into_iter().collect();
        if rules.held(&people, &rooms) {
            held += 1;
            continue;
        }
        due.push((r.get(0), r.get(7)));
    }
    let bridged = purge_bridge(&tx, &rules).await?;
    if due.is_empty() && bridged == 0 {
        return Ok(PurgeReport {
            purged: 0,
            held,
            entry: None,
        });
    }
    let seqs: Vec<i64> = due.iter().map(|(s, _)| *s).collect();
    tx.execute(
        "UPDATE records SET doc = NULL, body = NULL, \"user\" = '', sender = NULL, \
         recipient = NULL, room = NULL, tags = '||' WHERE seq = ANY($1)",
        &[&seqs],
    )
    .await?;
    let details = rules.details(held, &due, bridged);
    let (entry, _) = audit_in(&tx, "purge", by, rules.now_ms, details).await?;
    tx.commit().await?;
    Ok(PurgeReport {
        purged: due.len(),
        held,
        entry: Some(entry),
    })
}

/// The bridge's id map's share of a purge (`bridge_map::purge`).
async fn purge_bridge(tx: &Transaction<'_>, rules: &Retention<'_>) -> Result<usize, ArchiveError> {
    let rows = tx
        .query(
            "SELECT copy_event, origin_event, origin_network, origin_room, origin_author, \
             copy_network, copy_room, created_ms FROM bridge_copies",
            &[],
        )
        .await?;
    let mut due = Vec::new();
    for r in &rows {
        let created = r.get::<_, i64>(7) as u64;
        let origin_network: String = r.get(2);
        let copy_network: String = r.get(5);
        if !rules.past(&origin_network, created) || !rules.past(&copy_network, created) {
            continue;
        }
        let origin_room: String = r.get(3);
        let copy_room: String = r.get(6);
        let author: Option<String> = r.get(4);
        if rules.held(&[author.as_deref()], &[&origin_room, &copy_room]) {
            continue;
        }
        due.push((r.get::<_, String>(0), r.get::<_, String>(1)));
    }
    for (copy, origin) in &due {
        tx.execute("DELETE FROM bridge_copies WHERE copy_event = $1", &[copy])
            .await?;
        tx.execute("DELETE FROM bridge_ids WHERE event = $1", &[copy])
            .await?;
        tx.execute(
            "DELETE FROM bridge_ids WHERE event = $1 AND NOT EXISTS \
             (SELECT 1 FROM bridge_copies WHERE origin_event = $1)",
            &[origin],
        )
        .await?;
    }
    Ok(due.len())
}

fn pg_columns() -> String {
    COLUMNS.replace(" user,", " \"user\",")
}

fn held_of(r: &Row) -> HeldMessage {
    HeldMessage {
        event_id: r.get(0),
        seq: r.get::<_, i64>(1) as u64,
        held_ms: r.get::<_, i64>(2) as u64,
        network: r.get(3),
        session: r.get(4),
        user: r.get(5),
        sender: r.get(6),
        target: r.get(7),
        kind: r.get(8),
        body: r.get(9),
        reason: r.get(10),
        held_by: r.get(11),
        status: r.get(12),
        decided_ms: r.get::<_, Option<i64>>(13).map(|v| v as u64),
        reviewer: r.get(14),
        note: r.get(15),
        outcome: r.get(16),
    }
}

pub(super) async fn hold_message(
    pg: &Postgres,
    mut record: ArchiveRecord,
    mut held: HeldMessage,
) -> Result<(u64, (u64, Hash)), ArchiveError> {
    let mut client = pg.pool().get().await?;
    let tx = client.transaction().await?;
    let (seqs, last) = append_in(&tx, std::slice::from_mut(&mut record)).await?;
    held.seq = seqs[0];
    tx.execute(
        &format!(
            "INSERT INTO held ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
             $13, NULL, NULL, NULL, NULL)",
            pg_columns()
        ),
        &[
            &text(&held.event_id),
            &(held.seq as i64),
            &(held.held_ms as i64),
            &text(&held.network),
            &text(&held.session),
            &text(&held.user),
            &text(&held.sender),
            &text(&held.target),
            &text(&held.kind),
            &opt_text(&held.body),
            &text(&held.reason),
            &opt_text(&held.held_by),
            &held.status,
        ],
    )
    .await?;
    tx.commit().await?;
    Ok((held.seq, last))
}

pub(super) async fn held_messages(
    pg: &Postgres,
    all: bool,
) -> Result<Vec<HeldMessage>, ArchiveError> {
    let filter = if all { "" } else { "WHERE status = 'held'" };
    let rows = pg
        .pool()
        .get()
        .await?
        .query(
            &format!(
                "SELECT {} FROM held {filter} ORDER BY held_ms, event_id",
                pg_columns()
            ),
            &[],
        )
        .await?;
    Ok(rows.iter().map(held_of).collect())
}

pub(super) async fn held_message(
    pg: &Postgres,
    event_id: &str,
) -> Result<Option<HeldMessage>, ArchiveError> {
    let row = pg
        .pool()
        .get()
        .await?
        .query_opt(
            &format!("SELECT {} FROM held WHERE event_id = $1", pg_columns()),
            &[&text(event_id)],
        )
        .await?;
    Ok(row.as_ref().map(held_of))
}

pub(super) async fn review(
    pg: &Postgres,
    event_id: &str,
    review: &Review<'_>,
    now_ms: u64,
) -> Result<(HeldMessage, (u64, Hash)), ArchiveError> {
    let mut client = pg.pool().get().await?;
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CHAIN_LOCK])
        .await?;
    let held = tx
        .query_opt(
            &format!(
                "SELECT {} FROM held WHERE event_id = $1 FOR UPDATE",
                pg_columns()
            ),
            &[&text(event_id)],
        )
        .await?
        .as_ref()
        .map(held_of)
        .ok_or_else(|| ArchiveError::NotHeld(event_id.to_owned()))?;
    let (status, outcome, details) = review.decide(&held)?;
    let last = audit_in(&tx, "review", review.reviewer, now_ms, details).await?;
    tx.execute(
        "UPDATE held SET status = $2, decided_ms = $3, reviewer = $4, note = $5, outcome = $6 \
         WHERE event_id = $1",
        &[
            &text(event_id),
            &status,
            &(now_ms as i64),
            &text(review.reviewer),
            &text(review.note),
            &text(&outcome),
        ],
    )
    .await?;
    tx.commit().await?;
    Ok((review.applied_to(held, status, outcome, now_ms), last))
}

async fn insert_ids(
    tx: &Transaction<'_>,
    network: &str,
    event: &str,
    ids: &[NetworkId],
) -> Result<(), ArchiveError> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO bridge_ids (network, id, event, kind, by_whom) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .await?;
    for id in ids.iter().filter(|i| !i.value.is_empty()) {
        tx.execute(
            &stmt,
            &[
                &text(network),
                &text(&id.value),
                &text(event),
                &text(&id.kind),
                &opt_text(&id.by),
            ],
        )
        .await?;
    }
    Ok(())
}

pub(super) async fn bridge_record(
    pg: &Postgres,
    copy: &CopyRow,
    origin_ids: &[NetworkId],
) -> Result<bool, ArchiveError> {
    let mut client = pg.pool().get().await?;
    let tx = client.transaction().await?;
    let new = tx
        .execute(
            "INSERT INTO bridge_copies (copy_event, origin_event, origin_network, origin_room, \
             origin_author, copy_network, copy_room, excerpt, plugin, state, created_ms, \
             updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10, $10) \
             ON CONFLICT DO NOTHING",
            &[
                &text(&copy.copy_event),
                &text(&copy.origin_event),
                &text(&copy.origin_network),
                &text(&copy.origin_room),
                &opt_text(&copy.origin_author),
                &text(&copy.copy_network),
                &text(&copy.copy_room),
                &opt_text(&copy.excerpt),
                &text(&copy.plugin),
                &(copy.created_ms as i64),
            ],
        )
        .await?
        == 1;
    insert_ids(&tx, &copy.origin_network, &copy.origin_event, origin_ids).await?;
    tx.commit().await?;
    Ok(new)
}

pub(super) async fn bridge_settle(
    pg: &Postgres,
    copy_event: &str,
    delivery: &Delivery,
    now_ms: u64,
) -> Result<(), ArchiveError> {
    let mut client = pg.pool().get().await?;
    let tx = client.transaction().await?;
    let network: Option<String> = tx
        .query_opt(
            "UPDATE bridge_copies SET state = $2, reason = $3, updated_ms = $4 \
             WHERE copy_event = $1 RETURNING copy_network",
            &[
                &text(copy_event),
                &delivery.state(),
                &delivery.reason().map(|r| text(r).into_owned()),
                &(now_ms as i64),
            ],
        )
        .await?
        .map(|r| r.get(0));
    if let (Some(network), Delivery::Delivered(ids)) = (network, delivery) {
        insert_ids(&tx, &network, copy_event, ids).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn ids_of(c: &impl GenericClient, event: &str) -> Result<Vec<NetworkId>, ArchiveError> {
    let rows = c
        .query(
            "SELECT kind, id, by_whom FROM bridge_ids WHERE event = $1",
            &[&text(event)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| NetworkId {
            kind: r.get(0),
            value: r.get(1),
            by: r.get(2),
        })
        .collect())
}

pub(super) async fn bridge_status(
    pg: &Postgres,
    ticket: &str,
) -> Result<Option<Delivery>, ArchiveError> {
    let client = pg.pool().get().await?;
    let Some(row) = client
        .query_opt(
            "SELECT state, reason FROM bridge_copies WHERE copy_event = $1",
            &[&text(ticket)],
        )
        .await?
    else {
        return Ok(None);
    };
    let ids = ids_of(&client, ticket).await?;
    Ok(Some(Delivery::from_state(
        &row.get::<_, String>(0),
        row.get(1),
        ids,
    )))
}

pub(super) async fn bridge_follow(
    pg: &Postgres,
    network: &str,
    target: &str,
    to_network: &str,
    to_room: &str,
) -> Result<Option<Follows>, ArchiveError> {
    let client = pg.pool().get().await?;
    let mut events: Vec<String> = client
        .query(
            "SELECT event FROM bridge_ids WHERE network = $1 AND id = $2",
            &[&text(network), &text(target)],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    events.push(target.to_owned());
    let (to_network, to_room) = (text(to_network), text(to_room));
    for event in events {
        let event = text(&event).into_owned();
        // Its copy on the destination; else its original, when it is a
        // copy from there.
        let found = match client
            .query_opt(
                "SELECT copy_event, origin_author, excerpt FROM bridge_copies \
                 WHERE origin_event = $1 AND copy_network = $2 AND copy_room = $3 \
                 AND state = 'delivered' LIMIT 1",
                &[&event, &to_network, &to_room],
            )
            .await?
        {
            Some(row) => Some(row),
            None => {
                client
                    .query_opt(
                        "SELECT origin_event, origin_author, excerpt FROM bridge_copies \
                         WHERE copy_event = $1 AND origin_network = $2 AND origin_room = $3 \
                         LIMIT 1",
                        &[&event, &to_network, &to_room],
                    )
                    .await?
            }
        };
        if let Some(row) = found {
            let other: String = row.get(0);
            return Ok(Some(Follows {
                rel_type: String::new(),
                ids: ids_of(&client, &other).await?,
                author: row.get(1),
                excerpt: row.get(2),
                key: None,
            }));
        }
    }
    Ok(None)
}

fn copy_state(r: &Row) -> CopyState {
    CopyState {
        copy_event: r.get(0),
        origin_event: r.get(1),
        origin_network: r.get(2),
        copy_network: r.get(3),
        copy_room: r.get(4),
        state: r.get(5),
        reason: r.get(6),
    }
}

pub(super) async fn bridge_copies_of(
    pg: &Postgres,
    origin_event: &str,
) -> Result<Vec<CopyState>, ArchiveError> {
    let rows = pg
        .pool()
        .get()
        .await?
        .query(
            "SELECT copy_event, origin_event, origin_network, copy_network, copy_room, state, \
             reason FROM bridge_copies WHERE origin_event = $1 ORDER BY created_ms",
            &[&text(origin_event)],
        )
        .await?;
    Ok(rows.iter().map(copy_state).collect())
}

pub(super) async fn bridge_recent(
    pg: &Postgres,
    state: Option<&str>,
    limit: usize,
) -> Result<Vec<CopyState>, ArchiveError> {
    let rows = pg
        .pool()
        .get()
        .await?
        .query(
            "SELECT copy_event, origin_event, origin_network, copy_network, copy_room, state, \
             reason FROM bridge_copies WHERE $1::text IS NULL OR state = $1 \
             ORDER BY created_ms DESC, copy_event DESC LIMIT $2",
            &[&state, &(limit as i64)],
        )
        .await?;
    Ok(rows.iter().map(copy_state).collect())
}

pub(super) async fn account(
    pg: &Postgres,
    name: &str,
) -> Result<Option<super::Account>, ArchiveError> {
    let sql = format!(
        "SELECT {} FROM console_users WHERE name = $1",
        super::accounts::ACCOUNT_COLUMNS
    );
    let row = pg.pool().get().await?.query_opt(&sql, &[&name]).await?;
    row.map(|r| super::accounts::account(account_row(&r)))
        .transpose()
}

fn account_row(r: &Row) -> (String, String, String, i64, String) {
    (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))
}

pub(super) async fn accounts(pg: &Postgres) -> Result<Vec<super::Account>, ArchiveError> {
    let sql = format!(
        "SELECT {} FROM console_users ORDER BY name",
        super::accounts::ACCOUNT_COLUMNS
    );
    let rows = pg.pool().get().await?.query(&sql, &[]).await?;
    rows.iter()
        .map(|r| super::accounts::account(account_row(r)))
        .collect()
}

pub(super) async fn account_add(
    pg: &Postgres,
    name: &str,
    role: super::Role,
    hash: &str,
    by: &str,
    now_ms: u64,
    details: serde_json::Value,
) -> Result<u64, ArchiveError> {
    let mut client = pg.pool().get().await?;
    let tx = client.transaction().await?;
    let inserted = tx
        .execute(
            "INSERT INTO console_users (name, role, hash, created_ms, created_by) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING",
            &[&name, &role.name(), &hash, &(now_ms as i64), &text(by)],
        )
        .await?;
    if inserted == 0 {
        return Err(ArchiveError::AccountExists(name.to_owned()));
    }
    let (seq, _) = audit_in(&tx, "user-add", by, now_ms, details).await?;
    tx.commit().await?;
    Ok(seq)
}

pub(super) async fn account_remove(
    pg: &Postgres,
    name: &str,
    by: &str,
    now_ms: u64,
) -> Result<super::Account, ArchiveError> {
    let mut client = pg.pool().get().await?;
    let tx = client.transaction().await?;
    let sql = format!(
        "DELETE FROM console_users WHERE name = $1 RETURNING {}",
        super::accounts::ACCOUNT_COLUMNS
    );
    let row = tx
        .query_opt(&sql, &[&name])
        .await?
        .ok_or_else(|| ArchiveError::NoAccount(name.to_owned()))?;
    let found = super::accounts::account(account_row(&row))?;
    let details = serde_json::json!({"name": name, "role": found.role.name()});
    audit_in(&tx, "user-remove", by, now_ms, details).await?;
    tx.commit().await?;
    Ok(found)
}

pub(super) async fn note(
    pg: &Postgres,
    entry: &str,
    by: &str,
    now_ms: u64,
    details: serde_json::Value,
) -> Result<(u64, Hash), ArchiveError> {
    let mut client = pg.pool().get().await?;
    let tx = client.transaction().await?;
    let out = audit_in(&tx, entry, by, now_ms, details).await?;
    tx.commit().await?;
    Ok(out)
}

pub(super) async fn bridge_place(
    pg: &Postgres,
    event: &str,
) -> Result<Option<(String, String, u64)>, ArchiveError> {
    let sql = super::bridge_map::PLACE.replace("?1", "$1");
    let row = pg
        .pool()
        .get()
        .await?
        .query_opt(&sql, &[&text(event)])
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1), r.get::<_, i64>(2) as u64)))
}
