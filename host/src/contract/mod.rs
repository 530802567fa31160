//! The `imgate:policy` WIT contract as Rust: the generated bindings, the
//! `event-view` resource's slot, and the conversions between the contract's
//! types and the neutral ones in `event`.
//!
//! Owns: everything `bindgen!` generates; nothing outside the runtime
//! (`plugins`) and the capabilities sees these types. Must not touch:
//! adapters, the proxy, the archive.

mod bindings;
mod convert;
pub mod view;

pub use bindings::{archive, clock, config, handler, kv, lifecycle, log, metrics, observer, types};

/// The contract version this host implements; plugins built against any
/// `0.1.x` load (see `wit/README.md`).
pub const CONTRACT_VERSION: &str = "0.1.0";
/// The WIT package name, without version.
pub const CONTRACT_PACKAGE: &str = "imgate:policy";
