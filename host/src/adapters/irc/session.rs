//! One IRC client connection: optional TLS with the client, a connection
//! to the real server (plain or TLS), then the relay that puts every line
//! that means something through the chain.
//!
//! ```text
//! connect:  client ──(plain | TLS)──▶ imgate ──(plain | TLS)──▶ server
//! relay:    registration (CAP, SASL AUTHENTICATE, NICK, USER) passes through;
//!           001 names the nick (900 the account): session-start;
//!           PRIVMSG/NOTICE/JOIN/PART/KICK ─▶ chain ─▶ forward | rewrite (re-split) | drop | NOTICE
//!           everything else passes through untouched
//! close:    session-end, always, once the session had started
//! ```
//!
//! Like the XMPP session: one task owns both sockets, reads a side, handles
//! every complete line, writes, and reads again — a reader that does not
//! read stalls only its own session.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tracing::Instrument;

use super::codec::{self, Frame, Framer, LineError, Message as Line, Next};
use super::config::{IrcConfig, UpstreamTls};
use super::events::{self, Me, Outcome};
use crate::adapters::Judge;
use crate::adapters::connection::{Io, Peer, linger};
use crate::event::{Action, Direction, EventKind, Session};

/// Built once per adapter; every session shares it.
pub struct IrcShared {
    pub config: IrcConfig,
    pub acceptor: Option<TlsAcceptor>,
    pub connector: TlsConnector,
    pub judge: Judge,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{side} connection failed during {phase}: {source}")]
    Io {
        side: Peer,
        phase: &'static str,
        source: std::io::Error,
    },
    #[error("TLS with {side} failed: {source}")]
    Tls { side: Peer, source: std::io::Error },
    #[error("{side} closed the connection")]
    Closed { side: Peer },
    #[error("client sent a {0}")]
    Refused(LineError),
    #[error("excess flood: more than {0} lines a second")]
    Flood(u32),
    #[error("{phase} took too long")]
    Timeout { phase: &'static str },
    #[error("{0}")]
    Config(String),
}

struct Side {
    io: Box<dyn Io>,
    buf: BytesMut,
    framer: Framer,
    peer: Peer,
}

impl Side {
    fn new(io: Box<dyn Io>, peer: Peer) -> Self {
        Side {
            io,
            buf: BytesMut::with_capacity(4096),
            framer: Framer::default(),
            peer,
        }
    }

    async fn fill(&mut self) -> std::io::Result<usize> {
        self.buf.reserve(8192);
        self.io.read_buf(&mut self.buf).await
    }

    fn next_frame(&mut self) -> Option<Frame> {
        loop {
            match self.framer.next(&self.buf) {
                Next::Frame(frame, n) => {
                    self.buf.advance(n);
                    return Some(frame);
                }
                Next::Discard(n) => self.buf.advance(n),
                Next::More => return None,
            }
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), SessionError> {
        let io = |source| SessionError::Io {
            side: self.peer,
            phase: "relay",
            source,
        };
        self.io.write_all(bytes).await.map_err(io)?;
        self.io.flush().await.map_err(io)
    }
}

/// A token bucket: `rate` lines a second after a burst of `burst`.
struct Flood {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Flood {
    fn new(rate: u32, burst: u32) -> Self {
        Flood {
            rate: f64::from(rate),
            burst: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            at: Instant::now(),
        }
    }

    /// Takes one line; false when the client is flooding.
    fn take(&mut self) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.burst);
        self.at = now;
        self.tokens -= 1.0;
        self.tokens >= 0.0
    }
}

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// Serves one accepted connection to its end. Errors end this session only.
pub async fn serve(
    shared: Arc<IrcShared>,
    tcp: TcpStream,
    peer: SocketAddr,
    tls: bool,
    shutdown: watch::Receiver<bool>,
) {
    let id = format!("irc-{}", NEXT_SESSION.fetch_add(1, Relaxed));
    let span = tracing::info_span!("irc", session = %id, %peer);
    async move {
        if let Err(e) = run(&shared, tcp, peer, tls, id, shutdown).await {
            shared.judge.stats().connection_errors.fetch_add(1, Relaxed);
            tracing::info!(error = %e, "session ended by an error");
        }
    }
    .instrument(span)
    .await
}

async fn connect(
    shared: &IrcShared,
    tcp: TcpStream,
    tls: bool,
) -> Result<(Side, Side), SessionError> {
    let client: Box<dyn Io> = match (&shared.acceptor, tls) {
        (Some(acceptor), true) => {
            Box::new(
                acceptor
                    .accept(tcp)
                    .await
                    .map_err(|source| SessionError::Tls {
                        side: Peer::Client,
                        source,
                    })?,
            )
        }
        (None, true) => return Err(SessionError::Config("no TLS certificate".into())),
        (_, false) => Box::new(tcp),
    };
    let up = &shared.config.upstream;
    let tcp = TcpStream::connect(&up.address)
        .await
        .map_err(|source| SessionError::Io {
            side: Peer::Upstream,
            phase: "connect",
            source,
        })?;
    let _ = tcp.set_nodelay(true);
    let upstream: Box<dyn Io> = match up.tls {
        UpstreamTls::Plain => Box::new(tcp),
        UpstreamTls::Tls => {
            let name = up
                .server_name
                .clone()
                .unwrap_or_else(|| shared.config.upstream_host().to_owned());
            let server_name = rustls::pki_types::ServerName::try_from(name.clone())
                .map_err(|_| SessionError::Config(format!("`{name}` is not a TLS server name")))?;
            Box::new(
                shared
                    .connector
                    .connect(server_name, tcp)
                    .await
                    .map_err(|source| SessionError::Tls {
                        side: Peer::Upstream,
                        source,
                    })?,
            )
        }
    };
    Ok((
        Side::new(client, Peer::Client),
        Side::new(upstream, Peer::Upstream),
    ))
}

async fn run(
    shared: &IrcShared,
    tcp: TcpStream,
    peer: SocketAddr,
    tls: bool,
    id: String,
    shutdown: watch::Receiver<bool>,
) -> Result<(), SessionError> {
    let deadline = Duration::from_millis(shared.config.handshake_timeout_ms);
    let (mut client, mut upstream) =
        match tokio::time::timeout(deadline, connect(shared, tcp, tls)).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(SessionError::Timeout {
                    phase: "connecting",
                });
            }
        };
    let mut relay = Relay {
        shared,
        session: Session {
            id,
            user: String::new(),
            peer: peer.to_string(),
        },
        me: Me::default(),
        started: false,
        flood: Flood::new(shared.config.flood_lines_per_s, shared.config.flood_burst),
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
        let mut out = std::mem::take(&mut relay.to_client);
        out.extend_from_slice(format!("ERROR :Closing link: {e}\r\n").as_bytes());
        let _ = tokio::time::timeout(Duration::from_secs(1), client.send(&out)).await;
        if !matches!(
            e,
            SessionError::Io {
                side: Peer::Upstream,
                ..
            } | SessionError::Closed {
                side: Peer::Upstream
            }
        ) {
            let quit = format!("QUIT :{}\r\n", "connection closed by the gateway");
            let _ =
                tokio::time::timeout(Duration::from_secs(1), upstream.send(quit.as_bytes())).await;
        }
        if matches!(e, SessionError::Refused(_) | SessionError::Flood(_)) {
            linger(&mut client.io).await;
        }
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

struct Relay<'a> {
    shared: &'a IrcShared,
    session: Session,
    me: Me,
    /// session-start was judged (001 seen).
    started: bool,
    flood: Flood,
    to_client: Vec<u8>,
    to_upstream: Vec<u8>,
    closing: Option<String>,
}

impl Relay<'_> {
    async fn run(
        &mut self,
        client: &mut Side,
        upstream: &mut Side,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), SessionError> {
        let idle = Duration::from_secs(self.shared.config.idle_timeout_s);
        let stats = self.shared.judge.stats();
        let mut idle_deadline = Instant::now() + idle;
        loop {
            if !self.to_upstream.is_empty() {
                let out = std::mem::take(&mut self.to_upstream);
                tokio::time::timeout(idle, upstream.send(&out))
                    .await
                    .map_err(|_| SessionError::Timeout {
                        phase: "writing upstream",
                    })??;
            }
            if !self.to_client.is_empty() {
                let out = std::mem::take(&mut self.to_client);
                tokio::time::timeout(idle, client.send(&out))
                    .await
                    .map_err(|_| SessionError::Timeout {
                        phase: "writing to the client",
                    })??;
            }
            if self.closing.is_some() {
                return Ok(());
            }
            tokio::select! {
                _ = shutdown.changed() => {
                    self.to_client.extend_from_slice(b"ERROR :Closing link: the gateway is shutting down\r\n");
                    self.to_upstream.extend_from_slice(b"QUIT :gateway shutting down\r\n");
                    self.closing = Some("gateway shutdown".into());
                }
                read = client.fill() => {
                    let read = match read {
                        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
                        other => other,
                    };
                    let n = read.map_err(|source| SessionError::Io { side: Peer::Client, phase: "relay", source })?;
                    if n == 0 {
                        self.closing = Some(self.closing.take().unwrap_or_else(|| "client disconnected".into()));
                        continue;
                    }
                    stats.bytes_from_clients.fetch_add(n as u64, Relaxed);
                    idle_deadline = Instant::now() + idle;
                    while let Some(frame) = client.next_frame() {
                        self.client_frame(frame)?;
                    }
                }
                read = upstream.fill() => {
                    let n = read.map_err(|source| SessionError::Io { side: Peer::Upstream, phase: "relay", source })?;
                    if n == 0 {
                        // The server's ERROR (if any) has been relayed.
                        self.closing = Some("server closed the connection".into());
                        continue;
                    }
                    stats.bytes_from_upstream.fetch_add(n as u64, Relaxed);
                    while let Some(frame) = upstream.next_frame() {
                        self.upstream_frame(frame);
                    }
                }
                _ = tokio::time::sleep_until(idle_deadline) => {
                    return Err(SessionError::Timeout { phase: "idle session" });
                }
            }
        }
    }

    fn client_frame(&mut self, frame: Frame) -> Result<(), SessionError> {
        if !self.flood.take() {
            return Err(SessionError::Flood(self.shared.config.flood_lines_per_s));
        }
        let raw = match frame {
            Frame::Line(raw) => codec::into_utf8(raw).map_or_else(Frame::Refused, Frame::Line),
            refused => refused,
        };
        let raw = match raw {
            Frame::Line(raw) => raw,
            Frame::Refused(LineError::TooLong) => {
                // ERR_INPUTTOOLONG (IRCv3): the line is dropped, the
                // session goes on.
                let nick = if self.me.nick.is_empty() {
                    "*"
                } else {
                    &self.me.nick
                };
                self.to_client.extend_from_slice(
                    format!(
                        ":{} 417 {nick} :Input line was too long\r\n",
                        self.shared.config.server_name
                    )
                    .as_bytes(),
                );
                return Ok(());
            }
            Frame::Refused(e @ LineError::Nul) => return Err(SessionError::Refused(e)),
        };
        let Some(line) = Line::parse(&raw) else {
            return Ok(()); // an empty line: servers ignore them too
        };
        match line.command.as_str() {
            // Before registration, the nick the client asks for.
            "NICK" if !self.started => {
                if let Some(nick) = line.params.first() {
                    self.me.nick = nick.clone();
                }
            }
            "QUIT" => {
                let reason = line
                    .params
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "quit".into());
                self.closing = Some(format!("client quit: {reason}"));
            }
            _ => {}
        }
        self.judge_line(raw, &line, Direction::Outbound);
        Ok(())
    }

    fn upstream_frame(&mut self, frame: Frame) {
        let raw = match frame {
            Frame::Line(raw) => codec::into_utf8(raw),
            Frame::Refused(e) => Err(e),
        };
        let raw = match raw {
            Ok(raw) => raw,
            Err(e) => {
                tracing::warn!(error = %e, "upstream sent a line the gateway cannot relay; dropped");
                return;
            }
        };
        let Some(line) = Line::parse(&raw) else {
            return;
        };
        match line.command.as_str() {
            // RPL_WELCOME: registered, under this nick.
            "001" => {
                if let Some(nick) = line.params.first() {
                    self.me.nick = nick.clone();
                }
                self.to_client.extend_from_slice(&raw);
                self.to_client.extend_from_slice(b"\r\n");
                self.start();
                return;
            }
            // RPL_LOGGEDIN: `<nick> <nick!user@host> <account> :...`.
            "900" => {
                if let Some(account) = line.params.get(2) {
                    self.me.account = Some(account.clone());
                    self.session.user = self.me.user().to_owned();
                }
            }
            "NICK" if line.nick() == Some(self.me.nick.as_str()) => {
                if let Some(nick) = line.params.first() {
                    tracing::info!(from = %self.me.nick, to = %nick, "nick changed");
                    self.me.nick = nick.clone();
                    self.session.user = self.me.user().to_owned();
                }
            }
            _ => {}
        }
        self.judge_line(raw, &line, Direction::Inbound);
    }

    fn start(&mut self) {
        self.session.user = self.me.user().to_owned();
        let action = self.shared.judge.judge(
            &self.session,
            Direction::Outbound,
            EventKind::SessionStart,
            vec![("irc.nick".into(), self.me.nick.clone())],
        );
        self.started = true;
        tracing::info!(user = %self.session.user, "session started");
        if let Action::Block(reason) = &action {
            self.to_client.extend_from_slice(
                format!(
                    "ERROR :Closing link: session refused: {}\r\n",
                    events::one_line(reason)
                )
                .as_bytes(),
            );
            self.to_upstream
                .extend_from_slice(b"QUIT :session refused by policy\r\n");
            self.closing = Some(format!("session refused: {reason}"));
        }
    }

    /// Judges what the line means (if anything) and queues what to write.
    fn judge_line(&mut self, raw: Vec<u8>, line: &Line, direction: Direction) {
        let (forward, back) = match direction {
            Direction::Outbound => (&mut self.to_upstream, &mut self.to_client),
            Direction::Inbound => (&mut self.to_client, &mut self.to_upstream),
        };
        let readings = if self.started {
            events::read(line, direction, &self.me)
        } else {
            Vec::new()
        };
        if readings.is_empty() {
            forward.extend_from_slice(&raw);
            forward.extend_from_slice(b"\r\n");
            return;
        }
        let gateway = &self.shared.config.server_name;
        // JOIN/PART of several channels: each is judged; the line goes on
        // with the channels that were allowed.
        if readings.len() > 1 || readings[0].channel.is_some() {
            let mut allowed = Vec::new();
            for reading in readings {
                let channel = reading.channel.clone().unwrap_or_default();
                let action = self.shared.judge.judge(
                    &self.session,
                    direction,
                    reading.kind,
                    reading.attributes,
                );
                match action {
                    Action::Block(reason) if direction == Direction::Outbound => {
                        back.extend_from_slice(
                            format!(
                                ":{gateway} NOTICE {} :{channel}: {}\r\n",
                                self.me.nick,
                                events::one_line(&reason)
                            )
                            .as_bytes(),
                        );
                    }
                    Action::Block(_) | Action::Drop => {}
                    _ => allowed.push(channel),
                }
            }
            if !allowed.is_empty() {
                let mut out = line.clone();
                out.params[0] = allowed.join(",");
                if line.command == "JOIN" && line.params.len() > 1 {
                    // Keys go with their channels.
                    let all: Vec<&str> = line.params[0].split(',').collect();
                    let keys: Vec<&str> = line.params[1].split(',').collect();
                    let kept: Vec<&str> = all
                        .iter()
                        .zip(keys.iter().chain(std::iter::repeat(&"")))
                        .filter(|(c, _)| allowed.iter().any(|a| a == *c))
                        .map(|(_, k)| *k)
                        .collect();
                    out.params[1] = kept.join(",");
                }
                forward.extend_from_slice(out.to_line().as_bytes());
            }
            return;
        }
        let Some(reading) = readings.into_iter().next() else {
            return;
        };
        let ctcp = reading.ctcp;
        let action =
            self.shared
                .judge
                .judge(&self.session, direction, reading.kind, reading.attributes);
        match events::apply(line, direction, ctcp, &action, &self.me, gateway) {
            Outcome::Forward => {
                forward.extend_from_slice(&raw);
                forward.extend_from_slice(b"\r\n");
            }
            Outcome::Rewritten(lines) => {
                for l in lines {
                    forward.extend_from_slice(l.as_bytes());
                }
            }
            Outcome::Drop => {}
            Outcome::Bounce(notice) => back.extend_from_slice(notice.as_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flood_bucket_allows_a_burst_then_the_rate() {
        let mut f = Flood::new(10, 5);
        assert!((0..5).all(|_| f.take()));
        assert!(!f.take());
        let mut off = Flood::new(0, 1);
        assert!((0..10_000).all(|_| off.take()));
    }
}
