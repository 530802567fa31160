//! # imgate-sdk
//!
//! Write imgate policy plugins in Rust. Implement [`Plugin`], call
//! [`export_plugin!`] once, build for `wasm32-wasip2`:
//!
//! ```ignore
//! use imgate_sdk::{Config, Event, Plugin, Verdict};
//!
//! struct NoShouting;
//!
//! impl Plugin for NoShouting {
//!     fn init(_config: Config) -> Result<Self, String> {
//!         Ok(NoShouting)
//!     }
//!     fn handle(&mut self, event: &Event<'_>) -> Verdict {
//!         match event.body() {
//!             Some(b) if b.len() > 3 && b == b.to_uppercase() => Verdict::block("no shouting"),
//!             _ => Verdict::allow(),
//!         }
//!     }
//! }
//!
//! imgate_sdk::export_plugin!(NoShouting);
//! ```
//!
//! # Layout
//! - [`Plugin`] and [`export_plugin!`]: what an author implements and calls.
//! - [`Config`]: the plugin's settings from the operator's file.
//! - [`log`], [`clock`], [`kv`], [`archive`], [`metrics`], [`bridge`], [`settings`]:
//!   typed calls to the host capabilities. Each must be granted by the
//!   operator; importing one is asking for it.
//! - [`matching`]: keyword lists, regexes, the DLP detectors and links,
//!   matched by the host (capability `match`) the same way for every
//!   plugin language.
//! - [`testing`] (native builds only): a harness that runs the plugin's
//!   logic under `cargo test`, without wasm, with in-memory capabilities.

extern crate self as imgate_sdk;

pub mod bindings;
mod capabilities;
mod config;
pub mod matching;
mod types;

#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use capabilities::{archive, bridge, clock, kv, log, metrics, settings};
pub use config::Config;
pub use types::*;

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;
#[doc(hidden)]
pub use wit_bindgen::rt as __wit_bindgen_rt;

/// A policy plugin. One value lives in each instance; the host may run
/// several instances at once, so state shared across events belongs in
/// [`kv`].
pub trait Plugin: Sized + 'static {
    /// Called once per instance with the operator's settings. An error
    /// refuses the plugin; say what is wrong with the config.
    fn init(config: Config) -> Result<Self, String>;

    /// Judges one event. The default allows everything.
    fn handle(&mut self, event: &Event<'_>) -> Verdict {
        let _ = event;
        Verdict::allow()
    }

    /// Sees the chain's final outcome (observer plugins). Cannot change it;
    /// an error is a failure handled by the plugin's failure policy.
    fn observe(&mut self, event: &Event<'_>, outcome: &Outcome<'_>) -> Result<(), String> {
        let _ = (event, outcome);
        Ok(())
    }

    /// The kinds of event (contract names: `message`, `reaction`, …) the
    /// plugin wants to see; the host skips it for the others. `None`, the
    /// default, is every kind, including kinds added later. Asked once,
    /// after the first `init`.
    ///
    /// Add [`EACH_RECIPIENT`] to be shown each local recipient's copy of a
    /// message (an ethical wall between the sender and one member of a
    /// room); the host otherwise judges a message once for all of them.
    /// A list holding only that entry is every kind, each recipient.
    fn interest(&self) -> Option<Vec<String>> {
        None
    }
}

/// The `interest` entry (not a kind) asking to judge each local recipient
/// of a message rather than once for them all.
pub const EACH_RECIPIENT: &str = "each-recipient";

/// Exports a [`Plugin`] as an imgate component.
///
/// - `export_plugin!(T)` or `export_plugin!(T, policy)`: takes part in the
///   chain (`handle`).
/// - `export_plugin!(T, observer)`: only sees final verdicts (`observe`).
/// - `export_plugin!(T, policy, observer)`: both.
///
/// Expands to nothing on native targets, so the same crate runs its tests
/// with [`testing`].
pub use imgate_sdk_macros::export_plugin;
