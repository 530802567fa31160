//! Contract 0.1's boundary: neutral types into its records as a plugin
//! asks for them, and its verdicts back out with their meaning kept.
//!
//! 0.1's closed `kind` cannot name reactions and subjects; the runtime
//! never shows those to a 0.1 plugin (`Kind::in_v0_1`). A `hold` has no
//! 0.1 word: a 0.1 observer sees it as the block it is for delivery.

use super::types as wit;
use crate::event;

impl From<event::Direction> for wit::Direction {
    fn from(d: event::Direction) -> Self {
        match d {
            event::Direction::Outbound => wit::Direction::Outbound,
            event::Direction::Inbound => wit::Direction::Inbound,
        }
    }
}

impl From<event::Kind> for wit::Kind {
    fn from(k: event::Kind) -> Self {
        match k {
            event::Kind::Message => wit::Kind::Message,
            event::Kind::Presence => wit::Kind::Presence,
            event::Kind::FileOffer => wit::Kind::FileOffer,
            event::Kind::SessionStart => wit::Kind::SessionStart,
            event::Kind::SessionEnd => wit::Kind::SessionEnd,
            event::Kind::RoomJoin => wit::Kind::RoomJoin,
            event::Kind::RoomLeave => wit::Kind::RoomLeave,
            // Never shown to a 0.1 plugin; a message is the nearest word.
            event::Kind::Reaction | event::Kind::Subject => wit::Kind::Message,
        }
    }
}

impl From<&event::Session> for wit::Session {
    fn from(s: &event::Session) -> Self {
        wit::Session {
            id: s.id.clone(),
            user: s.user.clone(),
            peer: s.peer.clone(),
        }
    }
}

impl From<&event::Conversation> for wit::Conversation {
    fn from(c: &event::Conversation) -> Self {
        match c {
            event::Conversation::Direct => wit::Conversation::Direct,
            event::Conversation::Group(room) => wit::Conversation::Group(room.clone()),
        }
    }
}

impl From<&event::Attachment> for wit::Attachment {
    fn from(a: &event::Attachment) -> Self {
        wit::Attachment {
            url: a.url.clone(),
            name: a.name.clone(),
            media_type: a.media_type.clone(),
            size: a.size,
        }
    }
}

impl From<&event::Message> for wit::Message {
    fn from(m: &event::Message) -> Self {
        wit::Message {
            id: m.id.clone(),
            sender: m.sender.clone(),
            recipient: m.recipient.clone(),
            conversation: (&m.conversation).into(),
            body: m.body.clone(),
            markup: m.markup.clone(),
            thread: m.thread.clone(),
            reply_to: m.reply_to.clone(),
            attachments: m.attachments.iter().map(Into::into).collect(),
            encrypted: m.encrypted,
            action: m.action,
            edit_of: m.edit_of.clone(),
            retraction_of: m.retraction_of.clone(),
        }
    }
}

impl From<&event::Presence> for wit::Presence {
    fn from(p: &event::Presence) -> Self {
        wit::Presence {
            sender: p.sender.clone(),
            recipient: p.recipient.clone(),
            available: p.available,
            show: p.show.clone(),
            status: p.status.clone(),
        }
    }
}

impl From<&event::FileOffer> for wit::FileOffer {
    fn from(f: &event::FileOffer) -> Self {
        wit::FileOffer {
            id: f.id.clone(),
            sender: f.sender.clone(),
            recipient: f.recipient.clone(),
            name: f.name.clone(),
            size: f.size,
            media_type: f.media_type.clone(),
        }
    }
}

impl From<&event::RoomChange> for wit::RoomChange {
    fn from(r: &event::RoomChange) -> Self {
        wit::RoomChange {
            room: r.room.clone(),
            occupant: r.occupant.clone(),
            nick: r.nick.clone(),
            reason: r.reason.clone(),
        }
    }
}

impl From<&event::EventKind> for wit::EventKind {
    fn from(k: &event::EventKind) -> Self {
        match k {
            event::EventKind::Message(m) => wit::EventKind::Message(m.into()),
            event::EventKind::Presence(p) => wit::EventKind::Presence(p.into()),
            event::EventKind::FileOffer(f) => wit::EventKind::FileOffer(f.into()),
            event::EventKind::SessionStart => wit::EventKind::SessionStart,
            event::EventKind::SessionEnd(reason) => wit::EventKind::SessionEnd(reason.clone()),
            event::EventKind::RoomJoin(r) => wit::EventKind::RoomJoin(r.into()),
            event::EventKind::RoomLeave(r) => wit::EventKind::RoomLeave(r.into()),
            // Never shown to a 0.1 plugin (see the module's note).
            event::EventKind::Reaction(r) => wit::EventKind::Message(wit::Message {
                id: None,
                sender: r.sender.clone(),
                recipient: r.recipient.clone(),
                conversation: (&r.conversation).into(),
                body: r.keys.join(" "),
                markup: None,
                thread: None,
                reply_to: Some(r.target.clone()),
                attachments: Vec::new(),
                encrypted: false,
                action: false,
                edit_of: None,
                retraction_of: None,
            }),
            event::EventKind::Subject(s) => wit::EventKind::Message(wit::Message {
                id: None,
                sender: s.sender.clone(),
                recipient: s.room.clone(),
                conversation: wit::Conversation::Group(s.room.clone()),
                body: s.text.clone(),
                markup: None,
                thread: None,
                reply_to: None,
                attachments: Vec::new(),
                encrypted: false,
                action: false,
                edit_of: None,
                retraction_of: None,
            }),
        }
    }
}

impl From<&event::Event> for wit::Event {
    fn from(e: &event::Event) -> Self {
        wit::Event {
            id: e.id.clone(),
            network: e.network.to_string(),
            direction: e.direction.into(),
            session: (&*e.session).into(),
            timestamp: e.timestamp,
            kind: (&e.kind).into(),
            tags: e.tags.clone(),
            attributes: e.attributes.clone(),
        }
    }
}

impl From<&event::Action> for wit::Action {
    fn from(a: &event::Action) -> Self {
        match a {
            event::Action::Allow => wit::Action::Allow,
            event::Action::Block(reason) => wit::Action::Block(reason.clone()),
            event::Action::Drop => wit::Action::Drop,
            event::Action::Rewrite(body) => wit::Action::Rewrite(body.clone()),
            event::Action::Hold(reason) => wit::Action::Block(format!("held for review: {reason}")),
        }
    }
}

impl From<&event::FinalVerdict> for wit::FinalVerdict {
    fn from(v: &event::FinalVerdict) -> Self {
        wit::FinalVerdict {
            action: (&v.action).into(),
            decided_by: v.decided_by.as_ref().map(|d| wit::Decider {
                plugin: d.plugin.clone(),
                sha256: d.sha256.clone(),
            }),
            tags: v.tags.clone(),
        }
    }
}

impl From<wit::Action> for event::Action {
    #[inline]
    fn from(a: wit::Action) -> Self {
        match a {
            wit::Action::Allow => event::Action::Allow,
            wit::Action::Block(reason) => event::Action::Block(reason),
            wit::Action::Drop => event::Action::Drop,
            wit::Action::Rewrite(body) => event::Action::Rewrite(body),
        }
    }
}

impl From<wit::Verdict> for event::Verdict {
    #[inline]
    fn from(v: wit::Verdict) -> Self {
        event::Verdict {
            action: v.action.into(),
            tags: v.tags,
            attributes: Vec::new(),
            remove_attachments: Vec::new(),
            sent: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_carries_every_field() {
        let doc: crate::event::json::EventDoc = serde_json::from_str(
            r#"{"id":"e1","network":"xmpp","direction":"inbound","timestamp":7,
                "session":{"id":"s","user":"u","peer":"p"},"tags":["t"],"attributes":{"k":"v"},
                "message":{"sender":"a","recipient":"b","body":"hi","room":"r","thread":"th",
                  "attachments":[{"url":"https://x/y","size":3}],"action":true}}"#,
        )
        .unwrap();
        let e = doc.into_event("d", 0).unwrap();
        let w = wit::Event::from(&e);
        assert_eq!(w.id, "e1");
        assert_eq!(w.direction, wit::Direction::Inbound);
        assert_eq!(w.session.peer, "p");
        assert_eq!(w.tags, vec!["t".to_owned()]);
        assert_eq!(w.attributes, vec![("k".to_owned(), "v".to_owned())]);
        let wit::EventKind::Message(m) = w.kind else {
            panic!("not a message")
        };
        assert_eq!(m.conversation, wit::Conversation::Group("r".into()));
        assert_eq!(m.attachments[0].size, Some(3));
        assert!(m.action);
    }

    #[test]
    fn verdicts_come_back_unchanged() {
        let v = event::Verdict::from(wit::Verdict {
            action: wit::Action::Rewrite("x".into()),
            tags: vec!["a".into()],
        });
        assert_eq!(v.action, event::Action::Rewrite("x".into()));
        assert_eq!(v.tags, vec!["a".to_owned()]);
        let back = wit::Action::from(&v.action);
        assert_eq!(back, wit::Action::Rewrite("x".into()));
    }
}
