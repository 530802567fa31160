//! The WASI every plugin links against: deny-all. No filesystem (no
//! preopens), no network, no environment or arguments, stdin closed.
//! Clocks and randomness are provided, since language runtimes (Python,
//! JavaScript) call them during ordinary work. stdout and stderr become
//! `tracing` lines tagged with the plugin's name.
//!
//! WASI is never a grant: only `imgate:policy` interfaces are.
//!
//! The epoch deadline interrupts wasm code, not the host: a plugin that
//! sleeps (`std::thread::sleep`, `time.sleep`, `setTimeout` spun on a
//! poll) waits inside `wasi:io/poll`, where no epoch reaches it, and in
//! `imgate run` each such wait parks a thread of tokio's blocking pool.
//! So `wasi:io/poll` is linked here, over wasmtime-wasi's, bounded by the
//! call's remaining deadline: a wait that outlives it ends the call as a
//! timeout. Output to stdout and stderr is rate-limited per instance.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::bindings::io::poll as async_poll;
use wasmtime_wasi::p2::bindings::sync::io::poll as sync_poll;
use wasmtime_wasi::p2::{DynPollable, OutputStream, Pollable, StreamError};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

use crate::capabilities::log::{LineRate, MAX_LINE_BYTES, emit_limited};
use crate::contract::log::Level;

/// A fresh deny-all context for one instance of `plugin`.
pub fn deny_all(plugin: &Arc<str>) -> WasiCtx {
    // stdout and stderr share one budget.
    let rate = Arc::new(std::sync::Mutex::new(LineRate::default()));
    WasiCtxBuilder::new()
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .stdout(TracingStdio {
            plugin: plugin.clone(),
            level: Level::Info,
            rate: rate.clone(),
        })
        .stderr(TracingStdio {
            plugin: plugin.clone(),
            level: Level::Warn,
            rate,
        })
        .build()
}

/// A host-side wait (a poll, a sleep) that would outlive the call's
/// deadline. It traps the call, which is then reported as a timeout.
#[derive(Debug, thiserror::Error)]
#[error("plugin waited in WASI past its deadline")]
pub struct WaitPastDeadline;

/// `wasi:io/poll` for one call: the table, the time the call has left
/// (`None`: none), and where the time it waits is charged.
pub struct BoundedPoll<'a> {
    pub table: &'a mut ResourceTable,
    pub left: Option<Duration>,
    pub slept: &'a mut Duration,
}

struct HasBoundedPoll;

impl HasData for HasBoundedPoll {
    type Data<'a> = BoundedPoll<'a>;
}

/// Links the bounded `wasi:io/poll` over the one `add_to_linker_sync` put
/// in `linker`. `poll_of` gives the table and the time left of the call.
///
/// # Errors
/// The linker refuses the definitions.
pub fn link_bounded_poll<T: 'static>(
    linker: &mut Linker<T>,
    poll_of: fn(&mut T) -> BoundedPoll<'_>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let linked = sync_poll::add_to_linker::<T, HasBoundedPoll>(linker, poll_of);
    linker.allow_shadowing(false);
    linked
}

/// The timers plugin waits use: the waiting thread polls the wait itself
/// ([`park_on`]), and this runtime's one worker only drives the timers. It
/// must not be the gateway's runtime: under a storm of sleeping plugins
/// every gateway worker can be inside a plugin call, and then nothing
/// would drive the timer that ends them.
static WAIT_RUNTIME: std::sync::LazyLock<Option<tokio::runtime::Runtime>> =
    std::sync::LazyLock::new(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(1)
            .thread_name("imgate-wasi-wait")
            .enable_time()
            .build()
            .inspect_err(|e| tracing::error!(error = %e, "cannot start the WASI wait runtime"))
            .ok()
    });

impl BoundedPoll<'_> {
    /// Runs the wait `f` for at most the time left.
    fn within<R>(
        &mut self,
        f: impl AsyncFnOnce(&mut ResourceTable) -> wasmtime::Result<R>,
    ) -> wasmtime::Result<R> {
        let left = self.left.ok_or(WaitPastDeadline)?;
        // Without a runtime no wait can be bounded: refuse to wait at all.
        let runtime = WAIT_RUNTIME.as_ref().ok_or(WaitPastDeadline)?;
        // Timers made while the guard is held (the timeout, and the
        // sleep inside a clock pollable) belong to the wait runtime.
        let _timers = runtime.enter();
        let table = &mut *self.table;
        let waiting = std::time::Instant::now();
        let result = park_on(async move {
            match tokio::time::timeout(left, f(table)).await {
                Ok(result) => result,
                Err(_) => Err(WaitPastDeadline.into()),
            }
        });
        *self.slept += waiting.elapsed();
        result
    }
}

/// Polls `future` on this thread, parking between wake-ups. Unlike a
/// runtime's `block_on` it works wherever a plugin is called from, inside
/// an async context or not; the wait is bounded by the caller's timeout.
fn park_on<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let mut future = std::pin::pin!(future);
    let waker = Arc::new(Unpark(std::thread::current())).into();
    let mut cx = std::task::Context::from_waker(&waker);
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

impl sync_poll::Host for BoundedPoll<'_> {
    fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        self.within(async move |t| async_poll::Host::poll(t, pollables).await)
    }
}

impl sync_poll::HostPollable for BoundedPoll<'_> {
    fn ready(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<bool> {
        self.within(async move |t| async_poll::HostPollable::ready(t, pollable).await)
    }

    fn block(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        self.within(async move |t| async_poll::HostPollable::block(t, pollable).await)
    }

    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        async_poll::HostPollable::drop(self.table, pollable)
    }
}

#[derive(Clone)]
struct TracingStdio {
    plugin: Arc<str>,
    level: Level,
    rate: Arc<std::sync::Mutex<LineRate>>,
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
        let mut rate = self.stdio.rate.lock().unwrap_or_else(|p| p.into_inner());
        emit_limited(
            &mut rate,
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
