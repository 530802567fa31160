//! Host-side bindings generated from `wit/` (package `imgate:policy`).
//!
//! Imports are `trappable` so a capability can refuse a call it was not
//! granted with a trap, the per-call half of the grant check.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "host-view",
    imports: { default: trappable },
    additional_derives: [PartialEq, Eq],
    with: { "imgate:policy/types.event-view": super::view::EventView },
});

pub use self::imgate::policy::types::{
    Action, Attachment, Conversation, Decider, Direction, Event, EventKind, FileOffer,
    FinalVerdict, Kind, Message, Presence, RoomChange, Session, Verdict,
};
pub use self::imgate::policy::{archive, clock, config, kv, log, metrics};
pub use exports::imgate::policy::{handler, lifecycle, observer};

/// The contract version this host implements; plugins built against any
/// `0.1.x` load (see `wit/README.md`).
pub const CONTRACT_VERSION: &str = "0.1.0";
/// The WIT package name, without version.
pub const CONTRACT_PACKAGE: &str = "imgate:policy";
