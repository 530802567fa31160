//! `log`: plugin log lines into the host's `tracing` log, tagged with the
//! plugin's name. Config: none. Shared: none. Per instance: the name.

use std::sync::Arc;

use super::{Capability, NotGranted};
use crate::plugins::bindings::log::{Host, Level};

/// Longer lines are cut: a plugin must not be able to flood the log sink.
pub const MAX_LINE_BYTES: usize = 4096;

pub struct LogInstance {
    plugin: Arc<str>,
    granted: bool,
}

impl LogInstance {
    pub fn new(plugin: Arc<str>, granted: bool) -> Self {
        LogInstance { plugin, granted }
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
        emit(&self.plugin, level, &message);
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
    fn ungranted_log_is_refused() {
        let mut log = LogInstance::new("p".into(), false);
        let err = log.log(Level::Info, "x".into()).unwrap_err();
        assert!(err.to_string().contains("not granted"), "{err}");
    }
}
