//! The plugin runtime: WebAssembly components, sandboxed and limited, run
//! against the `imgate:policy` contract.
//!
//! - [`engine`]: one `Engine` and `Linker` per process, the compiled-artifact
//!   cache, the epoch ticker.
//! - [`plugin`]: one loaded plugin: grant check, `InstancePre`, instance pool,
//!   crash-loop backoff, verdict checks.
//! - [`instance`]: one live instance: store, memory cap, deadline, calls.
//! - [`chain`]: the ordered chain that turns an event into a decision.
//! - [`live`]: the chain in force, swapped atomically by a reload.
//! - [`inspect`]: what a component imports and exports.
//! - [`wasi`]: the deny-all WASI every plugin gets.
//! - [`limits`]: the per-instance memory cap and CPU deadline.
//! - [`view`]: the `event-view` resource plugins read the event through.
//! - [`verdict`]: what a plugin may return: limits, text safe for the wire,
//!   tags outside the host's namespace.

pub mod bindings;
pub mod chain;
pub mod engine;
pub mod inspect;
pub mod instance;
pub mod limits;
pub mod live;
pub mod plugin;
pub mod verdict;
pub mod view;
pub mod wasi;

pub use chain::{Chain, Decision};
pub use engine::PluginEngine;
pub use instance::CallFailure;
pub use live::{LiveChain, ReloadError};
pub use plugin::{LoadError, LoadedPlugin};
