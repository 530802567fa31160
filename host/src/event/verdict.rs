//! What the policy decides about an event.

/// What is done with an event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Action {
    #[default]
    Allow,
    /// Refuse it and tell the sender why.
    Block(String),
    /// Discard it silently.
    Drop,
    /// Deliver it with this body instead.
    Rewrite(String),
    /// Keep it from delivery until a reviewer releases or rejects it.
    Hold(String),
}

impl Action {
    /// The action's name as it appears in logs, metrics and JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Block(_) => "block",
            Action::Drop => "drop",
            Action::Rewrite(_) => "rewrite",
            Action::Hold(_) => "hold",
        }
    }

    /// Whether the event is kept from delivery (block, drop, hold).
    pub fn stops(&self) -> bool {
        matches!(self, Action::Block(_) | Action::Drop | Action::Hold(_))
    }

    /// The reason given with a block or hold.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Action::Block(r) | Action::Hold(r) => Some(r),
            _ => None,
        }
    }
}

/// One plugin's answer: an action, the tags and attributes it adds, and
/// the attachments (by URL) it takes out of the message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub action: Action,
    pub tags: Vec<String>,
    pub attributes: Vec<(String, String)>,
    pub remove_attachments: Vec<String>,
    /// Messages it sent into other networks (`bridge`), delivered only
    /// when the event is.
    pub sent: Vec<super::bridge::Outgoing>,
}

/// The plugin whose verdict stood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decider {
    pub plugin: String,
    /// Hex sha256 of the component that decided.
    pub sha256: String,
}

/// The chain's outcome for one event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinalVerdict {
    pub action: Action,
    /// None when every plugin allowed the event.
    pub decided_by: Option<Decider>,
    pub tags: Vec<String>,
    /// Attachments (by URL) taken out of what is delivered; the action is
    /// then a rewrite.
    pub removed_attachments: Vec<String>,
}

impl FinalVerdict {
    /// Allowed, with nobody deciding: the answer of an empty chain.
    pub fn allow() -> Self {
        FinalVerdict {
            action: Action::Allow,
            decided_by: None,
            tags: Vec::new(),
            removed_attachments: Vec::new(),
        }
    }
}
