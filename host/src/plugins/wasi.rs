//! The WASI every plugin links against: deny-all. No filesystem (no
//! preopens), no network, no environment or arguments, stdin closed.
//! Clocks and randomness are provided, since language runtimes (Python,
//! JavaScript) call them during ordinary work. stdout and stderr become
//! `tracing` lines tagged with the plugin's name.
//!
//! WASI is never a grant: only `imgate:policy` interfaces are.

use std::sync::Arc;

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

use crate::capabilities::log::{MAX_LINE_BYTES, emit};
use crate::plugins::bindings::log::Level;

/// A fresh deny-all context for one instance of `plugin`.
pub fn deny_all(plugin: &Arc<str>) -> WasiCtx {
    WasiCtxBuilder::new()
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .stdout(TracingStdio {
            plugin: plugin.clone(),
            level: Level::Info,
        })
        .stderr(TracingStdio {
            plugin: plugin.clone(),
            level: Level::Warn,
        })
        .build()
}

#[derive(Clone)]
struct TracingStdio {
    plugin: Arc<str>,
    level: Level,
}

impl IsTerminal for TracingStdio {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for TracingStdio {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LineWriter {
            stdio: self.clone(),
            pending: Vec::new(),
        })
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(tokio::io::sink())
    }
}

/// Splits output into lines; a partial line is held up to the log line
/// limit, so a plugin printing without newlines cannot grow it.
struct LineWriter {
    stdio: TracingStdio,
    pending: Vec<u8>,
}

impl LineWriter {
    fn emit(&self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        emit(
            &self.stdio.plugin,
            self.stdio.level,
            text.trim_end_matches('\r'),
        );
    }
}

impl OutputStream for LineWriter {
    fn write(&mut self, bytes: bytes::Bytes) -> Result<(), StreamError> {
        let mut rest = &bytes[..];
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            if self.pending.is_empty() {
                self.emit(&rest[..nl]);
            } else {
                self.pending.extend_from_slice(&rest[..nl]);
                let line = std::mem::take(&mut self.pending);
                self.emit(&line);
            }
            rest = &rest[nl + 1..];
        }
        self.pending.extend_from_slice(rest);
        if self.pending.len() >= MAX_LINE_BYTES {
            let line = std::mem::take(&mut self.pending);
            self.emit(&line);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 << 10)
    }
}

#[async_trait::async_trait]
impl Pollable for LineWriter {
    async fn ready(&mut self) {}
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.emit(&line);
        }
    }
}
