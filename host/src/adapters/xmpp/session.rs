//! One XMPP connection's frames, as hooks of the session driver.
//!
//! ```text
//! client frame ─▶ outbound ─▶ judge ─▶ forward | rewrite | drop | bounce to client
//! server frame ─▶ inbound  ─▶ judge ─▶ forward | rewrite | drop | bounce to server
//! SASL passes through (minus -PLUS); stream restarts pass through;
//! the bind result names the user (session-start); SM `h` is translated
//! ```
//!
//! Only what the adapter reads is parsed into an element: stanzas,
//! stream management and the server's features. Every other top-level
//! element (SASL, stream restarts, extensions) is forwarded as the framed
//! bytes it arrived as.

use std::net::SocketAddr;
use std::sync::Arc;

use super::Xmpp;
use super::codec::{CodecError, Element, Frame, Framer, JABBER_CLIENT, Node, STREAMS};
use super::events::{self, Outcome, SeenAs, bare};
use super::rooms::Rooms;
use super::sm;
use super::wire::{
    CLOSE, NS_BIND, NS_SASL, NS_SASL_CB, NS_SASL2, NS_SM, header_from, stream_error,
};
use crate::adapters::review::{Held, Ruling};
use crate::adapters::stream::{
    self, Farewell, FrameError, Hooks, Outbox, Peer, SessionError, Side,
};
use crate::adapters::{Ask, Gate, Seen};
use crate::event::{Action, Direction, EventKind, Session};

/// Why XMPP ended a session, beyond what every stream protocol has.
#[derive(Debug, thiserror::Error)]
pub enum XmppError {
    #[error("{side} sent bad XML: {source}")]
    Codec { side: Peer, source: CodecError },
    #[error("{side} closed the connection in the middle of a stanza")]
    Truncated { side: Peer },
    #[error("{side} broke the protocol: {reason}")]
    Broke { side: Peer, reason: String },
}

impl From<FrameError<CodecError>> for XmppError {
    fn from(e: FrameError<CodecError>) -> Self {
        XmppError::Codec {
            side: e.side,
            source: e.source,
        }
    }
}

type Error = SessionError<XmppError>;

fn codec(side: Peer, source: CodecError) -> Error {
    SessionError::Protocol(XmppError::Codec { side, source })
}

/// The stream error condition the client is told.
pub fn condition(e: &Error) -> &'static str {
    match e {
        SessionError::Protocol(XmppError::Codec {
            side: Peer::Client,
            source,
        }) => source.condition(),
        SessionError::Protocol(XmppError::Broke {
            side: Peer::Client, ..
        }) => "policy-violation",
        SessionError::Timeout { .. } => "connection-timeout",
        _ => "remote-connection-failed",
    }
}

impl stream::Framer for Framer {
    type Frame = Frame;
    type Error = CodecError;

    fn next_frame(&mut self, buf: &mut bytes::BytesMut) -> Result<Option<Frame>, CodecError> {
        use bytes::Buf;
        Ok(self.next(buf)?.map(|(frame, n)| {
            buf.advance(n);
            frame
        }))
    }
}

/// One XMPP session's state.
pub struct XmppSession {
    gate: Gate,
    session: Arc<Session>,
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
    /// Stanzas held for review.
    held: Held<HeldStanza>,
}

/// A stanza a plugin held: what release writes, and what reject needs to
/// tell its sender.
struct HeldStanza {
    raw: Vec<u8>,
    el: Element,
    direction: Direction,
    carbon: Option<events::Carbon>,
}

/// Held stanzas one session keeps, and their bytes.
const MAX_HELD: usize = 256;
const MAX_HELD_BYTES: usize = 4 << 20;

impl XmppSession {
    pub fn new(xmpp: &Xmpp, id: &str, peer: SocketAddr, domain: String) -> Self {
        XmppSession {
            gate: xmpp.base.gate.clone(),
            session: Arc::new(Session {
                id: id.to_owned(),
                user: String::new(),
                peer: peer.to_string(),
            }),
            full_jid: String::new(),
            domain,
            pending_bind: None,
            rooms: Rooms::default(),
            outbound: sm::Counter::default(),
            inbound: sm::Counter::default(),
            started: false,
            client_needs_header: true,
            held: Held::new(MAX_HELD, MAX_HELD_BYTES),
        }
    }
}

impl Hooks for XmppSession {
    type Framer = Framer;
    type Error = XmppError;

    fn client_frame(&mut self, frame: Frame, out: &mut Outbox) -> Result<(), Error> {
        self.on_frame(frame, Peer::Client, out)
    }

    fn upstream_frame(&mut self, frame: Frame, out: &mut Outbox) -> Result<(), Error> {
        self.on_frame(frame, Peer::Upstream, out)
    }

    fn client_closed(&mut self, side: &Side<Framer>, out: &mut Outbox) -> Result<(), Error> {
        if side.holds_partial_frame() {
            return Err(SessionError::Protocol(XmppError::Truncated {
                side: Peer::Client,
            }));
        }
        out.to_upstream.extend_from_slice(CLOSE);
        out.close("client disconnected");
        Ok(())
    }

    fn upstream_closed(&mut self, side: &Side<Framer>, _out: &mut Outbox) -> Result<(), Error> {
        Err(if side.holds_partial_frame() {
            SessionError::Protocol(XmppError::Truncated {
                side: Peer::Upstream,
            })
        } else {
            SessionError::Closed {
                side: Peer::Upstream,
                phase: "relay",
            }
        })
    }

    fn shutdown(&mut self, out: &mut Outbox) {
        out.to_client.extend_from_slice(
            stream_error("system-shutdown", "the gateway is shutting down").as_bytes(),
        );
        out.to_upstream.extend_from_slice(CLOSE);
        out.close("gateway shutdown");
    }

    fn farewell(&mut self, error: &Error) -> Farewell {
        let mut to_client = Vec::new();
        if self.client_needs_header {
            to_client.extend_from_slice(header_from(&self.domain, &self.session.id).as_bytes());
        }
        to_client.extend_from_slice(stream_error(condition(error), &error.to_string()).as_bytes());
        Farewell {
            to_client,
            to_upstream: Some(CLOSE.to_vec()),
            linger: matches!(
                error,
                SessionError::Protocol(XmppError::Codec {
                    side: Peer::Client,
                    ..
                })
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
        let (onward, back, ahead, behind) =
            ways(held.direction, out, &mut self.outbound, &mut self.inbound);
        match ruling {
            Ruling::Release => {
                // Counted as dropped when held; to its receiver it is now
                // one stanza more.
                onward.extend_from_slice(&held.raw);
                ahead.injected();
                Ok("delivered".into())
            }
            Ruling::Reject(note) => {
                let reason = format!("rejected by a reviewer: {note}");
                match events::apply(
                    &held.el,
                    held.direction,
                    held.carbon,
                    &Action::Block(reason),
                    &self.full_jid,
                ) {
                    Outcome::Bounce(xml) => {
                        back.extend_from_slice(xml.as_bytes());
                        behind.injected();
                        Ok("sender told".into())
                    }
                    _ => Ok("rejected; its sender cannot be told (a carbon copy)".into()),
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

/// Whether the adapter looks into a top-level element of this name
/// (namespaces are checked once it is parsed): stanzas, stream
/// management's `enable`, `enabled` and `a`, and the server's features.
fn is_read(frame: &[u8]) -> bool {
    matches!(
        Element::local_name_of(frame),
        b"message" | b"presence" | b"iq" | b"enable" | b"enabled" | b"a" | b"features"
    )
}

fn is_stanza(el: &Element) -> bool {
    el.ns == JABBER_CLIENT && matches!(el.local_name(), "message" | "presence" | "iq")
}

impl XmppSession {
    /// A frame from `from`: passed on, or read and judged.
    fn on_frame(&mut self, frame: Frame, from: Peer, out: &mut Outbox) -> Result<(), Error> {
        let onward = match from {
            Peer::Client => &mut out.to_upstream,
            Peer::Upstream => &mut out.to_client,
        };
        match frame {
            Frame::Whitespace(w) => onward.extend_from_slice(&w),
            Frame::StreamOpen(tag) => {
                // A restart after SASL: the client waits for the server's
                // new header.
                onward.extend_from_slice(&tag);
                self.client_needs_header = from == Peer::Client;
            }
            Frame::StreamClose => {
                onward.extend_from_slice(CLOSE);
                out.close(match from {
                    Peer::Client => "client closed the stream",
                    Peer::Upstream => "server closed the stream",
                });
            }
            Frame::Element(raw) if !is_read(&raw) => onward.extend_from_slice(&raw),
            Frame::Element(raw) => {
                let el = Element::parse(&raw).map_err(|source| codec(from, source))?;
                match from {
                    Peer::Client => self.outbound_element(raw, el, out)?,
                    Peer::Upstream => self.inbound_element(raw, el, out)?,
                }
            }
        }
        Ok(())
    }

    fn outbound_element(
        &mut self,
        raw: Vec<u8>,
        mut el: Element,
        out: &mut Outbox,
    ) -> Result<(), Error> {
        if el.ns == NS_SM {
            match el.local_name() {
                "enable" => {
                    // The gateway cannot carry a session over to a new
                    // connection, so resumption is not offered; the server
                    // then settles unacknowledged stanzas itself.
                    el.remove_attr("resume");
                    el.remove_attr("max");
                    self.outbound.reset();
                    out.to_upstream.extend_from_slice(el.to_xml().as_bytes());
                }
                "a" => {
                    let h = self.inbound.translate(parse_h(&el, Peer::Client)?);
                    out.to_upstream.extend_from_slice(ack(h).as_bytes());
                }
                _ => out.to_upstream.extend_from_slice(&raw),
            }
            return Ok(());
        }
        if !is_stanza(&el) {
            out.to_upstream.extend_from_slice(&raw);
            return Ok(());
        }
        if el.local_name() == "iq"
            && el.attr("type") == Some("set")
            && el.child("bind", NS_BIND).is_some()
        {
            self.pending_bind = el.attr("id").map(str::to_owned);
        }
        self.stanza(raw, &el, Direction::Outbound, out);
        Ok(())
    }

    fn inbound_element(
        &mut self,
        raw: Vec<u8>,
        mut el: Element,
        out: &mut Outbox,
    ) -> Result<(), Error> {
        if el.is("features", STREAMS) {
            if strip_channel_binding(&mut el) {
                out.to_client.extend_from_slice(el.to_xml().as_bytes());
            } else {
                out.to_client.extend_from_slice(&raw);
            }
            return Ok(());
        }
        if el.ns == NS_SM {
            match el.local_name() {
                "enabled" => {
                    self.inbound.reset();
                    out.to_client.extend_from_slice(&raw);
                }
                "a" => {
                    let h = self.outbound.translate(parse_h(&el, Peer::Upstream)?);
                    out.to_client.extend_from_slice(ack(h).as_bytes());
                }
                _ => out.to_client.extend_from_slice(&raw),
            }
            return Ok(());
        }
        if !is_stanza(&el) {
            out.to_client.extend_from_slice(&raw);
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
                return self.bound(jid, raw, out);
            }
        }
        self.stanza(raw, &el, Direction::Inbound, out);
        Ok(())
    }

    /// A stanza travelling `direction`: judged if it means something, then
    /// forwarded, rewritten, dropped or bounced back, with stream
    /// management's counts kept for both directions.
    fn stanza(&mut self, raw: Vec<u8>, el: &Element, direction: Direction, out: &mut Outbox) {
        let reading = if self.started {
            events::read(el, direction, &self.session.user, &self.rooms)
        } else {
            None
        };
        let outcome = match reading {
            Some(reading) => {
                let carbon = reading.carbon;
                let (outcome, held) = self.decide(el, reading);
                if let Some(id) = held {
                    self.keep_held(id, raw.clone(), el, direction, carbon);
                }
                outcome
            }
            None => Outcome::Forward,
        };
        let (onward, back, ahead, behind) =
            ways(direction, out, &mut self.outbound, &mut self.inbound);
        match outcome {
            Outcome::Forward => {
                onward.extend_from_slice(&raw);
                ahead.forwarded();
            }
            Outcome::Rewritten(xml) => {
                onward.extend_from_slice(xml.as_bytes());
                ahead.forwarded();
            }
            Outcome::Drop => ahead.dropped(),
            Outcome::Bounce(xml) => {
                ahead.dropped();
                back.extend_from_slice(xml.as_bytes());
                behind.injected();
            }
        }
    }

    /// The bind result named the user: the session starts, if the chain
    /// allows it.
    fn bound(&mut self, jid: String, raw: Vec<u8>, out: &mut Outbox) -> Result<(), Error> {
        Arc::make_mut(&mut self.session).user = bare(&jid).to_owned();
        self.full_jid = jid;
        let resource = self.full_jid.split_once('/').map(|(_, r)| r.to_owned());
        let attributes = resource
            .map(|r| vec![("xmpp.resource".to_owned(), r)])
            .unwrap_or_default();
        let action = self.gate.judge(
            &self.session,
            Direction::Outbound,
            EventKind::SessionStart,
            attributes,
        );
        self.started = true;
        tracing::info!(user = %self.session.user, "session started");
        match action {
            // A session cannot wait for a reviewer.
            Action::Block(reason) | Action::Hold(reason) => {
                out.to_client.extend_from_slice(
                    stream_error("policy-violation", &format!("session refused: {reason}"))
                        .as_bytes(),
                );
                out.to_upstream.extend_from_slice(CLOSE);
                out.close(format!("session refused: {reason}"));
            }
            Action::Drop => {
                out.to_client.extend_from_slice(
                    stream_error("policy-violation", "session refused").as_bytes(),
                );
                out.to_upstream.extend_from_slice(CLOSE);
                out.close("session refused");
            }
            _ => {
                out.to_client.extend_from_slice(&raw);
                self.inbound.forwarded();
            }
        }
        Ok(())
    }

    /// Judges a reading (or reuses the verdict another session gave the
    /// same message) and says what to write; and the event id when this
    /// session judged it and it is held.
    fn decide(&mut self, el: &Element, reading: events::Reading) -> (Outcome, Option<String>) {
        let room_change = matches!(
            reading.kind,
            EventKind::RoomJoin(_) | EventKind::RoomLeave(_)
        )
        .then(|| (reading.kind.clone(), reading.direction));
        let judgments = self.gate.judgments();
        let seen = match &reading.seen {
            SeenAs::Alone => Seen::Alone,
            SeenAs::Named(stem) => Seen::Named(judgments.stem(&[stem])),
            SeenAs::Sent(stem) => Seen::Sent(judgments.stem(&[stem])),
            SeenAs::Copy(stem) => Seen::Copy(judgments.stem(&[stem])),
        };
        let judged = self.gate.rule(Ask {
            session: &self.session,
            direction: reading.direction,
            kind: reading.kind,
            attributes: reading.attributes,
            ids: reading.ids,
            seen,
        });
        let (action, judged_id, removed) =
            (judged.action, judged.event_id, judged.removed_attachments);
        if let Some((kind, direction)) = room_change
            && matches!(action, Action::Allow | Action::Rewrite(_))
        {
            self.rooms.note(&kind, direction);
        }
        let held = matches!(action, Action::Hold(_))
            .then_some(judged_id)
            .flatten();
        let outcome = events::apply_removing(
            el,
            reading.direction,
            reading.carbon,
            &action,
            &self.full_jid,
            &removed,
        );
        (outcome, held)
    }

    fn keep_held(
        &mut self,
        id: String,
        raw: Vec<u8>,
        el: &Element,
        direction: Direction,
        carbon: Option<events::Carbon>,
    ) {
        let bytes = raw.len();
        let stanza = HeldStanza {
            raw,
            el: el.clone(),
            direction,
            carbon,
        };
        self.held.keep(id, bytes, stanza);
    }
}

/// For a stanza travelling `direction`: where it goes on, where an answer
/// to its sender goes, and the stream management counters of those two
/// ways (`outbound` counts client to server, `inbound` the reverse).
fn ways<'a>(
    direction: Direction,
    out: &'a mut Outbox,
    outbound: &'a mut sm::Counter,
    inbound: &'a mut sm::Counter,
) -> (
    &'a mut Vec<u8>,
    &'a mut Vec<u8>,
    &'a mut sm::Counter,
    &'a mut sm::Counter,
) {
    match direction {
        Direction::Outbound => (&mut out.to_upstream, &mut out.to_client, outbound, inbound),
        Direction::Inbound => (&mut out.to_client, &mut out.to_upstream, inbound, outbound),
    }
}

/// A stream management acknowledgement of `h` stanzas.
fn ack(h: u32) -> String {
    format!("<a xmlns='{NS_SM}' h='{h}'/>")
}

fn parse_h(el: &Element, side: Peer) -> Result<u32, Error> {
    el.attr("h").and_then(|h| h.parse().ok()).ok_or_else(|| {
        SessionError::Protocol(XmppError::Broke {
            side,
            reason: "stream management <a/> without a valid h".into(),
        })
    })
}

/// Removes SASL mechanisms that bind to the TLS channel (`-PLUS`) and the
/// channel-binding types list: the gateway terminates TLS, so the client's
/// channel is not the server's and binding would (rightly) fail. Returns
/// whether anything was removed.
fn strip_channel_binding(features: &mut Element) -> bool {
    let mut changed = false;
    for node in &mut features.children {
        let Node::Element(el) = node else {
            continue;
        };
        if el.is("mechanisms", NS_SASL) || el.is("authentication", NS_SASL2) {
            let before = el.children.len();
            el.children.retain(|n| match n {
                Node::Element(m) => {
                    !(m.local_name() == "mechanism" && m.text().trim().ends_with("-PLUS"))
                }
                Node::Text(_) => true,
            });
            changed |= el.children.len() != before;
        }
    }
    let before = features.children.len();
    features
        .children
        .retain(|n| !matches!(n, Node::Element(e) if e.is("sasl-channel-binding", NS_SASL_CB)));
    changed | (features.children.len() != before)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::testing::{FakeJudge, assert_holds};
    use std::sync::Arc;

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

    /// An XMPP session driven frame by frame against a fake judge: no
    /// socket, no WebAssembly.
    fn session(judge: Arc<FakeJudge>) -> (tempfile::TempDir, XmppSession) {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = crate::tls::self_signed(&["corp.example".into()]).unwrap();
        std::fs::write(dir.path().join("c.pem"), cert).unwrap();
        std::fs::write(dir.path().join("k.pem"), key).unwrap();
        let config: super::super::XmppConfig = toml::from_str(&format!(
            "cert = '{0}/c.pem'\nkey = '{0}/k.pem'\n[upstream]\naddress = '127.0.0.1:5222'\ntls = 'plain'\n",
            dir.path().display()
        ))
        .unwrap();
        let xmpp = Xmpp::new(&config, judge).unwrap();
        let s = XmppSession::new(
            &xmpp,
            "xmpp-test",
            "127.0.0.1:5000".parse().unwrap(),
            "corp.example".into(),
        );
        (dir, s)
    }

    fn element(xml: &str) -> Frame {
        Frame::Element(xml.as_bytes().to_vec())
    }

    /// A session past bind, for `judge`.
    fn bound(judge: Arc<FakeJudge>) -> (tempfile::TempDir, XmppSession) {
        let (dir, mut s) = session(judge);
        let mut out = Outbox::default();
        s.client_frame(
            element("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>"),
            &mut out,
        )
        .unwrap();
        s.upstream_frame(
            element("<iq type='result' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>alice@corp.example/r</jid></bind></iq>"),
            &mut out,
        )
        .unwrap();
        assert!(s.started());
        (dir, s)
    }

    #[test]
    fn a_held_stanza_waits_for_its_ruling() {
        let judge = FakeJudge::new(|e| match e.message() {
            Some(m) if m.body.contains("wire") => Action::Hold("review".into()),
            _ => Action::Allow,
        });
        let (_dir, mut s) = bound(judge.clone());
        let mut out = Outbox::default();
        let first =
            "<message to='bob@example.net' type='chat' id='m1'><body>wire 1</body></message>";
        let second =
            "<message to='bob@example.net' type='chat' id='m2'><body>wire 2</body></message>";
        s.client_frame(element(first), &mut out).unwrap();
        s.client_frame(element(second), &mut out).unwrap();
        assert!(
            out.to_upstream.is_empty() && out.to_client.is_empty(),
            "held: nothing written"
        );
        let ids: Vec<String> = judge.seen.lock().unwrap()[1..]
            .iter()
            .map(|e| e.id.clone())
            .collect();
        let mut out = Outbox::default();
        assert_eq!(
            s.review(&ids[0], &Ruling::Release, &mut out),
            Ok("delivered".into())
        );
        assert_eq!(out.to_upstream, first.as_bytes());
        let mut out = Outbox::default();
        assert_eq!(
            s.review(&ids[1], &Ruling::Reject("not today".into()), &mut out),
            Ok("sender told".into())
        );
        assert!(out.to_upstream.is_empty());
        assert_holds(
            &out.to_client,
            &[
                "policy-violation",
                "rejected by a reviewer: not today",
                "m2",
            ],
        );
        // Each is ruled on once.
        assert!(
            s.review(&ids[0], &Ruling::Release, &mut Outbox::default())
                .is_err()
        );
    }

    #[test]
    fn the_bind_result_starts_the_session_and_stanzas_are_judged() {
        let judge = FakeJudge::blocking("secret");
        let (_dir, mut s) = session(judge.clone());
        let mut out = Outbox::default();
        let sasl =
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHg=</auth>";
        s.client_frame(element(sasl), &mut out).unwrap();
        assert_eq!(out.to_upstream, sasl.as_bytes(), "forwarded as framed");
        out.to_upstream.clear();
        s.client_frame(
            element("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>"),
            &mut out,
        )
        .unwrap();
        s.upstream_frame(
            element("<iq type='result' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>alice@corp.example/r</jid></bind></iq>"),
            &mut out,
        )
        .unwrap();
        assert!(s.started());
        assert_eq!(s.session().user, "alice@corp.example");
        let (mut out, hello) = (
            Outbox::default(),
            "<message to='bob@example.net' type='chat' id='m1'><body>hello</body></message>",
        );
        s.client_frame(element(hello), &mut out).unwrap();
        s.client_frame(
            element("<message to='bob@example.net' type='chat' id='m2'><body>the secret plan</body></message>"),
            &mut out,
        )
        .unwrap();
        assert_eq!(out.to_upstream, hello.as_bytes());
        assert_holds(&out.to_client, &["policy-violation", "no secret"]);
        assert_eq!(judge.kinds(), ["session_start", "message", "message"]);
    }

    #[test]
    fn bad_xml_from_the_client_is_a_stream_error_and_the_client_is_heard_out() {
        let judge = FakeJudge::new(|_| Action::Allow);
        let (_dir, mut s) = session(judge);
        let e = s
            .client_frame(
                element("<message><body>unclosed</message>"),
                &mut Outbox::default(),
            )
            .unwrap_err();
        let farewell = s.farewell(&e);
        let told = String::from_utf8(farewell.to_client).unwrap();
        assert!(told.starts_with("<?xml"), "a header first: {told}");
        assert!(told.contains("</stream:stream>"));
        assert!(farewell.linger);
        assert_eq!(farewell.to_upstream.as_deref(), Some(CLOSE));
    }
}
