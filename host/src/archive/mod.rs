//! The compliance archive: a tamper-evident, searchable store of events
//! and their final verdicts, written by the `archive` capability and read
//! by `imgate archive`.
//!
//! - [`store`]: SQLite (WAL, `synchronous = FULL`, FTS5), hash-chained
//!   records, `verify`, `search`.
//! - [`export`]: records out as JSONL or EML, with a manifest of hashes.
//! - [`checkpoint`]: signed checkpoints of the chain's head, the anchor
//!   that makes truncation and re-hashing detectable.

pub mod checkpoint;
pub mod export;
pub mod store;

pub use store::{Broken, Filter, Store, Stored, Verified};
