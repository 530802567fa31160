//! # imgate
//!
//! A minimal interception core for enterprise instant messaging: protocol
//! adapters turn traffic into neutral events, and a chain of sandboxed
//! WebAssembly components decides what happens to each.
//!
//! ```text
//! adapter ──▶ Event ──▶ Chain (policy plugins, then observers) ──▶ Decision ──▶ adapter
//!                          │ capabilities (WIT imports): log · clock · config · kv · archive · metrics
//! ```
//!
//! # Layout
//! - [`config`]: the operator's TOML file, validated with every problem located.
//! - [`event`]: the neutral event model (generated from `wit/`) and its JSON form.
//! - [`plugins`]: the runtime: engine, loaded plugins, instances, the chain.
//! - [`capabilities`]: host implementations of the WIT imports, one module each.
//! - [`archive`]: the compliance archive's store (SQLite, hash-chained, searchable).
//! - [`runtime`]: builds engine, capabilities and chain from a config.
//! - [`signing`]: ed25519 signatures over plugin components, and the trust policy.
//! - [`files`]: bounded reads of the files an operator names (regular files only).
//! - [`adapters`]: one folder per network (`xmpp/`): codec, events, session, config.
//! - [`proxy`]: the accept loop adapters share: connection cap, draining.
//! - [`tls`]: rustls configs for both sides, and development certificates.
//! - [`gateway`]: the long-running process (`imgate run`): adapters, reload triggers, shutdown.
//! - [`admin`]: the admin HTTP API.
//! - [`cli`]: the `imgate` commands.
//!
//! # Core concepts
//! - [`PluginEngine`]: one per process. Owns the wasmtime `Engine` (pooling
//!   allocator, epoch interruption), the `Linker` filled once, the compiled
//!   artifact cache and the epoch thread.
//! - [`LoadedPlugin`]: a component compiled once and linked into an
//!   `InstancePre`, with a pool of ready instances. Loading checks its pin,
//!   its contract version and that every capability it imports is granted.
//! - [`Chain`]: the ordered plugins. [`Chain::evaluate`] takes `&self`, so
//!   many events run at once, each on its own instances.
//! - [`Decision`]: the final verdict, which plugin (name and sha256)
//!   decided it, the tags, each plugin's time, and the chain generation.
//! - [`adapters::Judge`]: how an adapter hands an event to the chain in
//!   force; the adapter then applies the verdict in its protocol's terms.
//! - [`LiveChain`]: the chain in force. A reload builds a new chain in full
//!   and swaps it in atomically; a failed reload keeps the old one.

pub mod adapters;
pub mod admin;
pub mod archive;
pub mod capabilities;
pub mod cli;
pub mod config;
pub mod event;
pub mod files;
pub mod gateway;
pub mod plugins;
pub mod proxy;
pub mod runtime;
pub mod signing;
pub mod tls;

pub use config::{Config, FailurePolicy, PluginSpec};
pub use event::{Action, Event, EventKind, FinalVerdict, Verdict};
pub use plugins::{
    CallFailure, Chain, Decision, LiveChain, LoadError, LoadedPlugin, PluginEngine, ReloadError,
};
pub use runtime::Runtime;
