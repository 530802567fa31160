//! `clock`: wall and monotonic time. Config: none. Shared: none.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use super::{Capability, NotGranted};
use crate::contract::clock::Host;
use crate::event::now_ms;

pub struct ClockInstance {
    plugin: Arc<str>,
    granted: bool,
}

impl ClockInstance {
    pub fn new(plugin: Arc<str>, granted: bool) -> Self {
        ClockInstance { plugin, granted }
    }

    fn check(&self) -> wasmtime::Result<()> {
        NotGranted::check(self.granted, &self.plugin, Capability::Clock)
    }
}

/// Nanoseconds since the first call in this process: monotonic, shared by
/// every plugin so intervals compare across instances.
pub fn monotonic_ns() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

impl Host for ClockInstance {
    fn now_ms(&mut self) -> wasmtime::Result<u64> {
        self.check()?;
        Ok(now_ms())
    }

    fn monotonic_ns(&mut self) -> wasmtime::Result<u64> {
        self.check()?;
        Ok(monotonic_ns())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_never_goes_back() {
        let mut c = ClockInstance::new("p".into(), true);
        let a = c.monotonic_ns().unwrap();
        let b = c.monotonic_ns().unwrap();
        assert!(b >= a);
        assert!(c.now_ms().unwrap() > 1_600_000_000_000);
    }

    #[test]
    fn ungranted_clock_is_refused() {
        let mut c = ClockInstance::new("p".into(), false);
        assert!(c.now_ms().is_err());
    }
}
