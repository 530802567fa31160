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

/// The CPU budget of the call in progress: the CPU time of the thread
/// running the plugin, plus the time it asked to wait in WASI (a sleep is
/// charged like a loop). Host waits (an archive append waiting for fsync)
/// cost the thread no CPU, so they are not charged. A thread the machine
/// did not run (a busy host) is not the plugin's fault either, but the
/// call still ends at [`Deadline::ceiling`] of wall-clock time, so no
/// message waits on a starved plugin without bound.
pub struct Deadline {
    pub budget: Duration,
    pub started: Instant,
    /// The thread's CPU clock when the call started.
    pub cpu_started: Duration,
    /// Time the plugin spent waiting in WASI (poll, sleep) in this call.
    pub slept: Duration,
}

impl Deadline {
    /// A budget starting now, on this thread.
    pub fn new(budget: Duration) -> Self {
        Deadline::starting(budget, Instant::now())
    }

    /// A budget whose wall clock started at `started`; the CPU clock is
    /// read now, on the thread that will run the call.
    pub fn starting(budget: Duration, started: Instant) -> Self {
        Deadline {
            budget,
            started,
            cpu_started: thread_cpu(),
            slept: Duration::ZERO,
        }
    }

    /// The wall-clock time a call of `budget` may take at most: four
    /// times its budget and 50 ms more.
    pub fn ceiling(budget: Duration) -> Duration {
        budget.saturating_mul(4) + Duration::from_millis(50)
    }

    /// Time left, given how long the host made the plugin wait; `None`
    /// when the call has used its budget or reached its ceiling. Read on
    /// the thread running the call.
    pub fn remaining(&self, host_wait: Duration) -> Option<Duration> {
        let charged = thread_cpu().saturating_sub(self.cpu_started) + self.slept;
        let wall = self.started.elapsed().saturating_sub(host_wait);
        let by_cpu = self.budget.checked_sub(charged)?;
        let by_wall = Deadline::ceiling(self.budget).checked_sub(wall)?;
        Some(by_cpu.min(by_wall)).filter(|d| !d.is_zero())
    }
}

/// The CPU time the calling thread has used (one syscall, ~0.2 µs).
fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
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

    fn spin(d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until {
            std::hint::spin_loop();
        }
    }

    #[test]
    fn cpu_time_and_sleeps_are_charged() {
        let mut d = Deadline::new(Duration::from_millis(20));
        spin(Duration::from_millis(25));
        assert_eq!(d.remaining(Duration::ZERO), None, "a loop is charged");
        let mut d2 = Deadline::new(Duration::from_millis(20));
        d2.slept = Duration::from_millis(25);
        assert_eq!(d2.remaining(Duration::ZERO), None, "a sleep is charged");
        d.cpu_started = thread_cpu();
        assert!(d.remaining(Duration::ZERO).is_some());
    }

    #[test]
    fn time_off_the_cpu_is_not_charged_up_to_the_ceiling() {
        // Waiting without the CPU (a host wait, or a thread the machine
        // did not run) leaves the budget...
        let d = Deadline::new(Duration::from_millis(10));
        std::thread::sleep(Duration::from_millis(30));
        assert!(d.remaining(Duration::ZERO).is_some());
        // ...until the wall-clock ceiling, less the host's own waits.
        let late = Deadline {
            started: Instant::now() - Duration::from_millis(100),
            ..Deadline::new(Duration::from_millis(10))
        };
        assert_eq!(Deadline::ceiling(late.budget), Duration::from_millis(90));
        assert_eq!(late.remaining(Duration::ZERO), None);
        assert!(late.remaining(Duration::from_millis(60)).is_some());
    }
}
