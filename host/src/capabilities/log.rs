//! `log`: plugin log lines into the host's `tracing` log, tagged with the
//! plugin's name. Config: none. Shared: none. Per instance: the name and
//! a [`LineRate`] budget, so a plugin cannot flood the log sink.

use std::sync::Arc;
use std::time::Instant;

use super::{Capability, NotGranted};
use crate::contract::log::{Host, Level};

/// Longer lines are cut: a plugin must not be able to flood the log sink.
pub const MAX_LINE_BYTES: usize = 4096;

/// Lines one instance may write in a burst, and then a second.
pub const BURST_LINES: f64 = 200.0;
pub const LINES_PER_S: f64 = 100.0;

/// A token bucket over an instance's log lines (the `log` capability and
/// WASI stdout/stderr each have one). Lines over the rate are dropped and
/// counted; the next line that passes says how many were dropped.
#[derive(Debug)]
pub struct LineRate {
    tokens: f64,
    at: Instant,
    suppressed: u64,
}

impl Default for LineRate {
    fn default() -> Self {
        LineRate {
            tokens: BURST_LINES,
            at: Instant::now(),
            suppressed: 0,
        }
    }
}

impl LineRate {
    /// Whether a line may go out now; `Some(n)` with the lines dropped
    /// since the last one that did.
    pub fn admit(&mut self) -> Option<u64> {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * LINES_PER_S;
        self.tokens = (self.tokens + refill).min(BURST_LINES);
        self.at = now;
        if self.tokens < 1.0 {
            self.suppressed += 1;
            return None;
        }
        self.tokens -= 1.0;
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// Emits `line` if `rate` admits it, first saying how many were dropped.
pub fn emit_limited(rate: &mut LineRate, plugin: &str, level: Level, line: &str) {
    if let Some(dropped) = rate.admit() {
        if dropped > 0 {
            tracing::warn!(target: "imgate::plugin", plugin, dropped, "plugin output over {LINES_PER_S} lines/s; lines dropped");
        }
        emit(plugin, level, line);
    }
}

pub struct LogInstance {
    plugin: Arc<str>,
    granted: bool,
    rate: LineRate,
}

impl LogInstance {
    pub fn new(plugin: Arc<str>, granted: bool) -> Self {
        LogInstance {
            plugin,
            granted,
            rate: LineRate::default(),
        }
    }
}

/// Emits one plugin line at `level`; shared with WASI stdout/stderr capture.
pub fn emit(plugin: &str, level: Level, line: &str) {
    let line = truncate(line, MAX_LINE_BYTES);
    match level {
        Level::Trace => tracing::trace!(target: "imgate::plugin", plugin, "{line}"),
        Level::Debug => tracing::debug!(target: "imgate::plugin", plugin, "{line}"),
        Level::Info => tracing::info!(target: "imgate::plugin", plugin, "{line}"),
        Level::Warn => tracing::warn!(target: "imgate::plugin", plugin, "{line}"),
        Level::Error => tracing::error!(target: "imgate::plugin", plugin, "{line}"),
    }
}

/// Cuts `s` to at most `max` bytes on a char boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Host for LogInstance {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        NotGranted::check(self.granted, &self.plugin, Capability::Log)?;
        emit_limited(&mut self.rate, &self.plugin, level, &message);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
    }

    #[test]
    fn lines_over_the_rate_are_dropped_and_counted() {
        let mut rate = LineRate::default();
        let passed = (0..10_000).filter(|_| rate.admit().is_some()).count();
        // The burst, plus what refilled while the loop ran.
        assert!((200..260).contains(&passed), "{passed}");
        rate.at -= std::time::Duration::from_secs(1);
        let dropped = rate.admit().unwrap();
        assert_eq!(dropped as usize, 10_000 - passed);
        assert_eq!(rate.admit(), Some(0));
    }

    #[test]
    fn ungranted_log_is_refused() {
        let mut log = LogInstance::new("p".into(), false);
        let err = log.log(Level::Info, "x".into()).unwrap_err();
        assert!(err.to_string().contains("not granted"), "{err}");
    }
}
