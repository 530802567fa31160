//! Small helpers with no knowledge of events, plugins or networks: bounded
//! file reads, hex, blocking from async code, the open-file limit.
//!
//! Owns: nothing stateful. Must not touch: any other part of the crate.

pub mod blocking;
pub mod files;
pub mod hex;
pub mod open_files;
