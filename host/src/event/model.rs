//! The neutral event: what crossed the gateway, in no network's terms.
//!
//! The contract's `event-view` (wit/types.wit) reads these field by field;
//! the 0.1 contract's records are built from them too (`contract::v0_1`).
//! The host's own code — adapters, the archive, the CLI — uses only these.

use std::borrow::Cow;
use std::sync::Arc;

/// Which way an event travels through the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the local client towards the IM network.
    Outbound,
    /// From the IM network towards the local client.
    Inbound,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
        }
    }
}

/// The session an event belongs to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Session {
    /// Gateway-assigned id, unique while the process runs.
    pub id: String,
    /// The authenticated local user; empty before authentication.
    pub user: String,
    /// The client's address as `ip:port`.
    pub peer: String,
}

/// Where a message is said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Conversation {
    Direct,
    /// A multi-user room: its id (MUC JID, IRC channel).
    Group(String),
}

/// A file a message refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    pub url: String,
    pub name: Option<String>,
    pub media_type: Option<String>,
    pub size: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub id: Option<String>,
    pub sender: String,
    pub recipient: String,
    pub conversation: Conversation,
    /// Plain text; empty when `encrypted`.
    pub body: String,
    pub markup: Option<String>,
    pub thread: Option<String>,
    pub reply_to: Option<String>,
    pub attachments: Vec<Attachment>,
    pub encrypted: bool,
    /// A /me action.
    pub action: bool,
    pub edit_of: Option<String>,
    pub retraction_of: Option<String>,
    /// A subject the message carries beside its body (XMPP `<subject>`).
    pub subject: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presence {
    pub sender: String,
    pub recipient: Option<String>,
    pub available: bool,
    pub show: Option<String>,
    pub status: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileOffer {
    pub id: Option<String>,
    pub sender: String,
    pub recipient: String,
    pub name: String,
    pub size: Option<u64>,
    pub media_type: Option<String>,
}

/// Someone reacted to a message (XEP-0444, IRCv3 `+draft/react`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reaction {
    pub sender: String,
    pub recipient: String,
    pub conversation: Conversation,
    /// The network id of the message reacted to.
    pub target: String,
    /// The reactions (emoji); XEP-0444 sends the full set, possibly empty
    /// (all removed).
    pub keys: Vec<String>,
}

/// A room's subject or topic set (XMPP MUC `<subject>`, IRC `TOPIC`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    pub sender: String,
    pub room: String,
    /// The new subject; empty clears it.
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomChange {
    pub room: String,
    pub occupant: String,
    pub nick: Option<String>,
    pub reason: Option<String>,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    Message(Message),
    Presence(Presence),
    FileOffer(FileOffer),
    SessionStart,
    SessionEnd(String),
    RoomJoin(RoomChange),
    RoomLeave(RoomChange),
    Reaction(Reaction),
    Subject(Subject),
}

/// Which kind of event, without its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Message,
    Presence,
    FileOffer,
    SessionStart,
    SessionEnd,
    RoomJoin,
    RoomLeave,
    Reaction,
    Subject,
}

impl Kind {
    /// The kind's name in the contract (`event-view.kind()`, `interest`):
    /// room joins and leaves are both `membership`.
    pub fn contract_name(self) -> &'static str {
        match self {
            Kind::Message => "message",
            Kind::Presence => "presence",
            Kind::FileOffer => "file-offer",
            Kind::SessionStart => "session-start",
            Kind::SessionEnd => "session-end",
            Kind::RoomJoin | Kind::RoomLeave => "membership",
            Kind::Reaction => "reaction",
            Kind::Subject => "subject",
        }
    }

    /// Whether contract 0.1's closed `kind` enum names it; 0.1 plugins
    /// never see the others (as on a 0.1 host, where they were not events).
    pub fn in_v0_1(self) -> bool {
        !matches!(self, Kind::Reaction | Kind::Subject)
    }

    /// Every kind, for sets indexed by kind.
    pub const ALL: [Kind; 9] = [
        Kind::Message,
        Kind::Presence,
        Kind::FileOffer,
        Kind::SessionStart,
        Kind::SessionEnd,
        Kind::RoomJoin,
        Kind::RoomLeave,
        Kind::Reaction,
        Kind::Subject,
    ];
}

/// A set of kinds: which events a plugin wants to see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindSet(u16);

impl KindSet {
    pub const ALL: KindSet = KindSet(u16::MAX);

    pub fn of(kinds: impl IntoIterator<Item = Kind>) -> Self {
        KindSet(kinds.into_iter().fold(0, |bits, k| bits | 1 << k as u16))
    }

    /// The kinds the contract names `names` (unknown names are kinds
    /// this host does not have yet, and match nothing).
    pub fn named<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let names: Vec<&str> = names.into_iter().collect();
        Self::of(
            Kind::ALL
                .into_iter()
                .filter(|k| names.contains(&k.contract_name())),
        )
    }

    #[inline]
    pub fn contains(self, kind: Kind) -> bool {
        self.0 & (1 << kind as u16) != 0
    }

    pub fn intersect(self, other: KindSet) -> KindSet {
        KindSet(self.0 & other.0)
    }
}

/// An id the network gave an event (`message-id`, `origin-id`,
/// `stanza-id`, `msgid`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkId {
    pub kind: String,
    pub value: String,
    /// Who assigned it, when the network says.
    pub by: Option<String>,
}

impl NetworkId {
    pub fn new(kind: &str, value: impl Into<String>) -> Self {
        NetworkId {
            kind: kind.to_owned(),
            value: value.into(),
            by: None,
        }
    }
}

/// How an event points at another message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relation {
    /// `edit`, `retraction`, `reply`, `thread`, `reaction`.
    pub rel_type: &'static str,
    pub target: String,
    pub key: Option<String>,
}

/// One user-authored text and its role (`body`, `subject`, `reaction`, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Text<'a> {
    pub role: &'static str,
    pub value: &'a str,
}

impl EventKind {
    pub fn kind(&self) -> Kind {
        match self {
            EventKind::Message(_) => Kind::Message,
            EventKind::Presence(_) => Kind::Presence,
            EventKind::FileOffer(_) => Kind::FileOffer,
            EventKind::SessionStart => Kind::SessionStart,
            EventKind::SessionEnd(_) => Kind::SessionEnd,
            EventKind::RoomJoin(_) => Kind::RoomJoin,
            EventKind::RoomLeave(_) => Kind::RoomLeave,
            EventKind::Reaction(_) => Kind::Reaction,
            EventKind::Subject(_) => Kind::Subject,
        }
    }

    /// The kind's name as it appears in logs, metrics and JSON.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Message(_) => "message",
            EventKind::Presence(_) => "presence",
            EventKind::FileOffer(_) => "file_offer",
            EventKind::SessionStart => "session_start",
            EventKind::SessionEnd(_) => "session_end",
            EventKind::RoomJoin(_) => "room_join",
            EventKind::RoomLeave(_) => "room_leave",
            EventKind::Reaction(_) => "reaction",
            EventKind::Subject(_) => "subject",
        }
    }
}

/// One thing that crossed the gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Gateway-assigned, globally unique and sortable by time (UUIDv7).
    pub id: String,
    /// Network name: "xmpp", "irc", ... Open on purpose; an adapter's
    /// is static, so naming it allocates nothing.
    pub network: Cow<'static, str>,
    pub direction: Direction,
    /// Shared by every event of the session (built once, at login).
    pub session: Arc<Session>,
    /// Milliseconds since the Unix epoch, when the gateway saw it.
    pub timestamp: u64,
    pub kind: EventKind,
    /// Tags added by plugins, e.g. `dlp:card-number`.
    pub tags: Vec<String>,
    /// Namespaced extras the typed fields do not carry.
    pub attributes: Vec<(String, String)>,
    /// The network's own ids for it.
    pub ids: Vec<NetworkId>,
}

impl Event {
    /// The message, when the event is one.
    pub fn message(&self) -> Option<&Message> {
        match &self.kind {
            EventKind::Message(m) => Some(m),
            _ => None,
        }
    }

    /// The text a rewrite replaces: a message's body, a subject's text.
    /// None for other kinds and for encrypted messages.
    pub fn body(&self) -> Option<&str> {
        match &self.kind {
            EventKind::Message(m) if !m.encrypted => Some(&m.body),
            EventKind::Subject(s) => Some(&s.text),
            _ => None,
        }
    }

    /// The text a rewrite replaces, to change it.
    pub fn body_mut(&mut self) -> Option<&mut String> {
        match &mut self.kind {
            EventKind::Message(m) if !m.encrypted => Some(&mut m.body),
            EventKind::Subject(s) => Some(&mut s.text),
            _ => None,
        }
    }

    /// Who sent it; empty for session events.
    pub fn sender(&self) -> &str {
        match &self.kind {
            EventKind::Message(m) => &m.sender,
            EventKind::Presence(p) => &p.sender,
            EventKind::FileOffer(f) => &f.sender,
            EventKind::RoomJoin(r) | EventKind::RoomLeave(r) => &r.occupant,
            EventKind::Reaction(r) => &r.sender,
            EventKind::Subject(s) => &s.sender,
            EventKind::SessionStart | EventKind::SessionEnd(_) => "",
        }
    }

    /// Who it is for, one to one.
    pub fn recipient(&self) -> Option<&str> {
        match &self.kind {
            EventKind::Message(Message {
                recipient,
                conversation: Conversation::Direct,
                ..
            })
            | EventKind::Reaction(Reaction {
                recipient,
                conversation: Conversation::Direct,
                ..
            }) => Some(recipient),
            EventKind::Presence(p) => p.recipient.as_deref(),
            EventKind::FileOffer(f) => Some(&f.recipient),
            _ => None,
        }
    }

    /// The room anything is said or done in.
    pub fn room(&self) -> Option<&str> {
        match &self.kind {
            EventKind::Message(Message {
                conversation: Conversation::Group(room),
                ..
            })
            | EventKind::Reaction(Reaction {
                conversation: Conversation::Group(room),
                ..
            }) => Some(room),
            EventKind::RoomJoin(r) | EventKind::RoomLeave(r) => Some(&r.room),
            EventKind::Subject(s) => Some(&s.room),
            _ => None,
        }
    }

    /// Every text a user wrote in the event, with its role. What a DLP
    /// rule must see, whatever the kind.
    pub fn texts(&self) -> Vec<Text<'_>> {
        let text = |role, value| Text { role, value };
        let mut out = Vec::new();
        match &self.kind {
            EventKind::Message(m) => {
                if !m.encrypted && !m.body.is_empty() {
                    out.push(text("body", m.body.as_str()));
                }
                if let Some(subject) = &m.subject {
                    out.push(text("subject", subject));
                }
                if let Some(markup) = &m.markup {
                    out.push(text("markup", markup));
                }
                for a in &m.attachments {
                    out.push(text("attachment-url", &a.url));
                    if let Some(name) = &a.name {
                        out.push(text("file-name", name));
                    }
                }
            }
            EventKind::Presence(p) => {
                if let Some(status) = &p.status {
                    out.push(text("status", status));
                }
            }
            EventKind::FileOffer(f) => out.push(text("file-name", &f.name)),
            EventKind::RoomJoin(r) | EventKind::RoomLeave(r) => {
                if let Some(nick) = &r.nick {
                    out.push(text("nick", nick));
                }
                if let Some(reason) = &r.reason {
                    out.push(text("reason", reason));
                }
            }
            EventKind::Reaction(r) => out.extend(r.keys.iter().map(|k| text("reaction", k))),
            EventKind::Subject(s) => out.push(text("subject", &s.text)),
            EventKind::SessionStart | EventKind::SessionEnd(_) => {}
        }
        out
    }

    /// What the event points at: edits, retractions, replies, threads,
    /// reactions.
    pub fn relations(&self) -> Vec<Relation> {
        let rel = |rel_type, target: &String| Relation {
            rel_type,
            target: target.clone(),
            key: None,
        };
        let mut out = Vec::new();
        match &self.kind {
            EventKind::Message(m) => {
                out.extend(m.edit_of.iter().map(|t| rel("edit", t)));
                out.extend(m.retraction_of.iter().map(|t| rel("retraction", t)));
                out.extend(m.reply_to.iter().map(|t| rel("reply", t)));
                out.extend(m.thread.iter().map(|t| rel("thread", t)));
            }
            EventKind::Reaction(r) => {
                if r.keys.is_empty() {
                    out.push(rel("reaction", &r.target));
                }
                out.extend(r.keys.iter().map(|k| Relation {
                    key: Some(k.clone()),
                    ..rel("reaction", &r.target)
                }));
            }
            _ => {}
        }
        out
    }

    /// The format of the message's markup, named as the contract does.
    pub fn markup_format(&self) -> Option<&'static str> {
        self.message()?.markup.as_ref()?;
        Some(match &*self.network {
            "xmpp" => "xhtml-im",
            "irc" => "irc-formatting",
            "matrix" => "matrix-html",
            _ => "unknown",
        })
    }
}

/// A fresh event id: a UUIDv7, so ids are unique across restarts and
/// gateways and sort by the time they were made.
pub fn new_event_id() -> String {
    event_id_text(new_event_uuid())
}

/// An event id's text (hyphenated, lower case), written directly rather
/// than through `Display`: one per judged event.
pub fn event_id_text(uuid: uuid::Uuid) -> String {
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    uuid.hyphenated().encode_lower(&mut text).to_owned()
}

/// A new event id as a UUID (16 bytes, copied freely; formatted when
/// needed).
pub fn new_event_uuid() -> uuid::Uuid {
    new_event_uuid_at(now_ms())
}

/// A new event id made at `ms` (the event's timestamp, so the two agree
/// and the clock is read once).
pub fn new_event_uuid_at(ms: u64) -> uuid::Uuid {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    // A process-wide sequence after the millisecond keeps ids in the order
    // they were made (the review queue lists held messages by it); four
    // random bytes keep processes apart.
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let n = SEQUENCE.fetch_add(1, Relaxed);
    let random = random_bytes();
    // UUIDv7 keeps 12 bits (rand_a), then 62 (rand_b): 42 bits of sequence.
    let bytes = [
        (n >> 38) as u8 & 0x0f,
        (n >> 30) as u8,
        (n >> 24) as u8 & 0x3f,
        (n >> 16) as u8,
        (n >> 8) as u8,
        n as u8,
        random[0],
        random[1],
        random[2],
        random[3],
    ];
    uuid::Builder::from_unix_timestamp_millis(ms, &bytes).into_uuid()
}

/// Four random bytes for an id, from a per-thread pool the OS refills
/// a thousand ids at a time (a system call per event showed in profiles).
fn random_bytes() -> [u8; 4] {
    use std::cell::RefCell;
    thread_local! {
        static POOL: RefCell<([u8; 4000], usize)> = const { RefCell::new(([0; 4000], 4000)) };
    }
    POOL.with_borrow_mut(|(pool, used)| {
        if *used + 4 > pool.len() {
            // Without OS randomness the ids stay unique in this process
            // (the sequence); only the bytes telling processes apart repeat.
            let _ = getrandom::fill(pool);
            *used = 0;
        }
        let mut out = [0; 4];
        out.copy_from_slice(&pool[*used..*used + 4]);
        *used += 4;
        out
    })
}

/// A new session's id, unique across the gateways sharing a store and
/// across restarts: the network, this process's random tag and a counter
/// (`xmpp-3f9a1c07-12`).
pub fn new_session_id(network: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{network}-{}-{n}", process_tag())
}

/// This process's random tag, in its session ids and its start-up log
/// line: which gateway a session is on.
pub fn process_tag() -> &'static str {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        let mut bytes = [0u8; 4];
        // Without randomness, the time still tells two processes apart.
        if getrandom::fill(&mut bytes).is_err() {
            bytes = (now_ms() as u32).to_be_bytes();
        }
        format!("{:08x}", u32::from_be_bytes(bytes))
    })
}

/// Milliseconds since the Unix epoch: an event's timestamp.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_uuid_v7_in_the_order_they_were_made() {
        let ids: Vec<String> = (0..5000).map(|_| new_event_id()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ordered");
        let id = uuid::Uuid::parse_str(&ids[0]).unwrap();
        assert_eq!(id.get_version_num(), 7);
    }
}
