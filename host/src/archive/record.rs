//! What the archive holds: records of events with their final verdicts,
//! and the entries the archive makes about itself. A record's JSON is the
//! canonical form the chain hashes; the searchable columns are copies taken
//! from it.

use serde::{Deserialize, Serialize};

use crate::event::json::{DirectionDoc, EventDoc, FinalVerdictDoc};

/// One archived record; its JSON is the canonical form the chain hashes.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct ArchiveRecord {
    pub seq: u64,
    /// The plugin that appended it.
    pub plugin: String,
    pub appended_ms: u64,
    pub event: EventDoc,
    /// The chain's final verdict; absent when a policy plugin archived the
    /// event before the chain had decided.
    pub verdict: Option<FinalVerdictDoc>,
    #[serde(default)]
    pub annotations: Vec<(String, String)>,
}

/// An entry the archive makes about itself, in the same chain as the
/// records: a retention purge, or a legal hold added or removed (the
/// audit-trail alternative of SEC 17a-4(f): who did what, when).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AuditEntry {
    pub seq: u64,
    /// `purge`, `hold-add`, `hold-remove`.
    pub entry: String,
    pub at_ms: u64,
    pub by: String,
    pub details: serde_json::Value,
}

/// One entry of the chain as search finds it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Entry {
    Record(Box<ArchiveRecord>),
    Audit(AuditEntry),
}

impl ArchiveRecord {
    /// What the archive indexes of it: kind, who, where, verdict, tags,
    /// text.
    pub fn columns(&self) -> Columns {
        columns(self)
    }
}

impl Entry {
    /// Reads an entry's canonical bytes.
    ///
    /// # Errors
    /// The bytes are neither a record nor an entry.
    pub fn parse(doc: &[u8]) -> Result<Entry, serde_json::Error> {
        let value: serde_json::Value = serde_json::from_slice(doc)?;
        if value.get("entry").is_some() {
            serde_json::from_value(value).map(Entry::Audit)
        } else {
            serde_json::from_value(value).map(|r| Entry::Record(Box::new(r)))
        }
    }

    /// The record, if this entry is one.
    pub fn into_record(self) -> Option<ArchiveRecord> {
        match self {
            Entry::Record(r) => Some(*r),
            Entry::Audit(_) => None,
        }
    }

    /// The archive's entry about itself, if this is one.
    pub fn into_audit(self) -> Option<AuditEntry> {
        match self {
            Entry::Audit(a) => Some(a),
            Entry::Record(_) => None,
        }
    }

    pub fn seq(&self) -> u64 {
        match self {
            Entry::Record(r) => r.seq,
            Entry::Audit(a) => a.seq,
        }
    }
}

/// What goes in the searchable columns, taken from a record.
#[derive(Debug, PartialEq)]
pub struct Columns {
    pub appended_ms: u64,
    pub network: String,
    pub direction: String,
    pub kind: String,
    pub user: String,
    pub sender: Option<String>,
    pub recipient: Option<String>,
    pub room: Option<String>,
    pub action: Option<String>,
    pub tags: String,
    pub body: Option<String>,
}

pub(super) fn columns(r: &ArchiveRecord) -> Columns {
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
    } else if let Some(r) = &e.reaction {
        (
            "reaction",
            Some(r.sender.clone()),
            (!r.recipient.is_empty()).then(|| r.recipient.clone()),
            r.room.clone(),
            Some(r.keys.join(" ")),
        )
    } else if let Some(s) = &e.subject {
        (
            "subject",
            Some(s.sender.clone()),
            None,
            Some(s.room.clone()),
            Some(s.text.clone()),
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

pub(super) fn audit_columns(a: &AuditEntry) -> Columns {
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
