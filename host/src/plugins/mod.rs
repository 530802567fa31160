//! The plugin runtime: WebAssembly components, sandboxed and limited, run
//! against the `imgate:policy` contract.
//!
//! Owns: the engine, loaded plugins, instances, the chain and the chain in
//! force. Must not touch: adapters — the runtime is reached through the
//! [`crate::event::Judge`] that [`LiveChain`] implements.
//!
//! - `start`: a [`Runtime`] from a config: capabilities, engine, chain.
//! - `engine`: one `Engine` and `Linker` per process, the compiled-artifact
//!   cache, the epoch ticker.
//! - `plugin`: one loaded plugin: grant check, `InstancePre`, instance pool,
//!   crash-loop backoff, verdict checks.
//! - `instance`: one live instance: store, memory cap, deadline, calls.
//! - `chain`: the ordered chain that turns an event into a decision.
//! - `live`: the chain in force, swapped atomically by a reload.
//! - `inspect`: what a component imports and exports.
//! - `wasi`: the deny-all WASI every plugin gets.
//! - `limits`: the per-instance memory cap and CPU deadline.
//! - `view`: the `event-view` methods plugins read the event through.
//! - `verdict`: what a plugin may return: limits, text safe for the wire,
//!   tags outside the host's namespace.

mod chain;
mod engine;
mod inspect;
mod instance;
mod limits;
mod live;
mod plugin;
mod start;
mod verdict;
mod view;
mod wasi;

use crate::config::PluginSpec;

pub use chain::{AFTER_BLOCK_TAG, Chain, Decision, Failure, Stage, Timing, Timings, failure_tag};
pub use engine::{CompileSource, PluginEngine, sha256_hex};
pub use inspect::{ImportKind, Inspection, Line, inspect};
pub use instance::CallFailure;
pub use live::LiveChain;
pub use plugin::{LoadError, LoadedPlugin};
pub use start::Runtime;
pub use verdict::HOST_TAG_PREFIX;

/// What the benchmarks need to time a bare wasmtime call, the floor the
/// chain is measured against. Not an API.
#[doc(hidden)]
pub mod floor {
    pub use super::instance::{HostState, bare_store};
}

/// Crash-loop backoff's first wait, for tests that wait it out.
#[doc(hidden)]
pub use plugin::BACKOFF_BASE;

/// Why the runtime could not start, or a reload was refused (the old chain
/// then stays in force).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot open the archive {path}: {source}")]
    Archive {
        path: String,
        source: crate::archive::ArchiveError,
    },
    #[error("cannot start the plugin engine: {0:#}")]
    Engine(wasmtime::Error),
    #[error("[signing]: {}", .0.join("; "))]
    Signing(Vec<String>),
    #[error("{}", describe_plugins(.0))]
    Plugins(Vec<(PluginSpec, LoadError)>),
    #[error("[{0}] changed; restart imgate to apply it (the running chain is unchanged)")]
    NeedsRestart(&'static str),
}

fn describe_plugins(errors: &[(PluginSpec, LoadError)]) -> String {
    let lines: Vec<String> = errors
        .iter()
        .map(|(spec, e)| format!("{}: {e}", spec.location()))
        .collect();
    lines.join("\n")
}
