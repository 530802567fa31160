//! Contract `imgate:policy@0.1.0`, carried beside 0.2 so plugins built for
//! it keep loading: its bindings (from `wit/released/0.1.0/`) and the
//! conversions that present neutral events and outcomes in its closed
//! records, and read its verdicts back. A 0.1 plugin's verdicts keep their
//! meaning; it sees only the kinds 0.1 names (see `Kind::in_v0_1`).

mod bindings;
mod convert;

pub use bindings::{archive, clock, config, handler, kv, lifecycle, log, metrics, observer, types};

/// The 0.1 contract this host implements.
pub const VERSION: &str = "0.1.0";
