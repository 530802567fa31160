//! The neutral core: the event model, verdicts, the JSON form of both, and
//! the [`Judge`] interface that connects adapters to policy.
//!
//! Owns: plain Rust types every other part speaks. Must not touch: any
//! other part of the crate. The runtime converts these to and from its
//! generated WIT types at its own boundary (`contract::convert`).

pub mod bridge;
pub mod json;
mod judge;
mod model;
pub mod text;
mod verdict;

pub use judge::{Judge, Scope};
pub use model::{
    Attachment, Conversation, Direction, Event, EventKind, FileOffer, Kind, KindSet, Message,
    NetworkId, Presence, Reaction, Relation, RoomChange, Session, Subject, Text, event_id_text,
    new_event_id, new_event_uuid, new_event_uuid_at, new_session_id, now_ms, process_tag,
};
pub use verdict::{Action, Decider, FinalVerdict, Verdict};
