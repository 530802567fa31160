//! The neutral event model: what adapters produce and plugins judge.
//!
//! The types are generated from `wit/types.wit`, so the host, the SDK and
//! every plugin share one definition. [`json`] is their documented JSON
//! form, used by `imgate replay`, verdict output and the archive.

pub mod json;

pub use crate::plugins::bindings::{
    Action, Attachment, Conversation, Decider, Direction, Event, EventKind, FileOffer,
    FinalVerdict, Kind, Message, Presence, RoomChange, Session, Verdict,
};

impl Action {
    /// The action's name as it appears in logs, metrics and JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Block(_) => "block",
            Action::Drop => "drop",
            Action::Rewrite(_) => "rewrite",
        }
    }
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

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
        }
    }
}
