//! Host-side bindings generated from `wit/` (package `imgate:policy@0.2.2`).
//!
//! Imports are `trappable` so a capability can refuse a call it was not
//! granted with a trap, the per-call half of the grant check.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "host-view",
    imports: { default: trappable },
    additional_derives: [PartialEq, Eq],
    with: {
        "imgate:policy/types.event-view": super::view::EventView,
        "imgate:policy/types.verdict-out": super::view::VerdictOut,
        "imgate:policy/types.outcome-view": super::view::OutcomeView,
        "imgate:policy/bridge.outgoing": crate::event::bridge::Draft,
        "imgate:policy/match.matcher": super::matcher::MatcherRef,
    },
});

pub use self::imgate::policy::{archive, bridge, clock, config, kv, log, match_, metrics, types};
pub use exports::imgate::policy::{handler, interest, lifecycle, observer};
