//! One IRC connection's lines, as hooks of the session driver.
//!
//! ```text
//! registration (CAP, SASL AUTHENTICATE, NICK, USER) passes through;
//! 001 names the nick (900 the account): session-start;
//! PRIVMSG/NOTICE/JOIN/PART/KICK ─▶ judge ─▶ forward | rewrite (re-split) | drop | NOTICE
//! everything else passes through untouched
//! ```

use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::time::Instant;

use super::Irc;
use super::codec::{self, Frame, Framer, LineError, Message as Line, Next};
use super::events::{self, Me, Outcome};
use crate::adapters::review::{Held, Ruling};
use crate::adapters::stream::{self, Farewell, FrameError, Hooks, Outbox, SessionError, Side};
use crate::adapters::{Ask, Gate, Seen};
use crate::event::{Action, Direction, EventKind, Session};

/// Why IRC ended a session, beyond what every stream protocol has.
#[derive(Debug, thiserror::Error)]
pub enum IrcError {
    #[error("client sent a {0}")]
    Refused(LineError),
    #[error("excess flood: more than {0} lines a second")]
    Flood(u32),
    #[error("TLS listener without a certificate")]
    NoCertificate,
}

// The line framer never fails: a bad line is a frame of its own
// (`Frame::Refused`), answered in IRC's terms.
impl From<FrameError<std::convert::Infallible>> for IrcError {
    fn from(e: FrameError<std::convert::Infallible>) -> Self {
        match e.source {}
    }
}

impl stream::Framer for Framer {
    type Frame = Frame;
    type Error = std::convert::Infallible;

    fn next_frame(
        &mut self,
        buf: &mut bytes::BytesMut,
    ) -> Result<Option<Frame>, std::convert::Infallible> {
        use bytes::Buf;
        loop {
            match self.next(buf) {
                Next::Frame(frame, n) => {
                    buf.advance(n);
                    return Ok(Some(frame));
                }
                Next::Discard(n) => buf.advance(n),
                Next::More => return Ok(None),
            }
        }
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

/// A line as the session handles it: UTF-8 (bad bytes replaced, as the
/// text judged must be the text sent), or why it was refused.
fn text_of(frame: Frame) -> Result<Vec<u8>, LineError> {
    match frame {
        Frame::Line(raw) => codec::into_utf8(raw),
        Frame::Refused(e) => Err(e),
    }
}

/// One IRC session's state.
pub struct IrcSession {
    gate: Gate,
    server_name: String,
    flood_rate: u32,
    session: Arc<Session>,
    me: Me,
    /// session-start was judged (001 seen).
    started: bool,
    flood: Flood,
    /// Lines held for review.
    held: Held<HeldLine>,
}

/// A line a plugin held: what release writes, and what reject needs to
/// tell its sender.
struct HeldLine {
    raw: Vec<u8>,
    direction: Direction,
    ctcp: events::Ctcp,
}

/// Held lines one session keeps. A line is at most 8191 bytes of tags and 512 of the rest, so this
/// bounds their bytes too (about 2 MiB).
const MAX_HELD: usize = 256;

impl IrcSession {
    pub fn new(irc: &Irc, id: &str, peer: SocketAddr) -> Self {
        IrcSession {
            gate: irc.base.gate.clone(),
            server_name: irc.config.server_name.clone(),
            flood_rate: irc.config.flood_lines_per_s,
            session: Arc::new(Session {
                id: id.to_owned(),
                user: String::new(),
                peer: peer.to_string(),
            }),
            me: Me::default(),
            started: false,
            flood: Flood::new(irc.config.flood_lines_per_s, irc.config.flood_burst),
            held: Held::new(MAX_HELD, usize::MAX),
        }
    }
}

impl Hooks for IrcSession {
    type Framer = Framer;
    type Error = IrcError;

    fn client_frame(
        &mut self,
        frame: Frame,
        out: &mut Outbox,
    ) -> Result<(), SessionError<IrcError>> {
        self.on_client_line(frame, out)
    }

    fn upstream_frame(
        &mut self,
        frame: Frame,
        out: &mut Outbox,
    ) -> Result<(), SessionError<IrcError>> {
        self.on_upstream_line(frame, out);
        Ok(())
    }

    fn client_closed(
        &mut self,
        _side: &Side<Framer>,
        out: &mut Outbox,
    ) -> Result<(), SessionError<IrcError>> {
        // A line cut off by the hang-up was never sent; servers drop it too.
        out.close("client disconnected");
        Ok(())
    }

    fn upstream_closed(
        &mut self,
        _side: &Side<Framer>,
        out: &mut Outbox,
    ) -> Result<(), SessionError<IrcError>> {
        // The server's ERROR (if any) has been relayed.
        out.close("server closed the connection");
        Ok(())
    }

    fn shutdown(&mut self, out: &mut Outbox) {
        out.to_client
            .extend_from_slice(b"ERROR :Closing link: the gateway is shutting down\r\n");
        out.to_upstream
            .extend_from_slice(b"QUIT :gateway shutting down\r\n");
        out.close("gateway shutdown");
    }

    fn farewell(&mut self, error: &SessionError<IrcError>) -> Farewell {
        Farewell {
            to_client: format!(
                "ERROR :Closing link: {}\r\n",
                events::one_line(&error.to_string())
            )
            .into_bytes(),
            to_upstream: (!error.upstream_lost())
                .then(|| b"QUIT :connection closed by the gateway\r\n".to_vec()),
            linger: matches!(
                error,
                SessionError::Protocol(IrcError::Refused(_) | IrcError::Flood(_))
            ),
        }
    }

    fn review(
        &mut self,
        event_id: &str,
        ruling: &Ruling,
        out: &mut Outbox,
    ) -> Result<String, String> {
        let held = self.held.take(event_id)?;
        let (forward, back) = match held.direction {
            Direction::Outbound => (&mut out.to_upstream, &mut out.to_client),
            Direction::Inbound => (&mut out.to_client, &mut out.to_upstream),
        };
        match ruling {
            Ruling::Release => {
                forward.extend_from_slice(&held.raw);
                forward.extend_from_slice(b"\r\n");
                Ok("delivered".into())
            }
            Ruling::Reject(note) => {
                let reason = Action::Block(format!("rejected by a reviewer: {note}"));
                let Some(line) = Line::parse(&held.raw) else {
                    return Ok("rejected; its sender cannot be told on IRC".into());
                };
                match events::apply(
                    &line,
                    held.direction,
                    held.ctcp,
                    &reason,
                    &self.me,
                    &self.server_name,
                ) {
                    Outcome::Bounce(notice) => {
                        back.extend_from_slice(notice.as_bytes());
                        Ok("sender told".into())
                    }
                    _ => Ok("rejected; its sender cannot be told on IRC".into()),
                }
            }
        }
    }

    fn session(&self) -> &Arc<Session> {
        &self.session
    }

    fn started(&self) -> bool {
        self.started
    }
}

impl IrcSession {
    fn on_client_line(
        &mut self,
        frame: Frame,
        out: &mut Outbox,
    ) -> Result<(), SessionError<IrcError>> {
        if !self.flood.take() {
            return Err(SessionError::Protocol(IrcError::Flood(self.flood_rate)));
        }
        let raw = match text_of(frame) {
            Ok(raw) => raw,
            Err(LineError::TooLong) => {
                // ERR_INPUTTOOLONG (IRCv3): the line is dropped, the
                // session goes on.
                let nick = if self.me.nick.is_empty() {
                    "*"
                } else {
                    &self.me.nick
                };
                out.to_client.extend_from_slice(
                    format!(
                        ":{} 417 {nick} :Input line was too long\r\n",
                        self.server_name
                    )
                    .as_bytes(),
                );
                return Ok(());
            }
            Err(e @ LineError::Nul) => {
                return Err(SessionError::Protocol(IrcError::Refused(e)));
            }
        };
        let Some(line) = Line::parse(&raw) else {
            return Ok(()); // an empty line: servers ignore them too
        };
        match line.command.as_ref() {
            // Before registration, the nick the client asks for.
            "NICK" if !self.started => {
                if let Some(nick) = line.params.first() {
                    self.me.nick = nick.to_string();
                }
            }
            "QUIT" => {
                let reason = line.params.first().map_or("quit", |r| r);
                out.close(format!("client quit: {reason}"));
            }
            _ => {}
        }
        self.judge_line(&raw, &line, Direction::Outbound, out);
        Ok(())
    }

    fn on_upstream_line(&mut self, frame: Frame, out: &mut Outbox) {
        let raw = match text_of(frame) {
            Ok(raw) => raw,
            Err(e) => {
                tracing::warn!(error = %e, "upstream sent a line the gateway cannot relay; dropped");
                return;
            }
        };
        let Some(line) = Line::parse(&raw) else {
            return;
        };
        match line.command.as_ref() {
            // RPL_WELCOME: registered, under this nick.
            "001" => {
                if let Some(nick) = line.params.first() {
                    self.me.nick = nick.to_string();
                }
                out.to_client.extend_from_slice(&raw);
                out.to_client.extend_from_slice(b"\r\n");
                self.start(out);
                return;
            }
            // RPL_LOGGEDIN: `<nick> <nick!user@host> <account> :...`.
            "900" => {
                if let Some(account) = line.params.get(2) {
                    self.me.account = Some(account.to_string());
                    Arc::make_mut(&mut self.session).user = self.me.user().to_owned();
                }
            }
            "NICK" if line.nick() == Some(self.me.nick.as_str()) => {
                if let Some(nick) = line.params.first() {
                    tracing::info!(from = %self.me.nick, to = %nick, "nick changed");
                    self.me.nick = nick.to_string();
                    Arc::make_mut(&mut self.session).user = self.me.user().to_owned();
                }
            }
            _ => {}
        }
        self.judge_line(&raw, &line, Direction::Inbound, out);
    }

    fn start(&mut self, out: &mut Outbox) {
        Arc::make_mut(&mut self.session).user = self.me.user().to_owned();
        let action = self.gate.judge(
            &self.session,
            Direction::Outbound,
            EventKind::SessionStart,
            vec![("irc.nick".into(), self.me.nick.clone())],
        );
        self.started = true;
        tracing::info!(user = %self.session.user, "session started");
        // A session cannot wait for a reviewer.
        if let Action::Block(reason) | Action::Hold(reason) = &action {
            out.to_client.extend_from_slice(
                format!(
                    "ERROR :Closing link: session refused: {}\r\n",
                    events::one_line(reason)
                )
                .as_bytes(),
            );
            out.to_upstream
                .extend_from_slice(b"QUIT :session refused by policy\r\n");
            out.close(format!("session refused: {reason}"));
        }
    }

    /// How other local sessions meet this line: a PRIVMSG or NOTICE this
    /// session sends reaches the channel's (or the nick's) local members
    /// as a line from this nick, and one it receives may reach others too.
    /// IRC gives no identity every copy shares (an IRCv3 `msgid` is the
    /// server's, unknown to the sender), so the line is known by its
    /// sender, command, target and text.
    fn seen(&self, line: &Line<'_>, direction: Direction, ctcp: events::Ctcp) -> Seen {
        let sender = match direction {
            Direction::Outbound => Some(self.me.nick.as_str()),
            Direction::Inbound => line.nick(),
        };
        let (Some(sender), Some(target)) = (sender, line.params.first()) else {
            return Seen::Alone;
        };
        let ctcp = match ctcp {
            events::Ctcp::Action => "ACTION",
            events::Ctcp::None => "",
        };
        let stem = self.gate.judgments().stem_from(|h| {
            line.command.hash(h);
            hash_folded(sender, h);
            hash_folded(target, h);
            ctcp.hash(h);
        });
        match direction {
            Direction::Outbound => Seen::Sent(stem),
            Direction::Inbound => Seen::Copy(stem),
        }
    }

    /// Judges what the line means (if anything) and queues what to write.
    fn judge_line(&mut self, raw: &[u8], line: &Line<'_>, direction: Direction, out: &mut Outbox) {
        let (forward, back) = match direction {
            Direction::Outbound => (&mut out.to_upstream, &mut out.to_client),
            Direction::Inbound => (&mut out.to_client, &mut out.to_upstream),
        };
        if self.started && events::is_plain_message(line) {
            if self.gate.allows_everything() {
                // Nothing to judge by: the line goes on as it came, unread.
                self.gate.pass();
                forward.extend_from_slice(raw);
                forward.extend_from_slice(b"\r\n");
                return;
            }
            // Read into an event only if it must be judged: a copy whose
            // verdict another session has is not.
            let ctcp = events::Ctcp::None;
            let seen = self.seen(line, direction, ctcp);
            let (session, me) = (&self.session, &self.me);
            let judged = self.gate.rule_lazily(session, seen, line.param(1), || {
                let reading = events::read(line, direction, me).into_iter().next()?;
                Some(ask(session, reading, seen))
            });
            self.deliver(raw, line, direction, ctcp, judged, out);
            return;
        }
        let readings = if self.started {
            events::read(line, direction, &self.me)
        } else {
            events::Readings::new()
        };
        if readings.is_empty() {
            forward.extend_from_slice(raw);
            forward.extend_from_slice(b"\r\n");
            return;
        }
        let gateway = &self.server_name;
        // JOIN/PART of several channels: each is judged; the line goes on
        // with the channels that were allowed.
        if readings.len() > 1 || readings[0].channel.is_some() {
            let mut allowed = Vec::new();
            for reading in readings {
                let channel = reading.channel.clone().unwrap_or_default();
                let action =
                    self.gate
                        .judge(&self.session, direction, reading.kind, reading.attributes);
                match action {
                    // A join or part cannot wait for a reviewer: held is refused.
                    Action::Block(reason) | Action::Hold(reason)
                        if direction == Direction::Outbound =>
                    {
                        back.extend_from_slice(
                            format!(
                                ":{gateway} NOTICE {} :{channel}: {}\r\n",
                                self.me.nick,
                                events::one_line(&reason)
                            )
                            .as_bytes(),
                        );
                    }
                    Action::Block(_) | Action::Drop | Action::Hold(_) => {}
                    _ => allowed.push(channel),
                }
            }
            if !allowed.is_empty() {
                let mut out = line.clone();
                out.params[0] = allowed.join(",").into();
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
                    out.params[1] = kept.join(",").into();
                }
                forward.extend_from_slice(out.to_line().as_bytes());
            }
            return;
        }
        let Some(reading) = readings.into_iter().next() else {
            return;
        };
        let ctcp = reading.ctcp;
        let seen = match reading.kind {
            EventKind::Message(_) => self.seen(line, direction, ctcp),
            _ => Seen::Alone,
        };
        let judged = self.gate.rule(ask(&self.session, reading, seen));
        self.deliver(raw, line, direction, ctcp, judged, out);
    }

    /// Applies a verdict to the line: keeps it if held, and queues what to
    /// write.
    fn deliver(
        &mut self,
        raw: &[u8],
        line: &Line<'_>,
        direction: Direction,
        ctcp: events::Ctcp,
        judged: crate::adapters::Judged,
        out: &mut Outbox,
    ) {
        let action = judged.action;
        if let (Action::Hold(_), Some(id)) = (&action, judged.event_id) {
            let held = HeldLine {
                raw: raw.to_vec(),
                direction,
                ctcp,
            };
            self.held.keep(id, raw.len(), held);
        }
        let gateway = &self.server_name;
        let (forward, back) = match direction {
            Direction::Outbound => (&mut out.to_upstream, &mut out.to_client),
            Direction::Inbound => (&mut out.to_client, &mut out.to_upstream),
        };
        match events::apply(line, direction, ctcp, &action, &self.me, gateway) {
            Outcome::Forward => {
                forward.extend_from_slice(raw);
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

/// What a line's reading asks the gate.
fn ask(session: &Arc<Session>, reading: events::Reading, seen: Seen) -> Ask<'_> {
    Ask {
        session,
        direction: reading.direction,
        kind: reading.kind,
        attributes: reading.attributes,
        ids: reading.ids,
        seen,
    }
}

/// Hashes a nick or channel as IRC compares them (RFC 1459 case
/// mapping), without copying it.
fn hash_folded(name: &str, h: &mut impl Hasher) {
    for c in name.chars() {
        match c {
            '[' => '{',
            ']' => '}',
            '\\' => '|',
            '~' => '^',
            c => c.to_ascii_lowercase(),
        }
        .hash(h);
    }
    0xffu8.hash(h);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::testing::{FakeJudge, assert_holds};
    use crate::event::Scope;

    #[test]
    fn the_flood_bucket_allows_a_burst_then_the_rate() {
        let mut f = Flood::new(10, 5);
        assert!((0..5).all(|_| f.take()));
        assert!(!f.take());
        let mut off = Flood::new(0, 1);
        assert!((0..10_000).all(|_| off.take()));
    }

    /// An IRC session driven frame by frame against a fake judge: the
    /// adapter's whole reading and writing of IRC, with no socket and no
    /// WebAssembly.
    fn irc(judge: std::sync::Arc<FakeJudge>) -> Irc {
        let config: super::super::IrcConfig = toml::from_str(
            "listen = '127.0.0.1:0'\nflood_burst = 5\nflood_lines_per_s = 1\n\
             [upstream]\naddress = '127.0.0.1:6667'\ntls = 'plain'\n",
        )
        .unwrap();
        Irc::new(&config, judge).unwrap()
    }

    fn line(text: &str) -> Frame {
        Frame::Line(text.as_bytes().to_vec())
    }

    /// A session of `irc` registered as `nick`.
    fn registered_on(irc: &Irc, nick: &str) -> IrcSession {
        let mut s = IrcSession::new(
            irc,
            &format!("irc-{nick}"),
            "127.0.0.1:5000".parse().unwrap(),
        );
        let mut out = Outbox::default();
        s.client_frame(line(&format!("NICK {nick}")), &mut out)
            .unwrap();
        s.upstream_frame(line(&format!(":srv 001 {nick} :Welcome")), &mut out)
            .unwrap();
        assert!(s.started());
        s
    }

    fn registered(judge: &std::sync::Arc<FakeJudge>) -> IrcSession {
        registered_on(&irc(judge.clone()), "alice")
    }

    #[test]
    fn a_channel_line_is_judged_once_for_every_local_member() {
        // An ethical wall between alice and carol, who share #deals with
        // bob and dave; every session goes through this gateway.
        let judge = FakeJudge::scoped(true, |e, scope| {
            let walled = e.sender().eq_ignore_ascii_case("alice") && e.session.user == "carol";
            match scope {
                Scope::Recipient if walled => Action::Block("wall".into()),
                _ => Action::Allow,
            }
        });
        let irc = irc(judge.clone());
        let mut alice = registered_on(&irc, "alice");
        let mut members: Vec<IrcSession> = ["bob", "carol", "dave"]
            .iter()
            .map(|n| registered_on(&irc, n))
            .collect();
        judge.scopes.lock().unwrap().clear();
        let mut out = Outbox::default();
        alice
            .client_frame(line("PRIVMSG #deals :hello all"), &mut out)
            .unwrap();
        assert_eq!(out.to_upstream, b"PRIVMSG #deals :hello all\r\n");
        let delivered = |members: &mut Vec<IrcSession>, text: &str| -> Vec<bool> {
            members
                .iter_mut()
                .map(|m| {
                    let mut out = Outbox::default();
                    m.upstream_frame(line(text), &mut out).unwrap();
                    !out.to_client.is_empty()
                })
                .collect()
        };
        assert_eq!(
            delivered(&mut members, ":Alice!a@h PRIVMSG #Deals :hello all"),
            [true, false, true]
        );
        // Once by every plugin (alice's line), then once per member by the
        // plugins that see each recipient.
        assert_eq!(
            *judge.scopes.lock().unwrap(),
            [
                Scope::All,
                Scope::Recipient,
                Scope::Recipient,
                Scope::Recipient
            ]
        );
        judge.scopes.lock().unwrap().clear();
        // A line from elsewhere: the first member's session has it judged.
        assert_eq!(
            delivered(&mut members, ":erin!e@h PRIVMSG #deals :hi"),
            [true, true, true]
        );
        assert_eq!(
            *judge.scopes.lock().unwrap(),
            [
                Scope::Shared,
                Scope::Recipient,
                Scope::Recipient,
                Scope::Recipient
            ]
        );
        // The same words again are a new line, judged again once.
        judge.scopes.lock().unwrap().clear();
        delivered(&mut members, ":erin!e@h PRIVMSG #deals :hi");
        assert_eq!(judge.scopes.lock().unwrap()[0], Scope::Shared);
        assert_eq!(
            irc.base
                .gate
                .stats()
                .verdicts_reused
                .load(std::sync::atomic::Ordering::Relaxed),
            7
        );
    }

    #[test]
    fn without_each_recipient_plugins_a_line_is_judged_once() {
        let judge = FakeJudge::blocking("secret");
        let irc = irc(judge.clone());
        let mut members: Vec<IrcSession> = (0..20)
            .map(|n| registered_on(&irc, &format!("m{n}")))
            .collect();
        let before = judge.seen.lock().unwrap().len();
        for m in &mut members {
            let mut out = Outbox::default();
            m.upstream_frame(line(":erin!e@h PRIVMSG #all :a secret"), &mut out)
                .unwrap();
            assert!(out.to_client.is_empty(), "blocked for every member");
        }
        assert_eq!(judge.seen.lock().unwrap().len() - before, 1);
    }

    #[test]
    fn a_held_line_waits_for_its_ruling() {
        let judge = FakeJudge::new(|e| match e.message() {
            Some(m) if m.body.contains("wire") => Action::Hold("review".into()),
            _ => Action::Allow,
        });
        let mut s = registered(&judge);
        let mut out = Outbox::default();
        s.client_frame(line("PRIVMSG bob :wire 1"), &mut out)
            .unwrap();
        s.client_frame(line("PRIVMSG bob :wire 2"), &mut out)
            .unwrap();
        assert!(out.to_upstream.is_empty() && out.to_client.is_empty());
        let ids: Vec<String> = judge.seen.lock().unwrap()[1..]
            .iter()
            .map(|e| e.id.clone())
            .collect();
        let mut out = Outbox::default();
        assert_eq!(
            s.review(&ids[0], &Ruling::Release, &mut out),
            Ok("delivered".into())
        );
        assert_eq!(out.to_upstream, b"PRIVMSG bob :wire 1\r\n");
        let mut out = Outbox::default();
        assert_eq!(
            s.review(&ids[1], &Ruling::Reject("no".into()), &mut out),
            Ok("sender told".into())
        );
        assert_holds(
            &out.to_client,
            &["NOTICE alice", "rejected by a reviewer: no"],
        );
        assert!(
            s.review(&ids[1], &Ruling::Release, &mut Outbox::default())
                .is_err()
        );
    }

    #[test]
    fn registration_starts_the_session_and_messages_are_judged() {
        let judge = FakeJudge::blocking("secret");
        let mut s = registered(&judge);
        assert_eq!(s.session().user, "alice");
        let mut out = Outbox::default();
        s.client_frame(line("PRIVMSG bob :hello"), &mut out)
            .unwrap();
        s.client_frame(line("PRIVMSG bob :the secret plan"), &mut out)
            .unwrap();
        assert_eq!(out.to_upstream, b"PRIVMSG bob :hello\r\n");
        assert_holds(&out.to_client, &["NOTICE alice", "no secret"]);
        assert_eq!(judge.kinds(), ["session_start", "message", "message"]);
    }

    #[test]
    fn a_flood_or_a_nul_ends_the_session_and_the_client_is_told() {
        let judge = FakeJudge::new(|_| Action::Allow);
        let mut s = registered(&judge);
        let mut out = Outbox::default();
        // The burst was 5; NICK used one.
        let results: Vec<_> = (0..6)
            .map(|i| s.client_frame(line(&format!("PING {i}")), &mut out))
            .collect();
        let Some(Err(e)) = results.into_iter().find(Result::is_err) else {
            panic!("no flood")
        };
        let farewell = s.farewell(&e);
        assert!(farewell.linger);
        assert!(
            String::from_utf8_lossy(&farewell.to_client)
                .starts_with("ERROR :Closing link: excess flood")
        );
        let mut s = registered(&judge);
        let e = s
            .client_frame(Frame::Refused(LineError::Nul), &mut out)
            .unwrap_err();
        assert_eq!(e.to_string(), "client sent a NUL byte in line");
        assert!(s.farewell(&e).to_upstream.is_some());
    }

    #[test]
    fn a_closed_upstream_is_not_sent_a_quit() {
        let judge = FakeJudge::new(|_| Action::Allow);
        let mut s = registered(&judge);
        let lost: SessionError<IrcError> = SessionError::Closed {
            side: crate::adapters::stream::Peer::Upstream,
            phase: "relay",
        };
        assert!(s.farewell(&lost).to_upstream.is_none());
    }
}
