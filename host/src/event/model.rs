//! The neutral event: what crossed the gateway, in no network's terms.
//!
//! The fields mirror `record event` in `wit/types.wit` one for one, so the
//! runtime's conversion at its boundary (`contract::convert`) is a copy.
//! The host's own code — adapters, the archive, the CLI — uses only these.

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
        }
    }
}

/// One thing that crossed the gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Gateway-assigned id, unique while the process runs.
    pub id: String,
    /// Network name: "xmpp", "irc", ... Open on purpose.
    pub network: String,
    pub direction: Direction,
    pub session: Session,
    /// Milliseconds since the Unix epoch, when the gateway saw it.
    pub timestamp: u64,
    pub kind: EventKind,
    /// Tags added by plugins, e.g. `dlp:card-number`.
    pub tags: Vec<String>,
    /// Namespaced extras the typed fields do not carry.
    pub attributes: Vec<(String, String)>,
}

impl Event {
    /// The message, when the event is one.
    pub fn message(&self) -> Option<&Message> {
        match &self.kind {
            EventKind::Message(m) => Some(m),
            _ => None,
        }
    }
}

/// Milliseconds since the Unix epoch: an event's timestamp.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
