//! # imgate
//!
//! A minimal interception core for enterprise instant messaging: protocol
//! adapters turn traffic into neutral events, and a chain of sandboxed
//! WebAssembly components decides what happens to each.
//!
//! ```text
//! adapter ──▶ Event ──▶ Chain (policy plugins, then observers) ──▶ Decision ──▶ adapter
//!                          │ capabilities (WIT imports): log · clock · config · kv · archive · metrics · bridge
//! ```
//!
//! # Layout
//! The parts and the arrows allowed between them are drawn in
//! `docs/architecture.md` and enforced by `tests/architecture.rs`.
//! - [`event`]: the neutral core: events, verdicts, their JSON form, [`Judge`].
//! - [`adapters`]: one folder per network (`xmpp/`, `irc/`), and `stream/`,
//!   the accept loop and session driver they share.
//! - [`plugins`]: the runtime: engine, loaded plugins, instances, the chain.
//! - [`contract`]: the WIT contract as Rust (generated bindings, conversions).
//! - [`capabilities`]: host implementations of the WIT imports, one module each.
//! - [`archive`]: the compliance archive (hash-chained, searchable), on either store.
//! - [`store`]: `[store]`: SQLite or a PostgreSQL pool shared by several gateways.
//! - [`config`]: the operator's TOML file, validated with every problem located.
//! - `signing`: ed25519 signatures over plugin components, and the trust policy.
//! - [`tls`]: rustls configs for both sides, and development certificates.
//! - `gateway`: the long-running process (`imgate run`): wiring, reloads, admin API.
//! - [`cli`]: the `imgate` commands.
//! - [`util`]: bounded file reads, hex, blocking from async code.
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
//! - [`Judge`]: event in, final verdict out. Adapters ask it through their
//!   [`adapters::Gate`] and apply the verdict in their protocol's terms;
//!   the gateway wires it to the [`LiveChain`].
//! - [`LiveChain`]: the chain in force. A reload builds a new chain in full
//!   and swaps it in atomically; a failed reload keeps the old one.

pub mod adapters;
pub mod archive;
pub mod capabilities;
pub mod cli;
pub mod config;
pub mod contract;
pub mod event;
mod gateway;
pub mod plugins;
mod signing;
pub mod store;
pub mod tls;
pub mod util;

pub use config::{Config, FailurePolicy, PluginSpec};
pub use event::{Action, Event, EventKind, FinalVerdict, Judge, Verdict};
pub use plugins::{
    CallFailure, Chain, Decision, LiveChain, LoadError, LoadedPlugin, PluginEngine, Runtime,
    RuntimeError,
};
