//! The compliance archive: a tamper-evident, searchable store of events
//! and their final verdicts, written by the `archive` capability and read
//! by `imgate archive`.
//!
//! - [`store`]: SQLite (WAL, `synchronous = FULL`, FTS5), hash-chained
//!   records, `verify`, `search`.

pub mod store;

pub use store::{Broken, Filter, Store, Verified};
