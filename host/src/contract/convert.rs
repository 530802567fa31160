//! The runtime's boundary for contract 0.2: neutral types into the
//! contract's small records, as a plugin asks for them.

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

impl From<&event::Session> for wit::Session {
    fn from(s: &event::Session) -> Self {
        wit::Session {
            id: s.id.clone(),
            user: s.user.clone(),
            peer: s.peer.clone(),
        }
    }
}

impl From<event::Text<'_>> for wit::Text {
    fn from(t: event::Text<'_>) -> Self {
        wit::Text {
            role: t.role.to_owned(),
            value: t.value.to_owned(),
        }
    }
}

impl From<&event::NetworkId> for wit::NetworkId {
    fn from(i: &event::NetworkId) -> Self {
        wit::NetworkId {
            kind: i.kind.clone(),
            value: i.value.clone(),
            by: i.by.clone(),
        }
    }
}

impl From<event::Relation> for wit::Relation {
    fn from(r: event::Relation) -> Self {
        wit::Relation {
            rel_type: r.rel_type.to_owned(),
            target: r.target,
            key: r.key,
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

impl From<&event::Presence> for wit::Presence {
    fn from(p: &event::Presence) -> Self {
        wit::Presence {
            available: p.available,
            show: p.show.clone(),
            status: p.status.clone(),
        }
    }
}

impl From<&event::FileOffer> for wit::FileOffer {
    fn from(f: &event::FileOffer) -> Self {
        wit::FileOffer {
            name: f.name.clone(),
            size: f.size,
            media_type: f.media_type.clone(),
        }
    }
}

/// A room join or leave as a `membership`.
pub fn membership(change: &str, r: &event::RoomChange) -> wit::Membership {
    wit::Membership {
        change: change.to_owned(),
        occupant: r.occupant.clone(),
        nick: r.nick.clone(),
        reason: r.reason.clone(),
    }
}

impl From<&event::Decider> for wit::Decider {
    fn from(d: &event::Decider) -> Self {
        wit::Decider {
            plugin: d.plugin.clone(),
            sha256: d.sha256.clone(),
        }
    }
}
