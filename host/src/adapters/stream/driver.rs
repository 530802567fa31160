//! The session driver: connect, relay and close, written once for every
//! stream protocol. A protocol supplies its handshake ([`Protocol::connect`])
//! and its [`Hooks`]; the driver owns the sockets, the loop and the order
//! of the goodbyes.
//!
//! ```text
//! connect:  accept ─▶ Protocol::connect (TLS, handshake, upstream) within the handshake timeout
//! relay:    read a side ─▶ every complete frame ─▶ Hooks::{client,upstream}_frame ─▶ Outbox ─▶ write
//!           a reviewer's ruling on a held message ─▶ Hooks::review ─▶ Outbox ─▶ write ─▶ answer
//!           EOF ─▶ Hooks::*_closed · shutdown ─▶ Hooks::shutdown · silence ─▶ idle timeout
//! close:    on error Hooks::farewell (what each side is told); both sockets shut;
//!           session-end judged once the session had started
//! ```
//!
//! One task per connection owns both sockets. It reads whichever side has
//! bytes, handles every complete frame, then writes. While a write waits
//! for a slow peer nothing more is read, so memory per session stays
//! bounded by the protocol's frame limit (backpressure, not buffering).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::Instrument;

use super::side::{FrameError, Framer, Peer, Side, linger};
use crate::adapters::Gate;
use crate::adapters::review::{ReviewCall, Ruling};
use crate::event::{Direction, EventKind, Session};

/// Silence on both sides after which a session gives its read buffers
/// back (see [`Side::quiet_down`]): long enough that a conversation keeps
/// them, short enough that most of a large idle population holds none.
const QUIET: Duration = Duration::from_secs(2);

/// Why a session ended early. `E` is the protocol's own reasons.
#[derive(Debug, thiserror::Error)]
pub enum SessionError<E: std::error::Error + 'static> {
    #[error("{side} connection failed during {phase}: {source}")]
    Io {
        side: Peer,
        phase: &'static str,
        source: std::io::Error,
    },
    #[error("TLS with {side} failed: {source}")]
    Tls { side: Peer, source: std::io::Error },
    #[error("{side} closed the connection during {phase}")]
    Closed { side: Peer, phase: &'static str },
    #[error("{phase} took too long")]
    Timeout { phase: &'static str },
    #[error("`{0}` is not a valid TLS server name")]
    ServerName(String),
    #[error("{0}")]
    Protocol(E),
}

impl<E: std::error::Error + 'static> SessionError<E> {
    /// Whether the upstream connection is gone, so nothing can be said to it.
    pub fn upstream_lost(&self) -> bool {
        matches!(
            self,
            SessionError::Io {
                side: Peer::Upstream,
                ..
            } | SessionError::Closed {
                side: Peer::Upstream,
                ..
            }
        )
    }
}

/// What the frames handled so far want written, and whether to stop.
#[derive(Default)]
pub struct Outbox {
    pub to_client: Vec<u8>,
    pub to_upstream: Vec<u8>,
    /// Set when the session should end once the queues are written: why.
    pub closing: Option<String>,
}

impl Outbox {
    /// Ends the session after this write, unless an earlier reason stands
    /// (a client's QUIT, say, before it hangs up).
    pub fn close(&mut self, reason: impl Into<String>) {
        if self.closing.is_none() {
            self.closing = Some(reason.into());
        }
    }
}

/// What each side is told when the session ends by an error.
#[derive(Default)]
pub struct Farewell {
    pub to_client: Vec<u8>,
    /// `None` when the upstream cannot or need not hear it.
    pub to_upstream: Option<Vec<u8>>,
    /// The client misbehaved: keep reading a moment after telling it, so
    /// the goodbye is not destroyed by a reset.
    pub linger: bool,
}

/// One connection's protocol state machine: frames in, bytes out.
pub trait Hooks: Send {
    type Framer: Framer;
    type Error: std::error::Error
        + From<FrameError<<Self::Framer as Framer>::Error>>
        + Send
        + 'static;

    /// A complete frame from the client.
    ///
    /// # Errors
    /// The frame ends the session (the client broke the protocol).
    fn client_frame(
        &mut self,
        frame: <Self::Framer as Framer>::Frame,
        out: &mut Outbox,
    ) -> Result<(), SessionError<Self::Error>>;

    /// A complete frame from the server.
    ///
    /// # Errors
    /// The frame ends the session.
    fn upstream_frame(
        &mut self,
        frame: <Self::Framer as Framer>::Frame,
        out: &mut Outbox,
    ) -> Result<(), SessionError<Self::Error>>;

    /// The client closed its connection; `side` still holds what it sent
    /// last and did not finish.
    ///
    /// # Errors
    /// Closing here is itself a failure (a frame cut in half).
    fn client_closed(
        &mut self,
        side: &Side<Self::Framer>,
        out: &mut Outbox,
    ) -> Result<(), SessionError<Self::Error>>;

    /// The server closed its connection.
    ///
    /// # Errors
    /// As [`Self::client_closed`].
    fn upstream_closed(
        &mut self,
        side: &Side<Self::Framer>,
        out: &mut Outbox,
    ) -> Result<(), SessionError<Self::Error>>;

    /// The gateway is shutting down: say goodbye to both sides.
    fn shutdown(&mut self, out: &mut Outbox);

    /// The session ends by `error`: what each side is told.
    fn farewell(&mut self, error: &SessionError<Self::Error>) -> Farewell;

    /// A reviewer's ruling on a message this session held: deliver it
    /// (`Release`) or tell its sender (`Reject`). Returns what was done.
    ///
    /// # Errors
    /// Why nothing was: the session does not hold that message.
    fn review(
        &mut self,
        event_id: &str,
        ruling: &Ruling,
        out: &mut Outbox,
    ) -> Result<String, String> {
        let _ = (event_id, ruling, out);
        Err("this network's sessions do not hold messages".into())
    }

    /// The session as events name it.
    fn session(&self) -> &Arc<Session>;

    /// Whether session-start was judged, so session-end must be.
    fn started(&self) -> bool;
}

/// A connected session: both sides and the protocol's state.
pub struct Connected<H: Hooks> {
    pub client: Side<H::Framer>,
    pub upstream: Side<H::Framer>,
    pub hooks: H,
}

/// The timeouts every stream session keeps.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// From accept until the relay starts.
    pub handshake: Duration,
    /// No bytes from the client for this long ends the session.
    pub idle: Duration,
    /// For the TCP connection to the server alone.
    pub connect: Duration,
}

/// What the driver needs of every protocol: where it judges, and its
/// timeouts.
pub struct Base {
    pub gate: Gate,
    pub timeouts: Timeouts,
}

/// A connection just accepted, for [`Protocol::connect`].
pub struct Accepted<'a> {
    pub tcp: TcpStream,
    pub peer: SocketAddr,
    /// The listener speaks TLS from the first byte.
    pub tls: bool,
    /// The session's id.
    pub id: &'a str,
    /// When the handshake must be done; the protocol tells the client why
    /// if it cannot be.
    pub deadline: Instant,
}

/// A stream protocol: how to connect a session, built once per adapter.
pub trait Protocol: Send + Sync + 'static {
    /// The network name: session ids, spans, events.
    const NETWORK: &'static str;
    type Hooks: Hooks + 'static;

    fn base(&self) -> &Base;

    /// TLS, the protocol's handshake and the upstream connection.
    fn connect(
        &self,
        accepted: Accepted<'_>,
    ) -> impl Future<Output = Result<Connected<Self::Hooks>, SessionError<HooksError<Self>>>> + Send;
}

/// The error type of a protocol's hooks.
pub type HooksError<P> = <<P as Protocol>::Hooks as Hooks>::Error;

/// Serves one accepted connection to its end. Errors end this session only.
pub async fn serve<P: Protocol>(
    protocol: Arc<P>,
    tcp: TcpStream,
    peer: SocketAddr,
    tls: bool,
    shutdown: watch::Receiver<bool>,
) {
    let id = crate::event::new_session_id(P::NETWORK);
    let span = tracing::info_span!("session", network = P::NETWORK, session = %id, %peer);
    async move {
        tracing::debug!(tls, "connection accepted");
        // Boxed at its own size: inline, the layers of futures around it
        // (span, listener, task) each kept room for its arguments too, and
        // an idle session's task took 8 KiB instead of 2.
        if let Err(e) = Box::pin(run(&*protocol, tcp, peer, tls, id, shutdown)).await {
            let stats = protocol.base().gate.stats();
            stats.connection_errors.fetch_add(1, Relaxed);
            tracing::info!(error = %e, "session ended by an error");
        }
    }
    .instrument(span)
    .await
}

async fn run<P: Protocol>(
    protocol: &P,
    tcp: TcpStream,
    peer: SocketAddr,
    tls: bool,
    id: String,
    shutdown: watch::Receiver<bool>,
) -> Result<(), SessionError<HooksError<P>>> {
    let Base { gate, timeouts } = protocol.base();
    let deadline = Instant::now() + timeouts.handshake;
    let accepted = Accepted {
        tcp,
        peer,
        tls,
        id: &id,
        deadline,
    };
    // A protocol keeps the deadline itself, so it can say why it failed;
    // this is the backstop.
    let backstop = deadline + Duration::from_secs(2);
    // Boxed: the handshake's state (TLS both ways, the stream features)
    // is the largest a session's future ever holds, and only for a moment;
    // inline, every idle session would carry its size for good.
    let connect = Box::pin(protocol.connect(accepted));
    let connected = match tokio::time::timeout_at(backstop, connect).await {
        Ok(c) => c?,
        Err(_) => {
            return Err(SessionError::Timeout {
                phase: "connecting",
            });
        }
    };
    let Connected {
        mut client,
        mut upstream,
        mut hooks,
    } = connected;
    let mut out = Outbox::default();
    let (_door, mut rulings) = gate.reviews().open(&id);
    let result = relay(
        &mut hooks,
        Sides {
            client: &mut client,
            upstream: &mut upstream,
        },
        &mut out,
        &mut rulings,
        gate,
        timeouts.idle,
        shutdown,
    )
    .await;
    let reason = match &result {
        Ok(()) => out.closing.clone().unwrap_or_else(|| "closed".into()),
        Err(e) => e.to_string(),
    };
    if let Err(e) = &result {
        let farewell = hooks.farewell(e);
        let mut to_client = std::mem::take(&mut out.to_client);
        to_client.extend_from_slice(&farewell.to_client);
        let within = Duration::from_secs(1);
        let _ =
            tokio::time::timeout(within, client.send::<HooksError<P>>(&to_client, "close")).await;
        if let Some(bytes) = farewell.to_upstream {
            let _ =
                tokio::time::timeout(within, upstream.send::<HooksError<P>>(&bytes, "close")).await;
        }
        if farewell.linger {
            linger(&mut client.io).await;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), client.io.shutdown()).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), upstream.io.shutdown()).await;
    if hooks.started() {
        gate.judge(
            hooks.session(),
            Direction::Outbound,
            EventKind::SessionEnd(reason.clone()),
            Vec::new(),
        );
    }
    tracing::info!(user = %hooks.session().user, %reason, "session closed");
    result
}

/// A ruling acted on, and where to say what came of it once written.
type Answer = (
    oneshot::Sender<Result<String, String>>,
    Result<String, String>,
);

/// Both sockets of a session.
struct Sides<'a, F: Framer> {
    client: &'a mut Side<F>,
    upstream: &'a mut Side<F>,
}

/// Relays until either side closes, the hooks close, the gateway shuts
/// down or the client goes quiet. Rulings on held messages are answered
/// once what they wrote has been written.
async fn relay<H: Hooks>(
    hooks: &mut H,
    sides: Sides<'_, H::Framer>,
    out: &mut Outbox,
    rulings: &mut mpsc::Receiver<ReviewCall>,
    gate: &Gate,
    idle: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), SessionError<H::Error>> {
    let Sides { client, upstream } = sides;
    let stats = gate.stats();
    let mut idle_deadline = Instant::now() + idle;
    // Both peers silent this long: the read buffers are given back.
    let mut quiet_at = Some(Instant::now() + QUIET);
    let mut answers: Vec<Answer> = Vec::new();
    // Bytes that came with the handshake are already buffered.
    while let Some(frame) = client.next_frame()? {
        hooks.client_frame(frame, out)?;
    }
    while let Some(frame) = upstream.next_frame()? {
        hooks.upstream_frame(frame, out)?;
    }
    loop {
        write_out(out, client, upstream, idle).await?;
        for (reply, answer) in answers.drain(..) {
            let _ = reply.send(answer);
        }
        if out.closing.is_some() {
            return Ok(());
        }
        tokio::select! {
            _ = shutdown.changed() => hooks.shutdown(out),
            Some(call) = rulings.recv() => {
                let answer = hooks.review(&call.event_id, &call.ruling, out);
                answers.push((call.reply, answer));
            }
            read = client.fill() => {
                // A client that hangs up without TLS close_notify has
                // still just hung up.
                let read = match read {
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
                    other => other,
                };
                let n = read.map_err(|source| SessionError::Io { side: Peer::Client, phase: "relay", source })?;
                if n == 0 {
                    hooks.client_closed(client, out)?;
                    continue;
                }
                stats.bytes_from_clients.fetch_add(n as u64, Relaxed);
                let now = Instant::now();
                idle_deadline = now + idle;
                quiet_at = Some(now + QUIET);
                while let Some(frame) = client.next_frame()? {
                    hooks.client_frame(frame, out)?;
                }
            }
            read = upstream.fill() => {
                let n = read.map_err(|source| SessionError::Io { side: Peer::Upstream, phase: "relay", source })?;
                if n == 0 {
                    hooks.upstream_closed(upstream, out)?;
                    continue;
                }
                stats.bytes_from_upstream.fetch_add(n as u64, Relaxed);
                quiet_at = Some(Instant::now() + QUIET);
                while let Some(frame) = upstream.next_frame()? {
                    hooks.upstream_frame(frame, out)?;
                }
            }
            // One timer for both: going quiet comes first.
            _ = tokio::time::sleep_until(quiet_at.map_or(idle_deadline, |q| q.min(idle_deadline))) => {
                if quiet_at.take().is_some_and(|q| q < idle_deadline) {
                    client.quiet_down();
                    upstream.quiet_down();
                    continue;
                }
                return Err(SessionError::Timeout { phase: "idle session" });
            }
        }
    }
}

/// Writes what the last frames produced. A peer that does not read
/// stalls only its own session, and only until the idle timeout.
async fn write_out<F: Framer, E: std::error::Error + 'static>(
    out: &mut Outbox,
    client: &mut Side<F>,
    upstream: &mut Side<F>,
    within: Duration,
) -> Result<(), SessionError<E>> {
    if !out.to_upstream.is_empty() {
        let bytes = std::mem::take(&mut out.to_upstream);
        tokio::time::timeout(within, upstream.send(&bytes, "relay"))
            .await
            .map_err(|_| SessionError::Timeout {
                phase: "writing upstream",
            })??;
    }
    if !out.to_client.is_empty() {
        let bytes = std::mem::take(&mut out.to_client);
        tokio::time::timeout(within, client.send(&bytes, "relay"))
            .await
            .map_err(|_| SessionError::Timeout {
                phase: "writing to the client",
            })??;
    }
    Ok(())
}
