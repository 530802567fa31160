//! One client connection: TLS with the client, a stream to the real server,
//! then the relay that puts every stanza through the chain.
//!
//! ```text
//! connect:  client ──(STARTTLS | direct TLS)──▶ imgate ──(STARTTLS | direct TLS | plain)──▶ server
//!           the client's post-TLS header is forwarded; from here both streams are relayed
//! relay:    client frame ─▶ outbound ─▶ chain ─▶ forward | rewrite | drop | bounce to client
//!           server frame ─▶ inbound  ─▶ chain ─▶ forward | rewrite | drop | bounce to server
//!           SASL passes through (minus -PLUS); stream restarts pass through;
//!           the bind result names the user (session-start); SM `h` is translated
//! close:    session-end, always, once the session had started
//! ```
//!
//! One task per connection owns both sockets. It reads whichever side has
//! bytes, handles every complete frame, then writes. While a write waits
//! for a slow peer nothing more is read, so memory per session stays
//! bounded by the stanza limit (backpressure instead of buffering).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tracing::Instrument;

use super::codec::{CodecError, Element, Frame, Framer, JABBER_CLIENT, Limits, STREAMS, escape};
use super::config::{UpstreamTls, XmppConfig};
use super::events::{self, Outcome, Rooms, bare};
use super::seen::{Claim, SeenMessages};
use super::sm;
use crate::adapters::Judge;
use crate::adapters::connection::{Io, Peer, linger};
use crate::event::{Action, Direction, EventKind, Session};

const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const NS_SASL2: &str = "urn:xmpp:sasl:2";
const NS_SASL_CB: &str = "urn:xmpp:sasl-cb:0";
const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
const NS_SM: &str = "urn:xmpp:sm:3";
const NS_STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";

/// Built once per adapter; every session shares it.
pub struct XmppShared {
    pub config: XmppConfig,
    pub acceptor: TlsAcceptor,
    pub connector: TlsConnector,
    pub judge: Judge,
    pub seen: SeenMessages,
}

impl XmppShared {
    fn limits(&self) -> Limits {
        Limits {
            max_stanza_bytes: self.config.max_stanza_bytes,
            max_depth: self.config.max_depth,
        }
    }
}

/// Why a session ended early; names the side and the phase.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{side} sent bad XML: {source}")]
    Codec { side: Peer, source: CodecError },
    #[error("{side} connection failed during {phase}: {source}")]
    Io {
        side: Peer,
        phase: &'static str,
        source: std::io::Error,
    },
    #[error("TLS with {side} failed: {source}")]
    Tls { side: Peer, source: std::io::Error },
    #[error("{side} closed the connection in the middle of a stanza")]
    Truncated { side: Peer },
    #[error("{side} closed the connection during {phase}")]
    Closed { side: Peer, phase: &'static str },
    #[error("{side} broke the protocol: {reason}")]
    Protocol { side: Peer, reason: String },
    #[error("{phase} took too long")]
    Timeout { phase: &'static str },
}

impl SessionError {
    /// The stream error condition the client is told.
    fn condition(&self) -> &'static str {
        match self {
            SessionError::Codec {
                side: Peer::Client,
                source,
            } => source.condition(),
            SessionError::Protocol {
                side: Peer::Client, ..
            } => "policy-violation",
            SessionError::Timeout { .. } => "connection-timeout",
            _ => "remote-connection-failed",
        }
    }
}

/// One peer: its socket, read buffer and framer.
struct Side<S> {
    io: S,
    buf: BytesMut,
    framer: Framer,
    peer: Peer,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Side<S> {
    fn new(io: S, peer: Peer, limits: Limits) -> Self {
        Side {
            io,
            buf: BytesMut::with_capacity(8192),
            framer: Framer::new(limits),
            peer,
        }
    }

    /// Reads once; `Ok(0)` is the peer closing. Cancel-safe.
    async fn fill(&mut self) -> std::io::Result<usize> {
        self.buf.reserve(8192);
        self.io.read_buf(&mut self.buf).await
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, SessionError> {
        match self.framer.next(&self.buf) {
            Ok(Some((frame, n))) => {
                self.buf.advance(n);
                Ok(Some(frame))
            }
            Ok(None) => Ok(None),
            Err(source) => Err(SessionError::Codec {
                side: self.peer,
                source,
            }),
        }
    }

    /// The next frame that is not whitespace, reading as needed.
    async fn read_frame(&mut self, phase: &'static str) -> Result<Frame, SessionError> {
        loop {
            match self.next_frame()? {
                Some(Frame::Whitespace(_)) => continue,
                Some(frame) => return Ok(frame),
                None => {}
            }
            let n = self.fill().await.map_err(|source| SessionError::Io {
                side: self.peer,
                phase,
                source,
            })?;
            if n == 0 {
                return Err(SessionError::Closed {
                    side: self.peer,
                    phase,
                });
            }
        }
    }

    async fn read_header(&mut self, phase: &'static str) -> Result<Vec<u8>, SessionError> {
        match self.read_frame(phase).await? {
            Frame::StreamOpen(tag) => Ok(tag),
            _ => Err(SessionError::Protocol {
                side: self.peer,
                reason: format!("expected a stream header during {phase}"),
            }),
        }
    }

    async fn read_element(&mut self, phase: &'static str) -> Result<Element, SessionError> {
        match self.read_frame(phase).await? {
            Frame::Element(raw) => Element::parse(&raw).map_err(|source| SessionError::Codec {
                side: self.peer,
                source,
            }),
            _ => Err(SessionError::Protocol {
                side: self.peer,
                reason: format!("expected an element during {phase}"),
            }),
        }
    }

    async fn send(&mut self, bytes: &[u8], phase: &'static str) -> Result<(), SessionError> {
        let io = |source| SessionError::Io {
            side: self.peer,
            phase,
            source,
        };
        self.io.write_all(bytes).await.map_err(io)?;
        self.io.flush().await.map_err(io)
    }
}

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

fn header_from(domain: &str, id: &str) -> String {
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
         xmlns:stream='http://etherx.jabber.org/streams' id='{id}' from='{}' \
         version='1.0' xml:lang='en'>",
        escape(domain, true)
    )
}

fn header_to(domain: &str) -> String {
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
         xmlns:stream='http://etherx.jabber.org/streams' to='{}' version='1.0'>",
        escape(domain, true)
    )
}

fn stream_error(condition: &str, text: &str) -> String {
    format!(
        "<stream:error><{condition} xmlns='{NS_STREAM_ERRORS}'/><text xmlns='{NS_STREAM_ERRORS}' \
         xml:lang='en'>{}</text></stream:error></stream:stream>",
        escape(text, false)
    )
}

/// Serves one accepted connection to its end. Errors end this session only.
pub async fn serve(
    shared: Arc<XmppShared>,
    tcp: TcpStream,
    peer: SocketAddr,
    direct_tls: bool,
    shutdown: watch::Receiver<bool>,
) {
    let id = format!("xmpp-{}", NEXT_SESSION.fetch_add(1, Relaxed));
    let span = tracing::info_span!("xmpp", session = %id, %peer);
    async move {
        tracing::debug!(direct_tls, "connection accepted");
        if let Err(e) = run(&shared, tcp, peer, direct_tls, id, shutdown).await {
            shared.judge.stats().connection_errors.fetch_add(1, Relaxed);
            tracing::info!(error = %e, "session ended by an error");
        }
    }
    .instrument(span)
    .await
}

async fn run(
    shared: &XmppShared,
    tcp: TcpStream,
    peer: SocketAddr,
    direct_tls: bool,
    id: String,
    shutdown: watch::Receiver<bool>,
) -> Result<(), SessionError> {
    let deadline = Instant::now() + Duration::from_millis(shared.config.handshake_timeout_ms);
    let timeout = |phase| SessionError::Timeout { phase };

    // Connect: the client's TLS, its header, then the upstream stream.
    let (mut client, header, domain) = match tokio::time::timeout_at(
        deadline,
        accept_client(shared, tcp, direct_tls, &id),
    )
    .await
    {
        Ok(r) => r?,
        Err(_) => return Err(timeout("client handshake")),
    };
    let upstream = match tokio::time::timeout_at(deadline, connect_upstream(shared, &domain)).await
    {
        Ok(Ok(u)) => u,
        Ok(Err(e)) => {
            fail_client(&mut client, true, &domain, &id, &e).await;
            return Err(e);
        }
        Err(_) => {
            let e = timeout("connecting upstream");
            fail_client(&mut client, true, &domain, &id, &e).await;
            return Err(e);
        }
    };
    let mut upstream = upstream;
    upstream.send(&header, "stream start").await?;
    tracing::debug!(%domain, "upstream stream open");

    let mut relay = Relay {
        shared,
        session: Session {
            id,
            user: String::new(),
            peer: peer.to_string(),
        },
        full_jid: String::new(),
        domain,
        pending_bind: None,
        rooms: Rooms::default(),
        outbound: sm::Counter::default(),
        inbound: sm::Counter::default(),
        started: false,
        client_needs_header: true,
        to_client: Vec::new(),
        to_upstream: Vec::new(),
        closing: None,
    };
    let result = relay.run(&mut client, &mut upstream, shutdown).await;
    let reason = match &result {
        Ok(()) => relay.closing.clone().unwrap_or_else(|| "closed".into()),
        Err(e) => e.to_string(),
    };
    if let Err(e) = &result {
        // Tell the client why, if it can still hear.
        let mut out = std::mem::take(&mut relay.to_client);
        if relay.client_needs_header {
            out.extend_from_slice(header_from(&relay.domain, &relay.session.id).as_bytes());
        }
        out.extend_from_slice(stream_error(e.condition(), &e.to_string()).as_bytes());
        let _ = tokio::time::timeout(Duration::from_secs(1), client.send(&out, "close")).await;
        if matches!(
            e,
            SessionError::Codec {
                side: Peer::Client,
                ..
            }
        ) {
            linger(&mut client.io).await;
        }
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            upstream.send(b"</stream:stream>", "close"),
        )
        .await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), client.io.shutdown()).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), upstream.io.shutdown()).await;
    if relay.started {
        shared.judge.judge(
            &relay.session,
            Direction::Outbound,
            EventKind::SessionEnd(reason.clone()),
            Vec::new(),
        );
    }
    tracing::info!(user = %relay.session.user, %reason, "session closed");
    result
}

async fn fail_client(
    client: &mut Side<Box<dyn Io>>,
    needs_header: bool,
    domain: &str,
    id: &str,
    e: &SessionError,
) {
    let mut out = String::new();
    if needs_header {
        out.push_str(&header_from(domain, id));
    }
    out.push_str(&stream_error(e.condition(), &e.to_string()));
    let _ =
        tokio::time::timeout(Duration::from_secs(1), client.send(out.as_bytes(), "close")).await;
    let _ = client.io.shutdown().await;
}

/// TLS with the client (STARTTLS or direct) and its first encrypted header.
/// Returns the header as received, to forward, and the domain it names.
async fn accept_client(
    shared: &XmppShared,
    tcp: TcpStream,
    direct_tls: bool,
    id: &str,
) -> Result<(Side<Box<dyn Io>>, Vec<u8>, String), SessionError> {
    let limits = shared.limits();
    let tls_err = |source| SessionError::Tls {
        side: Peer::Client,
        source,
    };
    let tls = if direct_tls {
        shared.acceptor.accept(tcp).await.map_err(tls_err)?
    } else {
        let mut plain = Side::new(tcp, Peer::Client, limits);
        let header = match plain.read_header("stream start").await {
            Ok(h) => h,
            Err(e) => {
                // Answer with a header of our own so the error is readable.
                let out = format!(
                    "{}{}",
                    header_from("", id),
                    stream_error(e.condition(), &e.to_string())
                );
                let _ = plain.send(out.as_bytes(), "close").await;
                return Err(e);
            }
        };
        let domain = domain_of(&header).unwrap_or_default();
        let features = format!(
            "{}<stream:features><starttls xmlns='{NS_TLS}'><required/></starttls></stream:features>",
            header_from(&domain, id)
        );
        plain.send(features.as_bytes(), "STARTTLS").await?;
        match plain.read_element("STARTTLS").await {
            Ok(el) if el.is("starttls", NS_TLS) => {}
            Ok(_) | Err(SessionError::Codec { .. }) | Err(SessionError::Protocol { .. }) => {
                let e = SessionError::Protocol {
                    side: Peer::Client,
                    reason: "TLS is required: send <starttls/> first".into(),
                };
                let _ = plain
                    .send(
                        stream_error(e.condition(), &e.to_string()).as_bytes(),
                        "close",
                    )
                    .await;
                return Err(e);
            }
            Err(e) => return Err(e),
        }
        plain
            .send(
                format!("<proceed xmlns='{NS_TLS}'/>").as_bytes(),
                "STARTTLS",
            )
            .await?;
        shared.acceptor.accept(plain.io).await.map_err(tls_err)?
    };
    let mut client: Side<Box<dyn Io>> = Side::new(Box::new(tls), Peer::Client, limits);
    let header = client.read_header("stream start after TLS").await?;
    let Some(domain) = domain_of(&header) else {
        let e = SessionError::Protocol {
            side: Peer::Client,
            reason: "the stream header names no domain (`to`)".into(),
        };
        fail_client(&mut client, true, "", id, &e).await;
        return Err(e);
    };
    Ok((client, header, domain))
}

fn domain_of(header: &[u8]) -> Option<String> {
    super::codec::stream_attrs(header)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == "to")
        .map(|(_, v)| v)
        .filter(|d| !d.is_empty())
}

/// A stream to the real server, secured as configured, ready for the
/// client's header.
async fn connect_upstream(
    shared: &XmppShared,
    domain: &str,
) -> Result<Side<Box<dyn Io>>, SessionError> {
    let up = &shared.config.upstream;
    let limits = shared.limits();
    let tcp = TcpStream::connect(&up.address)
        .await
        .map_err(|source| SessionError::Io {
            side: Peer::Upstream,
            phase: "connect",
            source,
        })?;
    let _ = tcp.set_nodelay(true);
    let name = up.server_name.clone().unwrap_or_else(|| domain.to_owned());
    let server_name = rustls::pki_types::ServerName::try_from(name.clone()).map_err(|_| {
        SessionError::Protocol {
            side: Peer::Upstream,
            reason: format!("`{name}` is not a valid TLS server name"),
        }
    })?;
    let tls_err = |source| SessionError::Tls {
        side: Peer::Upstream,
        source,
    };
    let io: Box<dyn Io> = match up.tls {
        UpstreamTls::Plain => Box::new(tcp),
        UpstreamTls::Direct => Box::new(
            shared
                .connector
                .connect(server_name, tcp)
                .await
                .map_err(tls_err)?,
        ),
        UpstreamTls::Starttls => {
            let mut plain = Side::new(tcp, Peer::Upstream, limits);
            plain.send(header_to(domain).as_bytes(), "STARTTLS").await?;
            plain.read_header("STARTTLS").await?;
            let features = plain.read_element("STARTTLS").await?;
            if features.child("starttls", NS_TLS).is_none() {
                return Err(SessionError::Protocol {
                    side: Peer::Upstream,
                    reason: "the server does not offer STARTTLS; set upstream.tls".into(),
                });
            }
            plain
                .send(
                    format!("<starttls xmlns='{NS_TLS}'/>").as_bytes(),
                    "STARTTLS",
                )
                .await?;
            let answer = plain.read_element("STARTTLS").await?;
            if !answer.is("proceed", NS_TLS) {
                return Err(SessionError::Protocol {
                    side: Peer::Upstream,
                    reason: "the server refused STARTTLS".into(),
                });
            }
            Box::new(
                shared
                    .connector
                    .connect(server_name, plain.io)
                    .await
                    .map_err(tls_err)?,
            )
        }
    };
    Ok(Side::new(io, Peer::Upstream, limits))
}

/// The relay's state for one session.
struct Relay<'a> {
    shared: &'a XmppShared,
    session: Session,
    full_jid: String,
    domain: String,
    /// The id of the client's bind request, until its result passes.
    pending_bind: Option<String>,
    rooms: Rooms,
    /// Stream management: client to server, and server to client.
    outbound: sm::Counter,
    inbound: sm::Counter,
    /// session-start has been judged (so session-end will be).
    started: bool,
    /// The client restarted its stream and has no server header yet.
    client_needs_header: bool,
    to_client: Vec<u8>,
    to_upstream: Vec<u8>,
    /// Set when either side closed its stream; why.
    closing: Option<String>,
}

fn is_stanza(el: &Element) -> bool {
    el.ns == JABBER_CLIENT && matches!(el.local_name(), "message" | "presence" | "iq")
}

impl Relay<'_> {
    async fn run(
        &mut self,
        client: &mut Side<Box<dyn Io>>,
        upstream: &mut Side<Box<dyn Io>>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), SessionError> {
        let idle = Duration::from_secs(self.shared.config.idle_timeout_s);
        let stats = self.shared.judge.stats();
        let mut idle_deadline = Instant::now() + idle;
        // Bytes that came with the headers are already buffered.
        while let Some(frame) = client.next_frame()? {
            self.on_client_frame(frame)?;
        }
        while let Some(frame) = upstream.next_frame()? {
            self.on_upstream_frame(frame)?;
        }
        loop {
            self.write_out(client, upstream, idle).await?;
            if self.closing.is_some() {
                return Ok(());
            }
            tokio::select! {
                _ = shutdown.changed() => {
                    self.to_client.extend_from_slice(
                        stream_error("system-shutdown", "the gateway is shutting down").as_bytes(),
                    );
                    self.to_upstream.extend_from_slice(b"</stream:stream>");
                    self.closing = Some("gateway shutdown".into());
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
                        if client.buf.iter().any(|b| !b.is_ascii_whitespace()) {
                            return Err(SessionError::Truncated { side: Peer::Client });
                        }
                        self.to_upstream.extend_from_slice(b"</stream:stream>");
                        self.closing = Some("client disconnected".into());
                    } else {
                        stats.bytes_from_clients.fetch_add(n as u64, Relaxed);
                        idle_deadline = Instant::now() + idle;
                        while let Some(frame) = client.next_frame()? {
                            self.on_client_frame(frame)?;
                        }
                    }
                }
                read = upstream.fill() => {
                    let n = read.map_err(|source| SessionError::Io { side: Peer::Upstream, phase: "relay", source })?;
                    if n == 0 {
                        if upstream.buf.iter().any(|b| !b.is_ascii_whitespace()) {
                            return Err(SessionError::Truncated { side: Peer::Upstream });
                        }
                        return Err(SessionError::Closed { side: Peer::Upstream, phase: "relay" });
                    }
                    stats.bytes_from_upstream.fetch_add(n as u64, Relaxed);
                    while let Some(frame) = upstream.next_frame()? {
                        self.on_upstream_frame(frame)?;
                    }
                }
                _ = tokio::time::sleep_until(idle_deadline) => {
                    return Err(SessionError::Timeout { phase: "idle session" });
                }
            }
        }
    }

    /// Writes what the last frames produced. A peer that does not read
    /// stalls only its own session, and only until the idle timeout.
    async fn write_out(
        &mut self,
        client: &mut Side<Box<dyn Io>>,
        upstream: &mut Side<Box<dyn Io>>,
        within: Duration,
    ) -> Result<(), SessionError> {
        if !self.to_upstream.is_empty() {
            let out = std::mem::take(&mut self.to_upstream);
            tokio::time::timeout(within, upstream.send(&out, "relay"))
                .await
                .map_err(|_| SessionError::Timeout {
                    phase: "writing upstream",
                })??;
        }
        if !self.to_client.is_empty() {
            let out = std::mem::take(&mut self.to_client);
            tokio::time::timeout(within, client.send(&out, "relay"))
                .await
                .map_err(|_| SessionError::Timeout {
                    phase: "writing to the client",
                })??;
        }
        Ok(())
    }

    fn on_client_frame(&mut self, frame: Frame) -> Result<(), SessionError> {
        match frame {
            Frame::Whitespace(w) => self.to_upstream.extend_from_slice(&w),
            Frame::StreamOpen(tag) => {
                // A restart after SASL: the server answers with a new header.
                self.to_upstream.extend_from_slice(&tag);
                self.client_needs_header = true;
            }
            Frame::StreamClose => {
                self.to_upstream.extend_from_slice(b"</stream:stream>");
                self.closing = Some("client closed the stream".into());
            }
            Frame::Element(raw) => {
                let el = Element::parse(&raw).map_err(|source| SessionError::Codec {
                    side: Peer::Client,
                    source,
                })?;
                self.outbound_element(raw, el)?;
            }
        }
        Ok(())
    }

    fn outbound_element(&mut self, raw: Vec<u8>, mut el: Element) -> Result<(), SessionError> {
        if el.ns == NS_SM {
            match el.local_name() {
                "enable" => {
                    // The gateway cannot carry a session over to a new
                    // connection, so resumption is not offered; the server
                    // then settles unacknowledged stanzas itself.
                    el.remove_attr("resume");
                    el.remove_attr("max");
                    self.outbound.reset();
                    self.to_upstream.extend_from_slice(el.to_xml().as_bytes());
                }
                "a" => {
                    let h = self.inbound.translate(parse_h(&el, Peer::Client)?);
                    self.to_upstream
                        .extend_from_slice(format!("<a xmlns='{NS_SM}' h='{h}'/>").as_bytes());
                }
                _ => self.to_upstream.extend_from_slice(&raw),
            }
            return Ok(());
        }
        if !is_stanza(&el) {
            self.to_upstream.extend_from_slice(&raw);
            return Ok(());
        }
        if el.local_name() == "iq"
            && el.attr("type") == Some("set")
            && el.child("bind", NS_BIND).is_some()
        {
            self.pending_bind = el.attr("id").map(str::to_owned);
        }
        let reading = if self.started {
            events::read(&el, Direction::Outbound, &self.session.user, &self.rooms)
        } else {
            None
        };
        let Some(reading) = reading else {
            self.to_upstream.extend_from_slice(&raw);
            self.outbound.forwarded();
            return Ok(());
        };
        match self.decide(&el, reading) {
            Outcome::Forward => {
                self.to_upstream.extend_from_slice(&raw);
                self.outbound.forwarded();
            }
            Outcome::Rewritten(xml) => {
                self.to_upstream.extend_from_slice(xml.as_bytes());
                self.outbound.forwarded();
            }
            Outcome::Drop => self.outbound.dropped(),
            Outcome::Bounce(xml) => {
                self.outbound.dropped();
                self.to_client.extend_from_slice(xml.as_bytes());
                self.inbound.injected();
            }
        }
        Ok(())
    }

    fn on_upstream_frame(&mut self, frame: Frame) -> Result<(), SessionError> {
        match frame {
            Frame::Whitespace(w) => self.to_client.extend_from_slice(&w),
            Frame::StreamOpen(tag) => {
                self.to_client.extend_from_slice(&tag);
                self.client_needs_header = false;
            }
            Frame::StreamClose => {
                self.to_client.extend_from_slice(b"</stream:stream>");
                self.closing = Some("server closed the stream".into());
            }
            Frame::Element(raw) => {
                let el = Element::parse(&raw).map_err(|source| SessionError::Codec {
                    side: Peer::Upstream,
                    source,
                })?;
                self.inbound_element(raw, el)?;
            }
        }
        Ok(())
    }

    fn inbound_element(&mut self, raw: Vec<u8>, mut el: Element) -> Result<(), SessionError> {
        if el.is("features", STREAMS) {
            if strip_channel_binding(&mut el) {
                self.to_client.extend_from_slice(el.to_xml().as_bytes());
            } else {
                self.to_client.extend_from_slice(&raw);
            }
            return Ok(());
        }
        if el.ns == NS_SM {
            match el.local_name() {
                "enabled" => {
                    self.inbound.reset();
                    self.to_client.extend_from_slice(&raw);
                }
                "a" => {
                    let h = self.outbound.translate(parse_h(&el, Peer::Upstream)?);
                    self.to_client
                        .extend_from_slice(format!("<a xmlns='{NS_SM}' h='{h}'/>").as_bytes());
                }
                _ => self.to_client.extend_from_slice(&raw),
            }
            return Ok(());
        }
        if !is_stanza(&el) {
            self.to_client.extend_from_slice(&raw);
            return Ok(());
        }
        if self.pending_bind.is_some()
            && el.local_name() == "iq"
            && el.attr("type") == Some("result")
            && el.attr("id") == self.pending_bind.as_deref()
        {
            self.pending_bind = None;
            let jid = el
                .child("bind", NS_BIND)
                .and_then(|b| b.child("jid", NS_BIND))
                .map(Element::text);
            if let Some(jid) = jid {
                return self.bound(jid, raw);
            }
        }
        let reading = if self.started {
            events::read(&el, Direction::Inbound, &self.session.user, &self.rooms)
        } else {
            None
        };
        let Some(reading) = reading else {
            self.to_client.extend_from_slice(&raw);
            self.inbound.forwarded();
            return Ok(());
        };
        match self.decide(&el, reading) {
            Outcome::Forward => {
                self.to_client.extend_from_slice(&raw);
                self.inbound.forwarded();
            }
            Outcome::Rewritten(xml) => {
                self.to_client.extend_from_slice(xml.as_bytes());
                self.inbound.forwarded();
            }
            Outcome::Drop => self.inbound.dropped(),
            Outcome::Bounce(xml) => {
                self.inbound.dropped();
                self.to_upstream.extend_from_slice(xml.as_bytes());
                self.outbound.injected();
            }
        }
        Ok(())
    }

    /// The bind result named the user: the session starts, if the chain
    /// allows it.
    fn bound(&mut self, jid: String, raw: Vec<u8>) -> Result<(), SessionError> {
        self.session.user = bare(&jid).to_owned();
        self.full_jid = jid;
        let resource = self.full_jid.split_once('/').map(|(_, r)| r.to_owned());
        let attributes = resource
            .map(|r| vec![("xmpp.resource".to_owned(), r)])
            .unwrap_or_default();
        let action = self.shared.judge.judge(
            &self.session,
            Direction::Outbound,
            EventKind::SessionStart,
            attributes,
        );
        self.started = true;
        tracing::info!(user = %self.session.user, "session started");
        match action {
            Action::Block(reason) => {
                self.to_client.extend_from_slice(
                    stream_error("policy-violation", &format!("session refused: {reason}"))
                        .as_bytes(),
                );
                self.to_upstream.extend_from_slice(b"</stream:stream>");
                self.closing = Some(format!("session refused: {reason}"));
            }
            Action::Drop => {
                self.to_client.extend_from_slice(
                    stream_error("policy-violation", "session refused").as_bytes(),
                );
                self.to_upstream.extend_from_slice(b"</stream:stream>");
                self.closing = Some("session refused".into());
            }
            _ => {
                self.to_client.extend_from_slice(&raw);
                self.inbound.forwarded();
            }
        }
        Ok(())
    }

    /// Judges a reading (or reuses the verdict given to the same message
    /// already) and says what to write.
    fn decide(&mut self, el: &Element, reading: events::Reading) -> Outcome {
        let seen = &self.shared.seen;
        let claim = match reading.dedupe_key.as_deref() {
            Some(key) => seen.claim(key),
            None => Claim::Mine,
        };
        let action = match claim {
            Claim::Decided(action) => action,
            Claim::Mine => {
                let room_change = matches!(
                    reading.kind,
                    EventKind::RoomJoin(_) | EventKind::RoomLeave(_)
                );
                let note = room_change.then(|| (reading.kind.clone(), reading.direction));
                let action = self.shared.judge.judge(
                    &self.session,
                    reading.direction,
                    reading.kind,
                    reading.attributes,
                );
                if let Some((kind, direction)) = note
                    && matches!(action, Action::Allow | Action::Rewrite(_))
                {
                    self.rooms.note(&kind, direction);
                }
                if let Some(key) = &reading.dedupe_key {
                    seen.remember(key, action.clone());
                    // The server's carbon of a rewritten message carries the
                    // new body: it is the same message.
                    if let (Action::Rewrite(body), Some((stem, _))) =
                        (&action, key.rsplit_once('|'))
                    {
                        seen.remember(&events::message_key(stem, body), action.clone());
                    }
                }
                action
            }
        };
        events::apply(
            el,
            reading.direction,
            reading.carbon,
            &action,
            &self.full_jid,
        )
    }
}

fn parse_h(el: &Element, side: Peer) -> Result<u32, SessionError> {
    el.attr("h")
        .and_then(|h| h.parse().ok())
        .ok_or_else(|| SessionError::Protocol {
            side,
            reason: "stream management <a/> without a valid h".into(),
        })
}

/// Removes SASL mechanisms that bind to the TLS channel (`-PLUS`) and the
/// channel-binding types list: the gateway terminates TLS, so the client's
/// channel is not the server's and binding would (rightly) fail. Returns
/// whether anything was removed.
fn strip_channel_binding(features: &mut Element) -> bool {
    let mut changed = false;
    for node in &mut features.children {
        let super::codec::Node::Element(el) = node else {
            continue;
        };
        if el.is("mechanisms", NS_SASL) || el.is("authentication", NS_SASL2) {
            let before = el.children.len();
            el.children.retain(|n| match n {
                super::codec::Node::Element(m) => {
                    !(m.local_name() == "mechanism" && m.text().trim().ends_with("-PLUS"))
                }
                super::codec::Node::Text(_) => true,
            });
            changed |= el.children.len() != before;
        }
    }
    let before = features.children.len();
    features.children.retain(|n| {
        !matches!(n, super::codec::Node::Element(e) if e.is("sasl-channel-binding", NS_SASL_CB))
    });
    changed | (features.children.len() != before)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_binding_mechanisms_are_stripped() {
        let mut f = Element::parse(
            b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
              <mechanism>SCRAM-SHA-1-PLUS</mechanism><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism>\
              </mechanisms><sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'><channel-binding type='tls-exporter'/></sasl-channel-binding></stream:features>",
        )
        .unwrap();
        assert!(strip_channel_binding(&mut f));
        let xml = f.to_xml();
        assert!(
            !xml.contains("PLUS") && !xml.contains("channel-binding"),
            "{xml}"
        );
        assert!(xml.contains("<mechanism>SCRAM-SHA-1</mechanism>"));
        assert!(!strip_channel_binding(&mut f));
    }

    #[test]
    fn stream_errors_are_well_formed() {
        let e = stream_error("policy-violation", "no <script> & such");
        let body = e.trim_end_matches("</stream:stream>");
        let el = Element::parse(body.as_bytes()).unwrap();
        assert!(el.is("error", STREAMS));
        assert!(el.child("policy-violation", NS_STREAM_ERRORS).is_some());
        assert_eq!(
            el.child("text", NS_STREAM_ERRORS).unwrap().text(),
            "no <script> & such"
        );
    }
}
