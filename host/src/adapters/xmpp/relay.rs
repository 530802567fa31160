//! The XMPP relay identity: a client of the real server (the `[xmpp]`
//! upstream, secured the same way) that logs in with SASL PLAIN, joins its
//! rooms (no history), turns what the rooms say into events, and writes
//! the bridge's copies: as itself, in the configured format, with XEP-0308
//! corrections, XEP-0424 retractions and XEP-0461 replies pointing at the
//! copies it wrote before. A copy counts as delivered when the room
//! reflects it (its stanza-id is then the copy's id there).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use tokio::sync::watch;
use tokio::time::Instant;

use super::codec::{Element, Frame, JABBER_CLIENT, escape};
use super::events::{self, bare};
use super::handshake::{connect_upstream, read_element, read_header};
use super::rooms::Rooms;
use super::wire::header_to;
use super::{Xmpp, XmppConfig};
use crate::adapters::AdapterError;
use crate::adapters::relay::config::{XmppRelayConfig, render, secret};
use crate::adapters::relay::{
    Command, Link, RelayHandle, RelayStatus, Reply, Timing, relay_session,
};
use crate::event::bridge::Copy;
use crate::event::{Direction, Event, Judge, NetworkId, new_event_uuid_at, now_ms};

const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
const NS_MUC: &str = "http://jabber.org/protocol/muc";
const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
const NS_SID: &str = "urn:xmpp:sid:0";
const NS_DELAY: &str = "urn:xmpp:delay";
const NS_CORRECT: &str = "urn:xmpp:message-correct:0";
const NS_RETRACT: &str = "urn:xmpp:message-retract:1";
const NS_REPLY: &str = "urn:xmpp:reply:0";
const NS_FALLBACK: &str = "urn:xmpp:fallback:0";
const NS_PING: &str = "urn:xmpp:ping";

/// How long a room has to reflect a copy before it counts as delivered
/// without its stanza-id.
const REFLECTION: Duration = Duration::from_secs(5);
/// Whitespace keepalive, so a dead server is noticed.
const KEEPALIVE: Duration = Duration::from_secs(30);

/// Starts the relay; it connects in the background and keeps connected.
///
/// # Errors
/// The `[xmpp]` section's certificates or CA file are unusable.
pub fn start(
    relay: &XmppRelayConfig,
    format: &str,
    xmpp: &XmppConfig,
    judge: Arc<dyn Judge>,
    timing: Timing,
    stopping: watch::Receiver<bool>,
) -> Result<(RelayHandle, tokio::task::JoinHandle<()>), AdapterError> {
    let protocol = Arc::new(Xmpp::new(xmpp, judge.clone())?);
    let status = RelayStatus::new("xmpp", &relay.jid, &relay.rooms);
    let session = relay_session("xmpp", &relay.jid);
    let relay = Arc::new(relay.clone());
    let format: Arc<str> = Arc::from(format);
    Ok(crate::adapters::relay::start(
        status,
        session,
        judge,
        timing,
        stopping,
        move |link| {
            let (protocol, relay, format) = (protocol.clone(), relay.clone(), format.clone());
            async move {
                let mut link = link;
                let result = connection(&protocol, &relay, &format, &mut link).await;
                (result, link)
            }
        },
    ))
}

/// One connection: log in, join, then serve until it breaks.
async fn connection(
    xmpp: &Xmpp,
    relay: &XmppRelayConfig,
    format: &str,
    link: &mut Link,
) -> Result<(), String> {
    let password = secret(&relay.password, &relay.password_file)?;
    let (user, domain) = relay.jid.split_once('@').unwrap_or((&relay.jid, ""));
    let text = |e: crate::adapters::stream::SessionError<super::session::XmppError>| e.to_string();
    let login = async {
        let mut side = connect_upstream(xmpp, domain).await.map_err(text)?;
        // After STARTTLS (or none) the stream starts here.
        side.send(header_to(domain).as_bytes(), "relay login")
            .await
            .map_err(text)?;
        read_header(&mut side, "relay login").await.map_err(text)?;
        let features = read_element(&mut side, "relay login").await.map_err(text)?;
        let plain = features
            .child("mechanisms", NS_SASL)
            .is_some_and(|m| m.elements().any(|e| e.text() == "PLAIN"));
        if !plain {
            return Err("the server offers no SASL PLAIN to the relay".to_owned());
        }
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
        side.send(
            format!("<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{token}</auth>").as_bytes(),
            "relay login",
        )
        .await
        .map_err(text)?;
        let answer = read_element(&mut side, "relay login").await.map_err(text)?;
        if !answer.is("success", NS_SASL) {
            return Err(format!(
                "the server refused the relay's login as {}",
                relay.jid
            ));
        }
        side.framer = xmpp.framer();
        side.send(header_to(domain).as_bytes(), "relay login")
            .await
            .map_err(text)?;
        read_header(&mut side, "relay login").await.map_err(text)?;
        let _features = read_element(&mut side, "relay login").await.map_err(text)?;
        side.send(
            format!(
                "<iq type='set' id='bind'><bind xmlns='{NS_BIND}'><resource>imgate-relay</resource></bind></iq>"
            )
            .as_bytes(),
            "relay login",
        )
        .await
        .map_err(text)?;
        let bound = read_element(&mut side, "relay login").await.map_err(text)?;
        if bound.attr("type") != Some("result") {
            return Err("the server refused to bind the relay's resource".to_owned());
        }
        Ok(side)
    };
    let mut side = tokio::time::timeout(Duration::from_secs(20), login)
        .await
        .map_err(|_| "the relay's login took longer than 20 s".to_owned())??;
    for room in &relay.rooms {
        let join = format!(
            "<presence to='{}/{}'><x xmlns='{NS_MUC}'><history maxstanzas='0'/></x></presence>",
            escape(room, true),
            escape(&relay.nick, true)
        );
        side.send(join.as_bytes(), "relay join")
            .await
            .map_err(text)?;
    }

    let mut served = Served {
        relay,
        format,
        rooms: Rooms::default(),
        in_room: HashSet::new(),
        waiting: HashMap::new(),
    };
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    keepalive.reset();
    let mut reflect = tokio::time::interval(Duration::from_millis(500));
    // Up once the server has put it in every room.
    let mut up = false;
    loop {
        // Frames already buffered first.
        while let Some(frame) = side
            .next_frame::<super::session::XmppError>()
            .map_err(text)?
        {
            match frame {
                Frame::Element(raw) => {
                    if let Ok(stanza) = Element::parse(&raw)
                        && let Some(reply) = served.read(&stanza, link).await
                    {
                        side.send(reply.as_bytes(), "relay").await.map_err(text)?;
                    }
                }
                Frame::StreamClose => return Err("the server closed the relay's stream".into()),
                Frame::StreamOpen(_) | Frame::Whitespace(_) => {}
            }
        }
        if !up
            && relay
                .rooms
                .iter()
                .all(|r| served.in_room.contains(&r.to_ascii_lowercase()))
        {
            link.status.up();
            up = true;
        }
        tokio::select! {
            n = side.fill() => match n {
                Ok(0) => return Err("the server closed the relay's connection".into()),
                Ok(_) => {}
                Err(e) => return Err(format!("reading from the server: {e}")),
            },
            command = link.commands.recv() => match command {
                Some(Command::Send(copy, reply)) => {
                    let (stanza, in_room) = served.write(&copy);
                    side.send(stanza.as_bytes(), "relay").await.map_err(text)?;
                    let ids = vec![NetworkId::new("message-id", &copy.id)];
                    if in_room {
                        served.waiting.insert(copy.id.clone(), (reply, Instant::now() + REFLECTION));
                    } else {
                        let _ = reply.send(Ok(ids));
                    }
                }
                Some(Command::Tell { place, who, text: note_text }) => {
                    let to = if who.is_empty() { place } else { format!("{place}/{who}") };
                    let note = format!(
                        "<message to='{}' type='chat' id='{}'><body>{}</body></message>",
                        escape(&xml_chars(&to), true),
                        crate::event::new_event_id(),
                        escape(&xml_chars(&note_text), false)
                    );
                    side.send(note.as_bytes(), "relay").await.map_err(text)?;
                }
                None => return Ok(()),
            },
            _ = keepalive.tick() => side.send(b" ", "relay keepalive").await.map_err(text)?,
            _ = reflect.tick() => served.unreflected(),
        }
    }
}

/// Text without the characters XML cannot carry (a server would end the
/// relay's stream over one): a plugin and another network wrote it.
fn xml_chars(text: &str) -> std::borrow::Cow<'_, str> {
    let fits = |c: char| {
        matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && !matches!(c, '\u{FFFE}' | '\u{FFFF}'))
    };
    if text.chars().all(fits) {
        std::borrow::Cow::Borrowed(text)
    } else {
        std::borrow::Cow::Owned(text.chars().filter(|&c| fits(c)).collect())
    }
}

/// One connection's state.
struct Served<'a> {
    relay: &'a XmppRelayConfig,
    format: &'a str,
    rooms: Rooms,
    /// Rooms whose own join the server confirmed: presences before it are
    /// the occupants already there, not joins.
    in_room: HashSet<String>,
    /// Copies written to a room, waiting for the room's reflection.
    waiting: HashMap<String, (Reply, Instant)>,
}

impl Served<'_> {
    fn is_mine(&self, from: &str) -> bool {
        from.split_once('/').is_some_and(|(room, nick)| {
            nick == self.relay.nick
                && self
                    .relay
                    .rooms
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case(room))
        })
    }

    /// Copies the room did not reflect in time: written, without ids.
    fn unreflected(&mut self) {
        let now = Instant::now();
        let late: Vec<String> = self
            .waiting
            .iter()
            .filter(|(_, (_, by))| *by <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in late {
            if let Some((reply, _)) = self.waiting.remove(&id) {
                let _ = reply.send(Ok(vec![NetworkId::new("message-id", &id)]));
            }
        }
    }

    /// Handles a stanza from the server; returns an answer to write, if any.
    async fn read(&mut self, stanza: &Element, link: &Link) -> Option<String> {
        if stanza.ns != JABBER_CLIENT {
            return None;
        }
        let from = stanza.attr("from").unwrap_or_default();
        match stanza.local_name() {
            "iq" if stanza.attr("type") == Some("get")
                && stanza.child("ping", NS_PING).is_some() =>
            {
                return Some(format!(
                    "<iq type='result' to='{}' id='{}'/>",
                    escape(from, true),
                    escape(stanza.attr("id").unwrap_or_default(), true)
                ));
            }
            "message" => {
                let id = stanza.attr("id").unwrap_or_default().to_owned();
                if stanza.attr("type") == Some("error") {
                    if let Some((reply, _)) = self.waiting.remove(&id) {
                        let why = stanza
                            .child("error", JABBER_CLIENT)
                            .and_then(|e| e.elements().next().map(|c| c.local_name().to_owned()))
                            .unwrap_or_else(|| "error".into());
                        let _ = reply.send(Err(format!("the room refused it: {why}")));
                    }
                    return None;
                }
                if self.is_mine(from) {
                    // The room's reflection of a copy: its ids there.
                    if let Some((reply, _)) = self.waiting.remove(&id) {
                        let mut ids = vec![NetworkId::new("message-id", &id)];
                        ids.extend(
                            stanza
                                .elements()
                                .filter(|e| e.is("stanza-id", NS_SID))
                                .filter_map(|e| {
                                    Some(NetworkId {
                                        by: e.attr("by").map(str::to_owned),
                                        ..NetworkId::new("stanza-id", e.attr("id")?)
                                    })
                                }),
                        );
                        let _ = reply.send(Ok(ids));
                    }
                    return None;
                }
                // History, the room's subject on join and the room's own
                // notices (from its bare JID) are not someone speaking.
                if !from.contains('/')
                    || stanza.child("delay", NS_DELAY).is_some()
                    || (stanza.child("body", JABBER_CLIENT).is_none()
                        && stanza.child("subject", JABBER_CLIENT).is_some())
                {
                    return None;
                }
            }
            "presence" => {
                let room = bare(from).to_owned();
                let own = stanza.child("x", NS_MUC_USER).is_some_and(|x| {
                    x.elements()
                        .any(|s| s.is("status", NS_MUC_USER) && s.attr("code") == Some("110"))
                });
                if own {
                    if stanza.attr("type") == Some("error") {
                        tracing::warn!(room, "the relay could not join the room");
                    }
                    self.in_room.insert(room.to_ascii_lowercase());
                    // As the proxy does for a session: our join goes out first.
                    self.rooms.note(
                        &crate::event::EventKind::RoomJoin(crate::event::RoomChange {
                            room,
                            occupant: self.relay.jid.clone(),
                            nick: Some(self.relay.nick.clone()),
                            reason: None,
                        }),
                        Direction::Outbound,
                    );
                    return None;
                }
                if stanza.attr("type") == Some("error") && self.is_mine(from) {
                    tracing::warn!(room, "the relay could not join the room");
                    return None;
                }
                if !self.in_room.contains(&room.to_ascii_lowercase()) {
                    return None;
                }
            }
            _ => return None,
        }
        let reading = events::read(stanza, Direction::Inbound, &self.relay.jid, &self.rooms)?;
        self.rooms.note(&reading.kind, reading.direction);
        let at = now_ms();
        let event = Event {
            id: crate::event::event_id_text(new_event_uuid_at(at)),
            network: "xmpp".into(),
            direction: Direction::Inbound,
            session: link.session.clone(),
            timestamp: at,
            kind: reading.kind,
            tags: Vec::new(),
            attributes: reading.attributes,
            ids: reading.ids,
        };
        link.heard(event).await;
        None
    }

    /// A copy as a stanza; and whether it went to a room (which reflects it).
    fn write(&self, copy: &Copy) -> (String, bool) {
        let in_room = self
            .relay
            .rooms
            .iter()
            .any(|r| r.eq_ignore_ascii_case(&copy.to));
        let author = copy.author.as_deref();
        let text = if copy.emote {
            format!("/me {}", copy.body)
        } else {
            copy.body.clone()
        };
        let mut body = render(self.format, author, &copy.from_network, &text);
        let mut extra = String::new();
        if let Some(f) = &copy.relation {
            let pick = |kind: &str| {
                f.ids
                    .iter()
                    .find(|i| i.kind == kind)
                    .map(|i| i.value.clone())
            };
            match f.rel_type.as_str() {
                "edit" => {
                    if let Some(id) = pick("message-id").or_else(|| pick("origin-id")) {
                        extra.push_str(&format!(
                            "<replace xmlns='{NS_CORRECT}' id='{}'/>",
                            escape(&id, true)
                        ));
                    }
                }
                "retraction" => {
                    if let Some(id) = pick("stanza-id")
                        .or_else(|| pick("origin-id"))
                        .or_else(|| pick("message-id"))
                    {
                        extra.push_str(&format!(
                            "<retract xmlns='{NS_RETRACT}' id='{}'/><fallback xmlns='{NS_FALLBACK}' for='{NS_RETRACT}'/>",
                            escape(&id, true)
                        ));
                    }
                    body = render(
                        self.format,
                        author,
                        &copy.from_network,
                        "retracted a message",
                    );
                }
                "reply" => {
                    let quote = format!(
                        "> {}: {}\n",
                        f.author.as_deref().unwrap_or("someone"),
                        f.excerpt.as_deref().unwrap_or_default()
                    );
                    if let Some(id) = pick("stanza-id").or_else(|| pick("message-id")) {
                        extra.push_str(&format!(
                            "<reply xmlns='{NS_REPLY}' id='{}'/><fallback xmlns='{NS_FALLBACK}' for='{NS_REPLY}'><body start='0' end='{}'/></fallback>",
                            escape(&id, true),
                            quote.chars().count()
                        ));
                    }
                    body = format!("{quote}{body}");
                }
                "reaction" => {
                    body = render(
                        self.format,
                        author,
                        &copy.from_network,
                        &format!(
                            "reacted {} to: {}",
                            f.key.as_deref().unwrap_or(&copy.body),
                            f.excerpt.as_deref().unwrap_or_default()
                        ),
                    );
                }
                _ => {}
            }
        }
        let stanza = format!(
            "<message to='{}' type='{}' id='{}'><body>{}</body><origin-id xmlns='{NS_SID}' id='{}'/>{extra}</message>",
            escape(&xml_chars(&copy.to), true),
            if in_room { "groupchat" } else { "chat" },
            escape(&copy.id, true),
            escape(&xml_chars(&body), false),
            escape(&copy.id, true),
        );
        (stanza, in_room)
    }
}
