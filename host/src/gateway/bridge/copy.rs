//! A sent message becomes an event: the copy, outbound on its own network,
//! from the relay identity there, marked with its origin. The chain judges
//! it like anything else; then [`to_copy`] hands the relay what was
//! decided.

use std::borrow::Cow;
use std::sync::Arc;

use crate::event::bridge::{AUTHOR, BRIDGE, Copy, Follows, ORIGIN, Outgoing};
use crate::event::{
    Conversation, Direction, Event, EventKind, FinalVerdict, Message, NetworkId, Session,
};

/// The markup format each network carries.
fn markup_format(network: &str) -> Option<&'static str> {
    match network {
        "xmpp" => Some("xhtml-im"),
        "irc" => Some("irc-formatting"),
        "matrix" => Some("matrix-html"),
        _ => None,
    }
}

/// A network's name, without allocating for the ones imgate knows.
pub fn network_name(network: &str) -> Cow<'static, str> {
    match network {
        "xmpp" => Cow::Borrowed("xmpp"),
        "irc" => Cow::Borrowed("irc"),
        "matrix" => Cow::Borrowed("matrix"),
        other => Cow::Owned(other.to_owned()),
    }
}

/// Whether `to` is a room on `network`, as far as the name tells: an IRC
/// channel, or one of the rooms the relay was told to join.
pub fn is_room(network: &str, to: &str, rooms: &[String]) -> bool {
    match network {
        "irc" => to.starts_with(['#', '&', '+', '!']),
        _ => rooms.iter().any(|r| r.eq_ignore_ascii_case(to)),
    }
}

/// The id a relation on `network` points at, of those the message has.
fn pick_id<'a>(network: &str, rel_type: &str, ids: &'a [NetworkId]) -> Option<&'a str> {
    let of = |kind: &str| {
        ids.iter()
            .find(|i| i.kind == kind)
            .map(|i| i.value.as_str())
    };
    match (network, rel_type) {
        // XEP-0308 corrects by the message's own id; retractions
        // (XEP-0424) and replies (XEP-0461) in a room use the room's
        // stanza-id.
        ("xmpp", "edit") => of("message-id").or(of("origin-id")).or(of("stanza-id")),
        ("xmpp", _) => of("stanza-id").or(of("origin-id")).or(of("message-id")),
        _ => of("msgid").or(of("message-id")),
    }
}

/// The copy of `out`, as an event to judge. `follows` is the message its
/// relation points at, found on the destination (none: sent without it).
pub fn copy_event(
    out: &Outgoing,
    follows: Option<&Follows>,
    relay: &Arc<Session>,
    rooms: &[String],
    now_ms: u64,
) -> Event {
    let room = is_room(&out.network, &out.to, rooms);
    let markup = out
        .markup
        .as_ref()
        .filter(|(format, _)| Some(format.as_str()) == markup_format(&out.network))
        .map(|(_, text)| text.clone());
    let target = |rel: &str| {
        follows
            .filter(|f| f.rel_type == rel)
            .and_then(|f| pick_id(&out.network, rel, &f.ids))
            .map(str::to_owned)
    };
    let mut attributes = vec![
        (ORIGIN.to_owned(), out.origin.clone()),
        (BRIDGE.to_owned(), out.plugin.clone()),
    ];
    if let Some(author) = &out.author {
        attributes.push((AUTHOR.to_owned(), author.clone()));
    }
    Event {
        id: out.ticket.clone(),
        network: network_name(&out.network),
        direction: Direction::Outbound,
        session: relay.clone(),
        timestamp: now_ms,
        kind: EventKind::Message(Message {
            id: Some(out.ticket.clone()),
            sender: relay.user.clone(),
            recipient: out.to.clone(),
            conversation: if room {
                Conversation::Group(out.to.clone())
            } else {
                Conversation::Direct
            },
            body: out.body.clone(),
            markup,
            thread: None,
            reply_to: target("reply"),
            attachments: Vec::new(),
            encrypted: false,
            action: out.emote,
            edit_of: target("edit"),
            retraction_of: target("retraction"),
            subject: None,
        }),
        tags: Vec::new(),
        attributes,
        ids: match out.network.as_str() {
            "xmpp" => vec![NetworkId {
                kind: "message-id".into(),
                value: out.ticket.clone(),
                by: None,
            }],
            _ => Vec::new(),
        },
    }
}

/// What the relay writes, from the judged copy: its text after rewrites.
pub fn to_copy(
    event: &Event,
    verdict: &FinalVerdict,
    out: &Outgoing,
    origin_network: &str,
    follows: Option<Follows>,
) -> Copy {
    let body = match &verdict.action {
        crate::event::Action::Rewrite(text) => text.clone(),
        _ => event.body().unwrap_or_default().to_owned(),
    };
    Copy {
        id: event.id.clone(),
        to: out.to.clone(),
        markup: event
            .message()
            .and_then(|m| m.markup.clone())
            .filter(|_| !matches!(verdict.action, crate::event::Action::Rewrite(_))),
        body,
        author: out.author.clone(),
        from_network: origin_network.to_owned(),
        emote: out.emote,
        relation: follows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing(network: &str, to: &str) -> Outgoing {
        Outgoing {
            ticket: "t1".into(),
            origin: "o1".into(),
            plugin: "bridge".into(),
            network: network.into(),
            to: to.into(),
            body: "hello".into(),
            markup: Some(("xhtml-im".into(), "<b>hello</b>".into())),
            relation: None,
            author: Some("alice".into()),
            emote: false,
        }
    }

    fn relay() -> Arc<Session> {
        Arc::new(Session {
            id: "relay-irc".into(),
            user: "imgate".into(),
            peer: "relay".into(),
        })
    }

    #[test]
    fn a_copy_is_outbound_from_the_relay_and_names_its_origin() {
        let e = copy_event(&outgoing("irc", "#lobby"), None, &relay(), &[], 5);
        assert_eq!(e.id, "t1");
        assert_eq!(e.network, "irc");
        assert_eq!(e.direction, Direction::Outbound);
        assert_eq!(e.sender(), "imgate");
        assert_eq!(e.room(), Some("#lobby"));
        assert!(e.attributes.contains(&(ORIGIN.into(), "o1".into())));
        assert!(e.attributes.contains(&(AUTHOR.into(), "alice".into())));
        // XHTML-IM means nothing on IRC.
        assert_eq!(e.message().unwrap().markup, None);
        let x = copy_event(
            &outgoing("xmpp", "lobby@conf.example"),
            None,
            &relay(),
            &["lobby@conf.example".into()],
            5,
        );
        assert_eq!(x.room(), Some("lobby@conf.example"));
        assert_eq!(x.message().unwrap().markup.as_deref(), Some("<b>hello</b>"));
        let direct = copy_event(&outgoing("xmpp", "bob@example.net"), None, &relay(), &[], 5);
        assert_eq!(direct.recipient(), Some("bob@example.net"));
    }

    #[test]
    fn an_edit_points_at_the_message_id_and_a_reply_at_the_rooms_id() {
        let follows = |rel: &str| Follows {
            rel_type: rel.into(),
            ids: vec![
                NetworkId {
                    kind: "message-id".into(),
                    value: "m".into(),
                    by: None,
                },
                NetworkId {
                    kind: "stanza-id".into(),
                    value: "s".into(),
                    by: Some("lobby@conf.example".into()),
                },
            ],
            author: None,
            excerpt: None,
            key: None,
        };
        let rooms = ["lobby@conf.example".to_owned()];
        let out = outgoing("xmpp", "lobby@conf.example");
        let edit = copy_event(&out, Some(&follows("edit")), &relay(), &rooms, 5);
        assert_eq!(edit.message().unwrap().edit_of.as_deref(), Some("m"));
        let reply = copy_event(&out, Some(&follows("reply")), &relay(), &rooms, 5);
        assert_eq!(reply.message().unwrap().reply_to.as_deref(), Some("s"));
        assert_eq!(reply.message().unwrap().edit_of, None);
    }
}
