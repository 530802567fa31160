//! XMPP stanzas to neutral events, and verdicts back to XMPP: one function
//! per direction, no I/O.
//!
//! [`read`] says what a stanza means to the chain (or `None`: it passes
//! untouched). [`apply`] turns the chain's action into what the session
//! writes: the stanza as it was, rewritten, nothing, or a
//! `<policy-violation/>` error for the sender.

use super::rooms::Rooms;

use super::codec::{Element, JABBER_CLIENT, Node};
use crate::event::{
    Action, Attachment, Conversation, Direction, EventKind, FileOffer, Message, NetworkId,
    Presence, Reaction, RoomChange, Subject,
};

pub const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
const NS_XHTML_IM: &str = "http://jabber.org/protocol/xhtml-im";
const NS_XHTML: &str = "http://www.w3.org/1999/xhtml";
const NS_CORRECT: &str = "urn:xmpp:message-correct:0";
const NS_RETRACT: &str = "urn:xmpp:message-retract:1";
const NS_RETRACT_0: &str = "urn:xmpp:message-retract:0";
const NS_FASTEN: &str = "urn:xmpp:fasten:0";
const NS_OMEMO_LEGACY: &str = "eu.siacs.conversations.axolotl";
const NS_OMEMO: &str = "urn:xmpp:omemo:2";
const NS_OPENPGP: &str = "urn:xmpp:openpgp:0";
const NS_EME: &str = "urn:xmpp:eme:0";
const NS_CARBONS: &str = "urn:xmpp:carbons:2";
const NS_FORWARD: &str = "urn:xmpp:forward:0";
const NS_OOB: &str = "jabber:x:oob";
const NS_REPLY: &str = "urn:xmpp:reply:0";
const NS_MUC: &str = "http://jabber.org/protocol/muc";
const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
const NS_UPLOAD: &str = "urn:xmpp:http:upload:0";
const NS_JINGLE: &str = "urn:xmpp:jingle:1";
const NS_JINGLE_FT: &str = "urn:xmpp:jingle:apps:file-transfer:5";
const NS_REACTIONS: &str = "urn:xmpp:reactions:0";
const NS_SID: &str = "urn:xmpp:sid:0";

/// Namespaces of a message's children that say nothing a user wrote:
/// chat states, receipts, markers, hints, ids, delays, archive results. A
/// body-less message with any other child is judged, so content that
/// rides in an extension does not pass unread.
const SIGNAL_NAMESPACES: [&str; 9] = [
    "http://jabber.org/protocol/chatstates",
    "urn:xmpp:receipts",
    "urn:xmpp:chat-markers:0",
    "urn:xmpp:hints",
    NS_SID,
    "urn:xmpp:delay",
    "jabber:x:event",
    "urn:xmpp:mam:2",
    "urn:xmpp:sm:3",
];

/// The JID without its resource.
pub fn bare(jid: &str) -> &str {
    jid.split_once('/').map_or(jid, |(b, _)| b)
}

fn resource(jid: &str) -> Option<&str> {
    jid.split_once('/').map(|(_, r)| r)
}

/// Which carbon copy (XEP-0280) a message arrived in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Carbon {
    Sent,
    Received,
}

/// How a message is known across sessions, as the stem's text (the
/// session hashes it into an `adapters::Seen`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SeenAs {
    #[default]
    Alone,
    /// Direction, sender, recipient and stanza id: the original and its
    /// carbons (XEP-0280) are one message.
    Named(String),
    /// Sent to a room (room and stanza id): its copies come back to the
    /// local occupants, this session included.
    Sent(String),
    /// A room's copy of a message (room and stanza id, which MUC keeps).
    Copy(String),
}

/// What a stanza means to the chain.
#[derive(Debug)]
pub struct Reading {
    pub direction: Direction,
    pub kind: EventKind,
    pub attributes: Vec<(String, String)>,
    /// Set when the event came out of a carbon copy.
    pub carbon: Option<Carbon>,
    /// How other local sessions meet the same message, so it is judged
    /// once (see `adapters::judgments`).
    pub seen: SeenAs,
    /// The message's own ids: `message-id`, `origin-id`, `stanza-id`.
    pub ids: Vec<NetworkId>,
}

/// A message stanza's ids (RFC 6120 `id`, XEP-0359 origin-id and stanza-id).
fn ids_of(stanza: &Element) -> Vec<NetworkId> {
    let mut ids: Vec<NetworkId> = stanza
        .attr("id")
        .map(|id| NetworkId::new("message-id", id))
        .into_iter()
        .collect();
    for e in stanza.elements().filter(|e| e.ns == NS_SID) {
        let kind = match e.local_name() {
            "origin-id" => "origin-id",
            "stanza-id" => "stanza-id",
            _ => continue,
        };
        if let Some(id) = e.attr("id") {
            ids.push(NetworkId {
                by: e.attr("by").map(str::to_owned),
                ..NetworkId::new(kind, id)
            });
        }
    }
    ids
}

/// What `stanza`, travelling `direction` in the session of `user` (bare
/// JID), means to the chain; `None` when it is not an event.
pub fn read(stanza: &Element, direction: Direction, user: &str, rooms: &Rooms) -> Option<Reading> {
    if stanza.ns != JABBER_CLIENT {
        return None;
    }
    match stanza.local_name() {
        "message" => read_message(stanza, direction, user),
        "presence" => read_presence(stanza, direction, user, rooms),
        "iq" => read_iq(stanza, direction, user),
        _ => None,
    }
}

fn sender_of(stanza: &Element, user: &str) -> String {
    stanza.attr("from").map_or(user, bare).to_owned()
}

fn recipient_of(stanza: &Element, user: &str) -> String {
    stanza.attr("to").map_or(user, bare).to_owned()
}

/// The message a carbon (XEP-0280) copies, and which kind of carbon.
fn carbon_inner(stanza: &Element) -> Option<(Carbon, &Element)> {
    let (carbon, wrapper) = if let Some(w) = stanza.child("sent", NS_CARBONS) {
        (Carbon::Sent, w)
    } else {
        (Carbon::Received, stanza.child("received", NS_CARBONS)?)
    };
    let inner = wrapper
        .child("forwarded", NS_FORWARD)?
        .child("message", JABBER_CLIENT)?;
    Some((carbon, inner))
}

fn read_message(stanza: &Element, direction: Direction, user: &str) -> Option<Reading> {
    if stanza.attr("type") == Some("error") {
        return None;
    }
    if let Some((carbon, inner)) = carbon_inner(stanza) {
        // A carbon comes from our own server; the copy inside is what was
        // really said, in the direction the user's other client saw it.
        let direction = match carbon {
            Carbon::Sent => Direction::Outbound,
            Carbon::Received => Direction::Inbound,
        };
        let mut reading = read_message(inner, direction, user)?;
        reading.carbon = Some(carbon);
        reading.attributes.push((
            "xmpp.carbon".into(),
            match carbon {
                Carbon::Sent => "sent",
                Carbon::Received => "received",
            }
            .into(),
        ));
        return Some(reading);
    }
    let kind = stanza.attr("type").unwrap_or("normal");
    let body = stanza.child("body", JABBER_CLIENT).map(Element::text);
    let edit_of = stanza
        .child("replace", NS_CORRECT)
        .and_then(|r| r.attr("id"))
        .map(str::to_owned);
    let retraction_of = stanza
        .child("retract", NS_RETRACT)
        .and_then(|r| r.attr("id"))
        .or_else(|| {
            stanza
                .child("apply-to", NS_FASTEN)
                .filter(|a| a.child("retract", NS_RETRACT_0).is_some())
                .and_then(|a| a.attr("id"))
        })
        .map(str::to_owned);
    let encrypted = stanza.child("encrypted", NS_OMEMO_LEGACY).is_some()
        || stanza.child("encrypted", NS_OMEMO).is_some()
        || stanza.child("openpgp", NS_OPENPGP).is_some()
        || stanza.child("encryption", NS_EME).is_some();
    let attachments: Vec<Attachment> = stanza
        .elements()
        .filter(|e| e.is("x", NS_OOB))
        .filter_map(|x| {
            let url = x.child("url", NS_OOB)?.text();
            Some(Attachment {
                url,
                name: x.child("desc", NS_OOB).map(Element::text),
                media_type: None,
                size: None,
            })
        })
        .collect();
    let markup = stanza
        .child("html", NS_XHTML_IM)
        .and_then(|h| h.child("body", NS_XHTML))
        .map(Element::inner_xml);
    let subject = stanza.child("subject", JABBER_CLIENT).map(Element::text);
    let reactions = stanza.child("reactions", NS_REACTIONS);
    // Content in an extension this reader does not know is still content.
    let unknown_content = stanza
        .elements()
        .any(|e| e.ns != JABBER_CLIENT && !SIGNAL_NAMESPACES.contains(&e.ns.as_str()));
    if body.is_none()
        && edit_of.is_none()
        && retraction_of.is_none()
        && !encrypted
        && attachments.is_empty()
        && markup.is_none()
        && subject.is_none()
        && reactions.is_none()
        && !unknown_content
    {
        // Chat states, receipts, markers: not something said.
        return None;
    }
    let ids = ids_of(stanza);
    let (sender, recipient, conversation) = if kind == "groupchat" {
        match direction {
            // In a room the occupant (room@service/nick) is who speaks.
            Direction::Inbound => {
                let from = stanza.attr("from").unwrap_or_default();
                (
                    from.to_owned(),
                    user.to_owned(),
                    Conversation::Group(bare(from).to_owned()),
                )
            }
            Direction::Outbound => {
                let room = recipient_of(stanza, user);
                (user.to_owned(), room.clone(), Conversation::Group(room))
            }
        }
    } else {
        (
            sender_of(stanza, user),
            recipient_of(stanza, user),
            Conversation::Direct,
        )
    };
    // A reaction (XEP-0444) or a room's new subject, when that is all the
    // message says.
    if body.is_none() && !encrypted {
        if let Some(reactions) = reactions {
            let reaction = Reaction {
                sender,
                recipient,
                conversation,
                target: reactions.attr("id").unwrap_or_default().to_owned(),
                keys: reactions
                    .elements()
                    .filter(|e| e.is("reaction", NS_REACTIONS))
                    .map(Element::text)
                    .collect(),
            };
            return Some(Reading {
                direction,
                kind: EventKind::Reaction(reaction),
                attributes: vec![("xmpp.type".into(), kind.to_owned())],
                carbon: None,
                seen: SeenAs::Alone,
                ids,
            });
        }
        if let (Some(text), Conversation::Group(room)) = (&subject, &conversation) {
            return Some(Reading {
                direction,
                kind: EventKind::Subject(Subject {
                    sender,
                    room: room.clone(),
                    text: text.clone(),
                }),
                attributes: vec![("xmpp.type".into(), kind.to_owned())],
                carbon: None,
                seen: SeenAs::Alone,
                ids,
            });
        }
    }
    let body = if encrypted {
        String::new()
    } else {
        body.unwrap_or_default()
    };
    let id = stanza.attr("id").map(str::to_owned);
    let seen = match (&conversation, direction) {
        (Conversation::Group(room), Direction::Outbound) => {
            SeenAs::Sent(format!("{room}|{}", id.as_deref().unwrap_or_default()))
        }
        (Conversation::Group(room), Direction::Inbound) => {
            SeenAs::Copy(format!("{room}|{}", id.as_deref().unwrap_or_default()))
        }
        (Conversation::Direct, _) => match &id {
            Some(id) => SeenAs::Named(format!(
                "{}|{}|{}|{id}",
                direction.name(),
                sender_of(stanza, user),
                recipient_of(stanza, user)
            )),
            None => SeenAs::Alone,
        },
    };
    let message = Message {
        id,
        action: body.starts_with("/me "),
        sender,
        recipient,
        conversation,
        body,
        markup,
        thread: stanza.child("thread", JABBER_CLIENT).map(Element::text),
        reply_to: stanza
            .child("reply", NS_REPLY)
            .and_then(|r| r.attr("id"))
            .map(str::to_owned),
        attachments,
        encrypted,
        edit_of,
        retraction_of,
        subject,
    };
    Some(Reading {
        direction,
        kind: EventKind::Message(message),
        attributes: vec![("xmpp.type".into(), kind.to_owned())],
        carbon: None,
        seen,
        ids,
    })
}

fn read_presence(
    stanza: &Element,
    direction: Direction,
    user: &str,
    rooms: &Rooms,
) -> Option<Reading> {
    let available = match stanza.attr("type") {
        None => true,
        Some("unavailable") => false,
        // Subscriptions, probes and errors pass untouched.
        _ => return None,
    };
    let status = stanza.child("status", JABBER_CLIENT).map(Element::text);
    let room_event = |room: &str, occupant: String, nick: Option<&str>| {
        let change = RoomChange {
            room: room.to_owned(),
            occupant,
            nick: nick.map(str::to_owned),
            reason: if available { None } else { status.clone() },
        };
        Some(Reading {
            direction,
            kind: if available {
                EventKind::RoomJoin(change)
            } else {
                EventKind::RoomLeave(change)
            },
            attributes: Vec::new(),
            carbon: None,
            seen: SeenAs::Alone,
            ids: Vec::new(),
        })
    };
    match direction {
        Direction::Outbound => {
            if let Some(to) = stanza.attr("to") {
                let room = bare(to);
                if available && stanza.child("x", NS_MUC).is_some() {
                    return room_event(room, user.to_owned(), resource(to));
                }
                if rooms.is_joined(room) {
                    if available {
                        // A status change inside a room.
                        return None;
                    }
                    return room_event(room, user.to_owned(), resource(to));
                }
            }
        }
        Direction::Inbound => {
            if let Some(x) = stanza.child("x", NS_MUC_USER) {
                let from = stanza.attr("from").unwrap_or_default();
                let room = bare(from);
                let nick = resource(from);
                let is_self = x
                    .elements()
                    .any(|s| s.is("status", NS_MUC_USER) && s.attr("code") == Some("110"));
                let known = nick.is_some_and(|n| rooms.has_occupant(room, n));
                // Our own join was judged on the way out; an occupant already
                // seen is only changing status.
                if is_self
                    || (available && known)
                    || (!available && !known && rooms.is_joined(room))
                {
                    return None;
                }
                let occupant = x
                    .child("item", NS_MUC_USER)
                    .and_then(|i| i.attr("jid"))
                    .map_or_else(|| from.to_owned(), |j| bare(j).to_owned());
                return room_event(room, occupant, nick);
            }
        }
    }
    Some(Reading {
        direction,
        kind: EventKind::Presence(Presence {
            sender: sender_of(stanza, user),
            recipient: stanza.attr("to").map(|t| bare(t).to_owned()),
            available,
            show: stanza.child("show", JABBER_CLIENT).map(Element::text),
            status,
        }),
        attributes: Vec::new(),
        carbon: None,
        seen: SeenAs::Alone,
        ids: Vec::new(),
    })
}

fn read_iq(stanza: &Element, direction: Direction, user: &str) -> Option<Reading> {
    let id = stanza.attr("id").map(str::to_owned);
    let offer = match stanza.attr("type") {
        // XEP-0363: asking the upload service for a slot.
        Some("get") => {
            let request = stanza.child("request", NS_UPLOAD)?;
            FileOffer {
                id,
                sender: sender_of(stanza, user),
                recipient: recipient_of(stanza, user),
                name: request.attr("filename")?.to_owned(),
                size: request.attr("size").and_then(|s| s.parse().ok()),
                media_type: request.attr("content-type").map(str::to_owned),
            }
        }
        // Jingle file transfer (XEP-0234): offering a file to a peer.
        Some("set") => {
            let jingle = stanza.child("jingle", NS_JINGLE)?;
            if jingle.attr("action") != Some("session-initiate") {
                return None;
            }
            let file = jingle
                .elements()
                .filter(|c| c.local_name() == "content")
                .find_map(|c| c.child("description", NS_JINGLE_FT))?
                .child("file", NS_JINGLE_FT)?;
            FileOffer {
                id,
                sender: sender_of(stanza, user),
                recipient: recipient_of(stanza, user),
                name: file
                    .child("name", NS_JINGLE_FT)
                    .map(Element::text)
                    .unwrap_or_default(),
                size: file
                    .child("size", NS_JINGLE_FT)
                    .and_then(|s| s.text().trim().parse().ok()),
                media_type: file.child("media-type", NS_JINGLE_FT).map(Element::text),
            }
        }
        _ => return None,
    };
    Some(Reading {
        direction,
        kind: EventKind::FileOffer(offer),
        attributes: Vec::new(),
        carbon: None,
        seen: SeenAs::Alone,
        ids: Vec::new(),
    })
}

/// What the session writes after the verdict.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Pass the stanza on as it arrived.
    Forward,
    /// Pass this instead.
    Rewritten(String),
    /// Nothing goes anywhere.
    Drop,
    /// Nothing goes on; this error goes back towards the sender.
    Bounce(String),
}

/// Applies the chain's `action` to `stanza`. `user_jid` is the session's
/// full JID: outbound bounces are addressed to it.
pub fn apply(
    stanza: &Element,
    direction: Direction,
    carbon: Option<Carbon>,
    action: &Action,
    user_jid: &str,
) -> Outcome {
    apply_removing(stanza, direction, carbon, action, user_jid, &[])
}

/// [`apply`], with the attachments (by URL) the chain took out of a
/// rewritten message removed from it too.
pub fn apply_removing(
    stanza: &Element,
    direction: Direction,
    carbon: Option<Carbon>,
    action: &Action,
    user_jid: &str,
    removed: &[String],
) -> Outcome {
    match action {
        Action::Allow => Outcome::Forward,
        // A held message is not delivered; the hold queue keeps it.
        Action::Drop | Action::Hold(_) => Outcome::Drop,
        Action::Rewrite(body) => match rewrite(stanza, body, removed) {
            Some(xml) => Outcome::Rewritten(xml),
            None => Outcome::Forward,
        },
        Action::Block(reason) => {
            // A carbon is our server's copy: there is no one to tell.
            if carbon.is_some() {
                return Outcome::Drop;
            }
            match bounce(stanza, reason, direction, user_jid) {
                Some(xml) => Outcome::Bounce(xml),
                None => Outcome::Drop,
            }
        }
    }
}

/// The stanza with its text replaced — the body, and the XHTML-IM body
/// with it, so a client never shows the old text; a room's subject when
/// that is what it says — and the `removed` attachments (XEP-0066 OOB
/// references) taken out; inside a carbon, the copied message's.
fn rewrite(stanza: &Element, body: &str, removed: &[String]) -> Option<String> {
    fn in_place(message: &mut Element, body: &str, removed: &[String]) {
        let subject_only = message.child("body", JABBER_CLIENT).is_none()
            && message.child("subject", JABBER_CLIENT).is_some();
        if subject_only {
            if let Some(s) = message.child_mut("subject", JABBER_CLIENT) {
                s.set_text(body);
            }
            return;
        }
        match message.child_mut("body", JABBER_CLIENT) {
            Some(b) => b.set_text(body),
            None => message.children.push(Node::Element(
                Element::new("body", JABBER_CLIENT).with_text(body),
            )),
        }
        if let Some(html) = message.child_mut("html", NS_XHTML_IM)
            && let Some(xbody) = html.child_mut("body", NS_XHTML)
        {
            xbody.set_text(body);
        }
        if !removed.is_empty() {
            message.children.retain(|n| match n {
                Node::Element(x) if x.is("x", NS_OOB) => !x
                    .child("url", NS_OOB)
                    .is_some_and(|u| removed.contains(&u.text())),
                _ => true,
            });
        }
    }
    if stanza.local_name() != "message" {
        return None;
    }
    let mut out = stanza.clone();
    match carbon_inner_mut(&mut out) {
        Some(inner) => in_place(inner, body, removed),
        None => in_place(&mut out, body, removed),
    }
    Some(out.to_xml())
}

/// [`carbon_inner`], for changing it.
fn carbon_inner_mut(stanza: &mut Element) -> Option<&mut Element> {
    let wrapper = if stanza.child("sent", NS_CARBONS).is_some() {
        "sent"
    } else {
        "received"
    };
    stanza
        .child_mut(wrapper, NS_CARBONS)?
        .child_mut("forwarded", NS_FORWARD)?
        .child_mut("message", JABBER_CLIENT)
}

/// The error stanza telling the sender of `stanza` it was refused; `None`
/// for errors and results, which are never bounced (RFC 6120 §8.3.1).
pub fn bounce(
    stanza: &Element,
    reason: &str,
    direction: Direction,
    user_jid: &str,
) -> Option<String> {
    let ty = stanza.attr("type");
    let never = match stanza.local_name() {
        "iq" => matches!(ty, Some("result" | "error")),
        _ => ty == Some("error"),
    };
    if never || stanza.ns != JABBER_CLIENT {
        return None;
    }
    let mut error = Element::new(stanza.local_name(), JABBER_CLIENT).with_attr("type", "error");
    if let Some(id) = stanza.attr("id") {
        error.set_attr("id", id);
    }
    match direction {
        // To our client, as if from whom it wrote to.
        Direction::Outbound => {
            let from = stanza.attr("to").map(str::to_owned).unwrap_or_else(|| {
                bare(user_jid)
                    .split_once('@')
                    .map_or(bare(user_jid), |(_, d)| d)
                    .to_owned()
            });
            error.set_attr("from", &from);
            error.set_attr("to", user_jid);
        }
        // Back through our server to the remote sender; the server stamps
        // `from` with this session's JID.
        Direction::Inbound => {
            let to = stanza.attr("from")?;
            error.set_attr("to", to);
        }
    }
    let mut condition = Element::new("error", JABBER_CLIENT)
        .with_attr("type", "modify")
        .with_child(Element::new("policy-violation", NS_STANZAS).with_attr("xmlns", NS_STANZAS));
    if !reason.is_empty() {
        condition = condition.with_child(
            Element::new("text", NS_STANZAS)
                .with_attr("xmlns", NS_STANZAS)
                .with_attr("xml:lang", "en")
                .with_text(reason),
        );
    }
    // Keep what identifies a MUC join, so the client matches the error.
    if stanza.local_name() == "presence"
        && let Some(x) = stanza.child("x", NS_MUC)
    {
        error.children.push(Node::Element(x.clone()));
    }
    error.children.push(Node::Element(condition));
    Some(error.to_xml())
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str = "alice@corp.example";
    const FULL: &str = "alice@corp.example/laptop";

    fn parse(xml: &str) -> Element {
        Element::parse(xml.as_bytes()).unwrap()
    }

    fn message(r: &Reading) -> &Message {
        match &r.kind {
            EventKind::Message(m) => m,
            other => panic!("not a message: {other:?}"),
        }
    }

    #[test]
    fn a_chat_message_carries_every_field() {
        let s = parse(
            "<message to='bob@corp.example/phone' id='m1' type='chat'>\
             <body>/me waves</body><thread>t1</thread>\
             <html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'><p>waves</p></body></html>\
             <replace id='m0' xmlns='urn:xmpp:message-correct:0'/>\
             <reply to='bob@corp.example' id='m-1' xmlns='urn:xmpp:reply:0'/>\
             <x xmlns='jabber:x:oob'><url>https://x/y.png</url><desc>y</desc></x></message>",
        );
        let r = read(&s, Direction::Outbound, USER, &Rooms::default()).unwrap();
        let m = message(&r);
        assert_eq!(m.sender, USER);
        assert_eq!(m.recipient, "bob@corp.example");
        assert_eq!(m.body, "/me waves");
        assert!(m.action);
        assert_eq!(m.thread.as_deref(), Some("t1"));
        assert_eq!(m.markup.as_deref(), Some("<p>waves</p>"));
        assert_eq!(m.edit_of.as_deref(), Some("m0"));
        assert_eq!(m.reply_to.as_deref(), Some("m-1"));
        assert_eq!(m.attachments[0].url, "https://x/y.png");
        assert_eq!(m.conversation, Conversation::Direct);
        assert_eq!(
            r.seen,
            SeenAs::Named("outbound|alice@corp.example|bob@corp.example|m1".into())
        );
    }

    #[test]
    fn chat_states_are_not_events_but_retractions_and_encrypted_are() {
        let rooms = Rooms::default();
        let state = parse(
            "<message to='b@x'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
        );
        assert!(read(&state, Direction::Outbound, USER, &rooms).is_none());
        let retract = parse(
            "<message to='b@x'><retract id='m9' xmlns='urn:xmpp:message-retract:1'/></message>",
        );
        let r = read(&retract, Direction::Outbound, USER, &rooms).unwrap();
        assert_eq!(message(&r).retraction_of.as_deref(), Some("m9"));
        let omemo = parse(
            "<message to='b@x'><encrypted xmlns='eu.siacs.conversations.axolotl'><payload>abc</payload></encrypted><body>I sent you an OMEMO encrypted message</body></message>",
        );
        let r = read(&omemo, Direction::Outbound, USER, &rooms).unwrap();
        assert!(message(&r).encrypted);
        assert_eq!(message(&r).body, "");
        let error = parse("<message type='error' from='b@x'><body>x</body></message>");
        assert!(read(&error, Direction::Inbound, USER, &rooms).is_none());
    }

    #[test]
    fn reactions_subjects_and_content_in_extensions_are_events() {
        let rooms = Rooms::default();
        let reaction = parse(
            "<message to='room@muc.x' type='groupchat' id='r1'><reactions id='m7' xmlns='urn:xmpp:reactions:0'><reaction>👍</reaction><reaction>🎉</reaction></reactions><store xmlns='urn:xmpp:hints'/></message>",
        );
        let r = read(&reaction, Direction::Outbound, USER, &rooms).unwrap();
        let EventKind::Reaction(re) = &r.kind else {
            panic!("{:?}", r.kind)
        };
        assert_eq!(re.target, "m7");
        assert_eq!(re.keys, ["👍", "🎉"]);
        assert_eq!(re.conversation, Conversation::Group("room@muc.x".into()));
        assert_eq!(r.ids, [NetworkId::new("message-id", "r1")]);

        let subject = parse(
            "<message from='room@muc.x/bob' to='alice@corp.example/l' type='groupchat'><subject>Q3 numbers</subject></message>",
        );
        let r = read(&subject, Direction::Inbound, USER, &rooms).unwrap();
        let EventKind::Subject(su) = &r.kind else {
            panic!("{:?}", r.kind)
        };
        assert_eq!(
            (su.room.as_str(), su.text.as_str(), su.sender.as_str()),
            ("room@muc.x", "Q3 numbers", "room@muc.x/bob")
        );

        // Rich text with no plain body, or content in an unknown extension,
        // is judged as a message; hints and ids alone are not.
        let html = parse(
            "<message to='b@x'><html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'><p>secret</p></body></html></message>",
        );
        let r = read(&html, Direction::Outbound, USER, &rooms).unwrap();
        assert!(message(&r).markup.as_deref().unwrap().contains("secret"));
        let poll = parse(
            "<message to='b@x'><poll xmlns='urn:example:poll'><q>secret?</q></poll></message>",
        );
        assert!(read(&poll, Direction::Outbound, USER, &rooms).is_some());
        let hints = parse(
            "<message to='b@x'><no-store xmlns='urn:xmpp:hints'/><origin-id xmlns='urn:xmpp:sid:0' id='o1'/></message>",
        );
        assert!(read(&hints, Direction::Outbound, USER, &rooms).is_none());
        // A chat message's subject is one of its texts.
        let chat = parse(
            "<message to='b@x' type='chat'><subject>re: plan</subject><body>hi</body></message>",
        );
        let r = read(&chat, Direction::Outbound, USER, &rooms).unwrap();
        assert_eq!(message(&r).subject.as_deref(), Some("re: plan"));
    }

    #[test]
    fn a_rewrite_removes_attachments_and_a_subject_is_rewritten_as_a_subject() {
        let s = parse(
            "<message to='b@x' type='chat'><body>see https://files.x/a.pdf</body><x xmlns='jabber:x:oob'><url>https://files.x/a.pdf</url></x><x xmlns='jabber:x:oob'><url>https://files.x/b.png</url></x></message>",
        );
        let Outcome::Rewritten(xml) = apply_removing(
            &s,
            Direction::Outbound,
            None,
            &Action::Rewrite("see".into()),
            FULL,
            &["https://files.x/a.pdf".into()],
        ) else {
            panic!()
        };
        assert!(!xml.contains("a.pdf"), "{xml}");
        assert!(
            xml.contains("b.png") && xml.contains("<body>see</body>"),
            "{xml}"
        );
        let subject =
            parse("<message to='room@muc.x' type='groupchat'><subject>old</subject></message>");
        let Outcome::Rewritten(xml) = apply(
            &subject,
            Direction::Outbound,
            None,
            &Action::Rewrite("new".into()),
            FULL,
        ) else {
            panic!()
        };
        assert!(
            xml.contains("<subject>new</subject>") && !xml.contains("<body"),
            "{xml}"
        );
    }

    #[test]
    fn a_message_carries_its_network_ids() {
        let rooms = Rooms::default();
        let s = parse(
            "<message from='room@muc.x/bob' to='alice@corp.example/l' type='groupchat' id='c1'><body>hi</body><origin-id xmlns='urn:xmpp:sid:0' id='o1'/><stanza-id xmlns='urn:xmpp:sid:0' id='s1' by='room@muc.x'/></message>",
        );
        let r = read(&s, Direction::Inbound, USER, &rooms).unwrap();
        assert_eq!(
            r.ids,
            [
                NetworkId::new("message-id", "c1"),
                NetworkId::new("origin-id", "o1"),
                NetworkId {
                    by: Some("room@muc.x".into()),
                    ..NetworkId::new("stanza-id", "s1")
                },
            ]
        );
    }

    #[test]
    fn groupchat_is_a_group_conversation_spoken_by_the_occupant() {
        let s = parse(
            "<message from='room@muc.x/bob' to='alice@corp.example/laptop' type='groupchat'><body>hi</body></message>",
        );
        let r = read(&s, Direction::Inbound, USER, &Rooms::default()).unwrap();
        let m = message(&r);
        assert_eq!(m.sender, "room@muc.x/bob");
        assert_eq!(m.conversation, Conversation::Group("room@muc.x".into()));
    }

    #[test]
    fn carbons_are_unwrapped_in_the_direction_they_were_said() {
        let s = parse(
            "<message from='alice@corp.example' to='alice@corp.example/laptop'>\
             <sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>\
             <message xmlns='jabber:client' from='alice@corp.example/phone' to='bob@x' id='c1' type='chat'><body>secret plan</body></message>\
             </forwarded></sent></message>",
        );
        let r = read(&s, Direction::Inbound, USER, &Rooms::default()).unwrap();
        assert_eq!(r.direction, Direction::Outbound);
        assert_eq!(r.carbon, Some(Carbon::Sent));
        assert_eq!(message(&r).body, "secret plan");
        // The same key as the original had when alice's phone sent it.
        assert_eq!(
            r.seen,
            SeenAs::Named("outbound|alice@corp.example|bob@x|c1".into())
        );
        let Outcome::Rewritten(xml) = apply(
            &s,
            r.direction,
            r.carbon,
            &Action::Rewrite("[redacted]".into()),
            FULL,
        ) else {
            panic!()
        };
        assert!(
            xml.contains("<body>[redacted]</body>") && !xml.contains("secret"),
            "{xml}"
        );
        assert_eq!(
            apply(&s, r.direction, r.carbon, &Action::Block("no".into()), FULL),
            Outcome::Drop
        );
    }

    #[test]
    fn muc_join_and_leave() {
        let mut rooms = Rooms::default();
        let join = parse(
            "<presence to='room@muc.x/alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>",
        );
        let r = read(&join, Direction::Outbound, USER, &rooms).unwrap();
        assert!(
            matches!(&r.kind, EventKind::RoomJoin(c) if c.room == "room@muc.x" && c.nick.as_deref() == Some("alice"))
        );
        rooms.note(&r.kind, r.direction);
        let bob = parse(
            "<presence from='room@muc.x/bob'><x xmlns='http://jabber.org/protocol/muc#user'><item jid='bob@x/p' role='participant'/></x></presence>",
        );
        let r = read(&bob, Direction::Inbound, USER, &rooms).unwrap();
        assert!(matches!(&r.kind, EventKind::RoomJoin(c) if c.occupant == "bob@x"));
        rooms.note(&r.kind, r.direction);
        assert!(
            read(&bob, Direction::Inbound, USER, &rooms).is_none(),
            "a status update is not a re-join"
        );
        let leave = parse(
            "<presence to='room@muc.x/alice' type='unavailable'><status>bye</status></presence>",
        );
        let r = read(&leave, Direction::Outbound, USER, &rooms).unwrap();
        assert!(matches!(&r.kind, EventKind::RoomLeave(c) if c.reason.as_deref() == Some("bye")));
    }

    #[test]
    fn file_offers_from_upload_slots_and_jingle() {
        let rooms = Rooms::default();
        let upload = parse(
            "<iq type='get' id='u1' to='upload.x'><request xmlns='urn:xmpp:http:upload:0' filename='plan.pdf' size='1234' content-type='application/pdf'/></iq>",
        );
        let r = read(&upload, Direction::Outbound, USER, &rooms).unwrap();
        let EventKind::FileOffer(f) = &r.kind else {
            panic!()
        };
        assert_eq!((f.name.as_str(), f.size), ("plan.pdf", Some(1234)));
        let jingle = parse(
            "<iq type='set' id='j1' to='bob@x/p'><jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='s'><content creator='initiator' name='f'><description xmlns='urn:xmpp:jingle:apps:file-transfer:5'><file><name>a.zip</name><size>99</size></file></description></content></jingle></iq>",
        );
        let r = read(&jingle, Direction::Outbound, USER, &rooms).unwrap();
        let EventKind::FileOffer(f) = &r.kind else {
            panic!()
        };
        assert_eq!((f.name.as_str(), f.size), ("a.zip", Some(99)));
        let Outcome::Bounce(err) = apply(
            &jingle,
            r.direction,
            r.carbon,
            &Action::Block("no files".into()),
            FULL,
        ) else {
            panic!()
        };
        let err = parse(&err);
        assert_eq!(
            (err.attr("type"), err.attr("id"), err.attr("from")),
            (Some("error"), Some("j1"), Some("bob@x/p"))
        );
    }

    #[test]
    fn blocks_bounce_policy_violation_but_never_errors_or_results() {
        let s = parse("<message to='bob@x' id='m1' type='chat'><body>bad</body></message>");
        let r = read(&s, Direction::Outbound, USER, &Rooms::default()).unwrap();
        let Outcome::Bounce(xml) = apply(
            &s,
            r.direction,
            r.carbon,
            &Action::Block("Message blocked: bad".into()),
            FULL,
        ) else {
            panic!()
        };
        let e = parse(&xml);
        assert_eq!(e.attr("to"), Some(FULL));
        assert_eq!(e.attr("from"), Some("bob@x"));
        let cond = e.child("error", JABBER_CLIENT).unwrap();
        assert!(cond.child("policy-violation", NS_STANZAS).is_some());
        assert_eq!(
            cond.child("text", NS_STANZAS).unwrap().text(),
            "Message blocked: bad"
        );
        // Inbound: back to the remote sender.
        let s = parse(
            "<message from='eve@evil/x' to='alice@corp.example' id='e1' type='chat'><body>bad</body></message>",
        );
        let r = read(&s, Direction::Inbound, USER, &Rooms::default()).unwrap();
        let Outcome::Bounce(xml) =
            apply(&s, r.direction, r.carbon, &Action::Block("no".into()), FULL)
        else {
            panic!()
        };
        assert_eq!(parse(&xml).attr("to"), Some("eve@evil/x"));
        let result = parse("<iq type='result' id='1'/>");
        assert!(bounce(&result, "x", Direction::Outbound, FULL).is_none());
    }

    #[test]
    fn a_rewrite_replaces_body_and_markup() {
        let s = parse(
            "<message to='b@x' type='chat'><body>card 4111</body><html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'><b>card 4111</b></body></html></message>",
        );
        let r = read(&s, Direction::Outbound, USER, &Rooms::default()).unwrap();
        let Outcome::Rewritten(xml) = apply(
            &s,
            r.direction,
            r.carbon,
            &Action::Rewrite("card <hidden>".into()),
            FULL,
        ) else {
            panic!()
        };
        assert!(!xml.contains("4111"), "{xml}");
        let again = parse(&xml);
        assert_eq!(
            again.child("body", JABBER_CLIENT).unwrap().text(),
            "card <hidden>"
        );
    }
}
