//! The event model and verdicts, generated from `wit/types.wit`, with the
//! helpers plugin code reaches for most.

pub use crate::bindings::host::kv::KvError;
pub use crate::bindings::host::log::Level;
pub use crate::bindings::host::types::{
    Action, Attachment, Conversation, Decider, Direction, Event as EventRecord, EventKind,
    EventView, FileOffer, FinalVerdict, Kind, Message, Presence, RoomChange, Session, Verdict,
};

impl Verdict {
    pub fn allow() -> Self {
        Verdict {
            action: Action::Allow,
            tags: Vec::new(),
        }
    }

    /// Refuse the event; `reason` is shown to the sender.
    pub fn block(reason: impl Into<String>) -> Self {
        Verdict {
            action: Action::Block(reason.into()),
            tags: Vec::new(),
        }
    }

    /// Discard the event silently.
    pub fn drop() -> Self {
        Verdict {
            action: Action::Drop,
            tags: Vec::new(),
        }
    }

    /// Deliver the message with `body` instead.
    pub fn rewrite(body: impl Into<String>) -> Self {
        Verdict {
            action: Action::Rewrite(body.into()),
            tags: Vec::new(),
        }
    }

    /// Adds a tag (e.g. `dlp:card-number`) that later plugins and the
    /// archive see.
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    pub fn is_allow(&self) -> bool {
        matches!(self.action, Action::Allow)
    }

    pub fn is_block(&self) -> bool {
        matches!(self.action, Action::Block(_))
    }
}

/// The event a plugin is judging.
///
/// In a component this is a view onto the host's copy: each accessor asks
/// the host for that field, and only that field crosses into the plugin.
/// Call an accessor once and keep the result rather than calling it in a
/// loop. In native tests it reads an [`EventRecord`] built by
/// [`crate::testing`].
#[derive(Clone, Copy)]
pub struct Event<'a> {
    inner: Inner<'a>,
}

#[derive(Clone, Copy)]
enum Inner<'a> {
    View(&'a EventView),
    Record(&'a EventRecord),
}

macro_rules! field {
    ($self:ident, $view:ident => $from_view:expr, $rec:ident => $from_record:expr) => {
        match $self.inner {
            Inner::View($view) => $from_view,
            Inner::Record($rec) => $from_record,
        }
    };
}

impl<'a> Event<'a> {
    /// An event backed by the host (what the export macro passes).
    pub fn from_view(view: &'a EventView) -> Self {
        Event {
            inner: Inner::View(view),
        }
    }

    /// An event backed by a record (tests, snapshots).
    pub fn from_record(record: &'a EventRecord) -> Self {
        Event {
            inner: Inner::Record(record),
        }
    }

    /// The host's view, when there is one (for `archive::append`).
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    pub(crate) fn view(&self) -> Option<&'a EventView> {
        match self.inner {
            Inner::View(v) => Some(v),
            Inner::Record(_) => None,
        }
    }

    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn record(&self) -> Option<&'a EventRecord> {
        match self.inner {
            Inner::View(_) => None,
            Inner::Record(r) => Some(r),
        }
    }

    pub fn id(&self) -> String {
        field!(self, v => v.id(), r => r.id.clone())
    }

    /// `"xmpp"`, `"irc"`, …
    pub fn network(&self) -> String {
        field!(self, v => v.network(), r => r.network.clone())
    }

    pub fn direction(&self) -> Direction {
        field!(self, v => v.direction(), r => r.direction)
    }

    pub fn is_outbound(&self) -> bool {
        self.direction() == Direction::Outbound
    }

    pub fn session(&self) -> Session {
        field!(self, v => v.session(), r => r.session.clone())
    }

    /// The authenticated local user of the session.
    pub fn user(&self) -> String {
        self.session().user
    }

    /// Milliseconds since the Unix epoch.
    pub fn timestamp(&self) -> u64 {
        field!(self, v => v.timestamp(), r => r.timestamp)
    }

    pub fn kind(&self) -> Kind {
        field!(self, v => v.kind(), r => match &r.kind {
            EventKind::Message(_) => Kind::Message,
            EventKind::Presence(_) => Kind::Presence,
            EventKind::FileOffer(_) => Kind::FileOffer,
            EventKind::SessionStart => Kind::SessionStart,
            EventKind::SessionEnd(_) => Kind::SessionEnd,
            EventKind::RoomJoin(_) => Kind::RoomJoin,
            EventKind::RoomLeave(_) => Kind::RoomLeave,
        })
    }

    /// The message body (after earlier rewrites in the chain); `None` for
    /// other kinds and for end-to-end encrypted messages. The cheapest way
    /// to read a message.
    pub fn body(&self) -> Option<String> {
        field!(self, v => v.body(), r => match &r.kind {
            EventKind::Message(m) if !m.encrypted => Some(m.body.clone()),
            _ => None,
        })
    }

    /// The whole message, body included.
    pub fn message(&self) -> Option<Message> {
        field!(self, v => v.message(), r => match &r.kind {
            EventKind::Message(m) => Some(m.clone()),
            _ => None,
        })
    }

    pub fn presence(&self) -> Option<Presence> {
        field!(self, v => v.presence(), r => match &r.kind {
            EventKind::Presence(p) => Some(p.clone()),
            _ => None,
        })
    }

    pub fn file_offer(&self) -> Option<FileOffer> {
        field!(self, v => v.file_offer(), r => match &r.kind {
            EventKind::FileOffer(f) => Some(f.clone()),
            _ => None,
        })
    }

    /// For room joins and leaves.
    pub fn room_change(&self) -> Option<RoomChange> {
        field!(self, v => v.room_change(), r => match &r.kind {
            EventKind::RoomJoin(c) | EventKind::RoomLeave(c) => Some(c.clone()),
            _ => None,
        })
    }

    /// For session ends: why.
    pub fn end_reason(&self) -> Option<String> {
        field!(self, v => v.end_reason(), r => match &r.kind {
            EventKind::SessionEnd(reason) => Some(reason.clone()),
            _ => None,
        })
    }

    /// Tags added by earlier plugins.
    pub fn tags(&self) -> Vec<String> {
        field!(self, v => v.tags(), r => r.tags.clone())
    }

    /// Whether an earlier plugin tagged the event with `tag`.
    pub fn has_tag(&self, tag: &str) -> bool {
        field!(self, v => v.has_tag(tag), r => r.tags.iter().any(|t| t == tag))
    }

    /// An attribute set by the adapter or an earlier plugin.
    pub fn attribute(&self, key: &str) -> Option<String> {
        field!(self, v => v.attribute(key), r => r
            .attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone()))
    }

    pub fn attributes(&self) -> Vec<(String, String)> {
        field!(self, v => v.attributes(), r => r.attributes.clone())
    }

    /// The whole event as one record. Copies every field: prefer the
    /// accessors for what you need.
    pub fn snapshot(&self) -> EventRecord {
        field!(self, v => v.snapshot(), r => r.clone())
    }
}
