//! The event model and verdicts, generated from `wit/types.wit`, with the
//! helpers plugin code reaches for most.

pub use crate::bindings::host::kv::KvError;
pub use crate::bindings::host::log::Level;
pub use crate::bindings::host::types::{
    Action, Attachment, Conversation, Decider, Direction, Event, EventKind, FileOffer,
    FinalVerdict, Message, Presence, RoomChange, Session, Verdict,
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

impl Event {
    /// The message, when this event is one.
    pub fn message(&self) -> Option<&Message> {
        match &self.kind {
            EventKind::Message(m) => Some(m),
            _ => None,
        }
    }

    /// The message body, when this event is a readable message.
    pub fn body(&self) -> Option<&str> {
        self.message()
            .filter(|m| !m.encrypted)
            .map(|m| m.body.as_str())
    }

    /// Whether an earlier plugin tagged the event with `tag`.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }

    /// An attribute set by the adapter or an earlier plugin.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}
