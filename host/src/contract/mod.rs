//! The `imgate:policy` WIT contract as Rust: the generated bindings for
//! each contract version the host carries, the slots behind the resources
//! a plugin is lent (`event-view`, `verdict-out`, `outcome-view`), and the
//! conversions between the contract's types and the neutral ones in
//! `event`.
//!
//! Owns: everything `bindgen!` generates; nothing outside the runtime
//! (`plugins`) and the capabilities sees these types. Must not touch:
//! adapters, the proxy, the archive.
//!
//! Two versions live side by side, as Spin carries its old platform
//! worlds: 0.2 (the bindings re-exported here) and 0.1 ([`v0_1`]). A
//! component targets one of them; the runtime calls it through that
//! version's bindings.

mod bindings;
pub mod convert;
pub mod matcher;
pub mod v0_1;
pub mod view;

pub use bindings::{
    archive, bridge, clock, config, handler, interest, kv, lifecycle, log, match_, metrics,
    observer, types,
};

/// The newest contract version this host implements; plugins built against
/// any `0.2.x`, or any `0.1.x` (through [`v0_1`]), load (see `wit/README.md`).
pub const CONTRACT_VERSION: &str = "0.2.2";
/// Every contract version the host implements, oldest first.
pub const CONTRACT_VERSIONS: [&str; 2] = [v0_1::VERSION, CONTRACT_VERSION];
/// The WIT package name, without version.
pub const CONTRACT_PACKAGE: &str = "imgate:policy";
