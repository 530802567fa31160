//! Per-plugin limits that live in the store: the memory cap and the CPU
//! deadline. (The engine-wide ceilings are in `engine`.)

use std::time::{Duration, Instant};

use wasmtime::ResourceLimiter;

/// Caps one instance's linear memories and tables. Remembers that it
/// refused a growth, so a trap that follows is reported as the memory cap
/// rather than as a bare trap.
pub struct MemoryCap {
    pub max_bytes: usize,
    pub max_table_elements: usize,
    pub refused: bool,
    /// Linear memory the instance holds now, over all its memories.
    pub linear_bytes: usize,
}

impl MemoryCap {
    pub fn new(max_bytes: usize) -> Self {
        MemoryCap {
            max_bytes,
            max_table_elements: 100_000,
            refused: false,
            linear_bytes: 0,
        }
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.refused = true;
            return Ok(false);
        }
        self.linear_bytes += desired.saturating_sub(current);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_table_elements {
            self.refused = true;
            return Ok(false);
        }
        Ok(true)
    }
}

/// The CPU budget of the call in progress. Host waits (an archive append
/// waiting for fsync) are not the plugin's CPU and are subtracted.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    pub budget: Duration,
    pub started: Instant,
}

impl Deadline {
    pub fn new(budget: Duration) -> Self {
        Deadline {
            budget,
            started: Instant::now(),
        }
    }

    /// Time left, given how long the host made the plugin wait.
    pub fn remaining(&self, host_wait: Duration) -> Option<Duration> {
        let used = self.started.elapsed().saturating_sub(host_wait);
        self.budget.checked_sub(used).filter(|d| !d.is_zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_cap_refuses_and_remembers() {
        let mut cap = MemoryCap::new(1 << 20);
        assert!(cap.memory_growing(0, 1 << 19, None).unwrap());
        assert!(!cap.refused);
        assert!(!cap.memory_growing(0, 2 << 20, None).unwrap());
        assert!(cap.refused);
    }

    #[test]
    fn host_wait_is_not_charged() {
        let d = Deadline {
            budget: Duration::from_millis(10),
            started: Instant::now() - Duration::from_millis(50),
        };
        assert_eq!(d.remaining(Duration::ZERO), None);
        assert!(d.remaining(Duration::from_millis(45)).is_some());
    }
}
