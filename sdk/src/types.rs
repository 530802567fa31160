//! The event a plugin reads, the verdict it gives and the outcome an
//! observer sees: typed Rust over the contract's `event-view`,
//! `verdict-out` and `outcome-view` resources (`wit/types.wit`).
//!
//! Everything that can grow in the contract is open here too: [`Kind`]
//! has `Other` for kinds added after this SDK, [`Action`] is
//! `non_exhaustive`, text roles and relation types are strings.

pub use crate::bindings::host::kv::KvError;
pub use crate::bindings::host::log::Level;
pub use crate::bindings::host::types::{
    Attachment, Decider, Direction, EventView, FileOffer, Membership, NetworkId, OutcomeView,
    Presence, Relation, Session, Text, VerdictOut,
};

/// What kind of event. Kinds added to the contract later arrive as
/// `Other(name)`: a plugin allows the kinds it does not know.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Message,
    Presence,
    FileOffer,
    Reaction,
    Subject,
    Membership,
    SessionStart,
    SessionEnd,
    Other(String),
}

impl Kind {
    /// The kind the contract calls `name`.
    pub fn from_name(name: &str) -> Kind {
        match name {
            "message" => Kind::Message,
            "presence" => Kind::Presence,
            "file-offer" => Kind::FileOffer,
            "reaction" => Kind::Reaction,
            "subject" => Kind::Subject,
            "membership" => Kind::Membership,
            "session-start" => Kind::SessionStart,
            "session-end" => Kind::SessionEnd,
            other => Kind::Other(other.to_owned()),
        }
    }

    /// The contract's name for the kind.
    pub fn name(&self) -> &str {
        match self {
            Kind::Message => "message",
            Kind::Presence => "presence",
            Kind::FileOffer => "file-offer",
            Kind::Reaction => "reaction",
            Kind::Subject => "subject",
            Kind::Membership => "membership",
            Kind::SessionStart => "session-start",
            Kind::SessionEnd => "session-end",
            Kind::Other(name) => name,
        }
    }
}

/// What a plugin wants done with an event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    #[default]
    Allow,
    /// Refuse it and tell the sender why.
    Block(String),
    /// Discard it silently.
    Drop,
    /// Deliver it with this text instead (`Event::body`).
    Rewrite(String),
    /// Keep it from delivery until a reviewer releases or rejects it.
    Hold(String),
}

/// A plugin's answer: an action, the tags and attributes it adds, and
/// the attachments it takes out. The export macro writes it into the
/// host's `verdict-out`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub action: Action,
    pub tags: Vec<String>,
    pub attributes: Vec<(String, String)>,
    /// URLs of attachments (`Event::attachments`) not to deliver.
    pub remove_attachments: Vec<String>,
}

impl Verdict {
    pub fn allow() -> Self {
        Verdict::default()
    }

    fn with_action(action: Action) -> Self {
        Verdict {
            action,
            ..Verdict::default()
        }
    }

    /// Refuse the event; `reason` is shown to the sender.
    pub fn block(reason: impl Into<String>) -> Self {
        Self::with_action(Action::Block(reason.into()))
    }

    /// Discard the event silently.
    pub fn drop() -> Self {
        Self::with_action(Action::Drop)
    }

    /// Deliver the event with `body` as its text instead. The host refuses
    /// (as this plugin's failure) a rewrite of encrypted content or of an
    /// event with no text.
    pub fn rewrite(body: impl Into<String>) -> Self {
        Self::with_action(Action::Rewrite(body.into()))
    }

    /// Hold the event for a reviewer; `reason` is shown to the reviewer.
    pub fn hold(reason: impl Into<String>) -> Self {
        Self::with_action(Action::Hold(reason.into()))
    }

    /// Adds a tag (e.g. `dlp:card-number`) that later plugins and the
    /// archive see.
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Sets a namespaced attribute (`vendor.key`) that later plugins and the
    /// archive see.
    pub fn with_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.push((key.into(), value.into()));
        self
    }

    /// Takes the attachment with this URL out of what is delivered (the
    /// reference, and the URL from the text). The host refuses (as this
    /// plugin's failure) a URL the message does not have, or encrypted
    /// content.
    pub fn with_attachment_removed(mut self, url: impl Into<String>) -> Self {
        self.remove_attachments.push(url.into());
        self
    }

    pub fn is_allow(&self) -> bool {
        matches!(self.action, Action::Allow)
    }

    pub fn is_block(&self) -> bool {
        matches!(self.action, Action::Block(_))
    }

    /// Writes the verdict into the host's `verdict-out` (what the export
    /// macro does with `handle`'s result).
    pub fn write_to(&self, out: &VerdictOut) {
        for tag in &self.tags {
            out.tag(tag);
        }
        for (key, value) in &self.attributes {
            out.set_attribute(key, value);
        }
        for url in &self.remove_attachments {
            let _ = out.remove_attachment(url);
        }
        match &self.action {
            Action::Allow => {}
            Action::Block(reason) => out.block(reason),
            Action::Drop => out.discard(),
            Action::Hold(reason) => out.hold(reason),
            // A refusal is recorded by the host as this plugin's failure.
            Action::Rewrite(body) => {
                let _ = out.rewrite_body(body);
            }
        }
    }
}

/// An event as plain data: what [`crate::testing`] builds, and what
/// [`Event`] reads in native tests. Its fields are the view's accessors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRecord {
    pub id: String,
    pub network: String,
    pub direction: Direction,
    pub session: Session,
    pub timestamp: u64,
    pub kind: String,
    pub sender: String,
    pub recipient: Option<String>,
    pub room: Option<String>,
    pub body: Option<String>,
    pub markup: Option<String>,
    pub markup_format: Option<String>,
    pub texts: Vec<Text>,
    pub attachments: Vec<Attachment>,
    pub encrypted: bool,
    pub emote: bool,
    pub ids: Vec<NetworkId>,
    pub relations: Vec<Relation>,
    pub presence: Option<Presence>,
    pub file_offer: Option<FileOffer>,
    pub membership: Option<Membership>,
    pub end_reason: Option<String>,
    pub tags: Vec<String>,
    pub attributes: Vec<(String, String)>,
}

impl Default for EventRecord {
    fn default() -> Self {
        EventRecord {
            id: String::new(),
            network: String::new(),
            direction: Direction::Outbound,
            session: Session {
                id: String::new(),
                user: String::new(),
                peer: String::new(),
            },
            timestamp: 0,
            kind: String::new(),
            sender: String::new(),
            recipient: None,
            room: None,
            body: None,
            markup: None,
            markup_format: None,
            texts: Vec::new(),
            attachments: Vec::new(),
            encrypted: false,
            emote: false,
            ids: Vec::new(),
            relations: Vec::new(),
            presence: None,
            file_offer: None,
            membership: None,
            end_reason: None,
            tags: Vec::new(),
            attributes: Vec::new(),
        }
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
    inner: Inner<'a, EventView, EventRecord>,
}

enum Inner<'a, V, R> {
    View(&'a V),
    Record(&'a R),
}

// By hand: derived impls would ask `V: Clone`, and resources are not.
impl<V, R> Clone for Inner<'_, V, R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<V, R> Copy for Inner<'_, V, R> {}

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

    /// An event backed by a record (tests).
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

    /// Globally unique, sortable by time (a UUIDv7).
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
        Kind::from_name(&self.kind_name())
    }

    /// The kind as the contract names it (`message`, `reaction`, …).
    pub fn kind_name(&self) -> String {
        field!(self, v => v.kind(), r => r.kind.clone())
    }

    /// Who sent it; empty for session events.
    pub fn sender(&self) -> String {
        field!(self, v => v.sender(), r => r.sender.clone())
    }

    /// Who it is for, one to one.
    pub fn recipient(&self) -> Option<String> {
        field!(self, v => v.recipient(), r => r.recipient.clone())
    }

    /// The room it is said or done in.
    pub fn room(&self) -> Option<String> {
        field!(self, v => v.room(), r => r.room.clone())
    }

    /// The text (a message's body, a subject) after earlier rewrites in the
    /// chain; `None` for other kinds and for end-to-end encrypted messages.
    /// The cheapest way to read a message.
    pub fn body(&self) -> Option<String> {
        field!(self, v => v.body(), r => r.body.clone())
    }

    pub fn markup(&self) -> Option<String> {
        field!(self, v => v.markup(), r => r.markup.clone())
    }

    /// `xhtml-im`, `irc-formatting`, …
    pub fn markup_format(&self) -> Option<String> {
        field!(self, v => v.markup_format(), r => r.markup_format.clone())
    }

    /// Every text a user wrote in the event, with its role (`body`,
    /// `subject`, `reaction`, `file-name`, …). Judge these and a rule
    /// covers kinds added later.
    pub fn texts(&self) -> Vec<Text> {
        field!(self, v => v.texts(), r => r.texts.clone())
    }

    pub fn attachments(&self) -> Vec<Attachment> {
        field!(self, v => v.attachments(), r => r.attachments.clone())
    }

    /// End-to-end encrypted: the gateway cannot read it.
    pub fn encrypted(&self) -> bool {
        field!(self, v => v.encrypted(), r => r.encrypted)
    }

    /// A /me action.
    pub fn emote(&self) -> bool {
        field!(self, v => v.emote(), r => r.emote)
    }

    /// The network's own ids (`origin-id`, `stanza-id`, `msgid`, …).
    pub fn ids(&self) -> Vec<NetworkId> {
        field!(self, v => v.ids(), r => r.ids.clone())
    }

    /// Edits, retractions, replies, threads and reactions it points at.
    pub fn relations(&self) -> Vec<Relation> {
        field!(self, v => v.relations(), r => r.relations.clone())
    }

    pub fn presence(&self) -> Option<Presence> {
        field!(self, v => v.presence(), r => r.presence.clone())
    }

    pub fn file_offer(&self) -> Option<FileOffer> {
        field!(self, v => v.file_offer(), r => r.file_offer.clone())
    }

    /// For room joins and leaves.
    pub fn membership(&self) -> Option<Membership> {
        field!(self, v => v.membership(), r => r.membership.clone())
    }

    /// For session ends: why.
    pub fn end_reason(&self) -> Option<String> {
        field!(self, v => v.end_reason(), r => r.end_reason.clone())
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

    /// The whole event as JSON, in `imgate replay`'s format. Copies every
    /// field: prefer the accessors for what you need. (Native tests: the
    /// record's debug form.)
    pub fn to_json(&self) -> String {
        field!(self, v => v.to_json(), r => format!("{r:?}"))
    }
}

/// The chain's final outcome as plain data, for native tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutcomeRecord {
    /// `allow`, `block`, `drop`, `rewrite`, `hold`, …
    pub action: String,
    pub reason: Option<String>,
    pub delivered_body: Option<String>,
    pub decided_by: Option<Decider>,
    pub tags: Vec<String>,
}

impl OutcomeRecord {
    /// The outcome of `action` with nobody deciding.
    pub fn of(action: &Action) -> Self {
        let (name, reason, body) = match action {
            Action::Allow => ("allow", None, None),
            Action::Block(r) => ("block", Some(r.clone()), None),
            Action::Drop => ("drop", None, None),
            Action::Rewrite(b) => ("rewrite", None, Some(b.clone())),
            Action::Hold(r) => ("hold", Some(r.clone()), None),
        };
        OutcomeRecord {
            action: name.into(),
            reason,
            delivered_body: body,
            ..Default::default()
        }
    }
}

/// What the chain decided, as an observer sees it.
#[derive(Clone, Copy)]
pub struct Outcome<'a> {
    inner: Inner<'a, OutcomeView, OutcomeRecord>,
}

impl<'a> Outcome<'a> {
    pub fn from_view(view: &'a OutcomeView) -> Self {
        Outcome {
            inner: Inner::View(view),
        }
    }

    pub fn from_record(record: &'a OutcomeRecord) -> Self {
        Outcome {
            inner: Inner::Record(record),
        }
    }

    /// `allow`, `block`, `drop`, `rewrite`, `hold`, and actions added later.
    pub fn action(&self) -> String {
        field!(self, v => v.action(), r => r.action.clone())
    }

    /// Whether the event was delivered (allowed or rewritten).
    pub fn delivered(&self) -> bool {
        matches!(self.action().as_str(), "allow" | "rewrite")
    }

    /// The reason given with a block or hold.
    pub fn reason(&self) -> Option<String> {
        field!(self, v => v.reason(), r => r.reason.clone())
    }

    /// The text as delivered, after rewrites.
    pub fn delivered_body(&self) -> Option<String> {
        field!(self, v => v.delivered_body(), r => r.delivered_body.clone())
    }

    /// The plugin whose verdict stood; `None` when all allowed.
    pub fn decided_by(&self) -> Option<Decider> {
        field!(self, v => v.decided_by(), r => r.decided_by.clone())
    }

    pub fn tags(&self) -> Vec<String> {
        field!(self, v => v.tags(), r => r.tags.clone())
    }
}
