//! The JSON form of events and verdicts.
//!
//! One event per line in `imgate replay` input. Fields are snake_case; the
//! event's data is under the one key among `message`, `presence`,
//! `file_offer`, `reaction`, `subject`, `session_start`, `session_end`,
//! `room_join`, `room_leave`. `kind` names it as the contract does
//! (`message`, `file-offer`, `membership`, …): written on output, optional
//! on input (where it must agree with the key, and `"kind":"session-start"`
//! alone is enough):
//!
//! ```json
//! {"network":"xmpp","direction":"outbound",
//!  "session":{"user":"alice@corp.example"},
//!  "message":{"sender":"alice@corp.example","recipient":"bob@example.net","body":"hi"}}
//! ```
//!
//! Optional everywhere: `id` (defaults to `line-N`), `timestamp` (ms since
//! the epoch; defaults to now), `tags`, `attributes`, and in `session`:
//! `id`, `user`, `peer`. A message in a room sets `"room": "<room id>"`.
//! The full schema is in `docs/replay.md`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::*;

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EventDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The kind's contract name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub network: String,
    pub direction: DirectionDoc,
    #[serde(default)]
    pub session: SessionDoc,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<MessageDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence: Option<PresenceDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_offer: Option<FileOfferDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_start: Option<Empty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_end: Option<SessionEndDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_join: Option<RoomChangeDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_leave: Option<RoomChangeDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaction: Option<ReactionDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<SubjectDoc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    /// The network's own ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<NetworkIdDoc>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NetworkIdDoc {
    pub kind: String,
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReactionDoc {
    pub sender: String,
    #[serde(default)]
    pub recipient: String,
    /// Set for a reaction in a room: the room id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// The id of the message reacted to.
    pub target: String,
    #[serde(default)]
    pub keys: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SubjectDoc {
    pub sender: String,
    pub room: String,
    #[serde(default)]
    pub text: String,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum DirectionDoc {
    #[default]
    Outbound,
    Inbound,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SessionDoc {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub peer: String,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SessionEndDoc {
    #[serde(default)]
    pub reason: String,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MessageDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub sender: String,
    pub recipient: String,
    /// Set for a group conversation: the room id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    #[serde(default)]
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub markup: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentDoc>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub encrypted: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub action: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit_of: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retraction_of: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AttachmentDoc {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PresenceDoc {
    pub sender: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    #[serde(default = "yes")]
    pub available: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub show: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileOfferDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub sender: String,
    pub recipient: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RoomChangeDoc {
    pub room: String,
    pub occupant: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nick: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Why an [`EventDoc`] is not an event.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EventDocError {
    #[error(
        "an event needs exactly one of message, presence, file_offer, reaction, subject, \
         session_start, session_end, room_join, room_leave; found {0}"
    )]
    Kind(String),
    #[error("\"kind\": {kind:?} does not match the event's `{key}`")]
    KindMismatch { kind: String, key: &'static str },
}

impl EventDoc {
    /// Builds the event, filling `id` and `timestamp` when absent.
    pub fn into_event(mut self, default_id: &str, now_ms: u64) -> Result<Event, EventDocError> {
        if self.kind.as_deref() == Some("session-start") && self.session_start.is_none() {
            self.session_start = Some(Empty {});
        }
        let mut kinds: Vec<(&'static str, EventKind)> = Vec::new();
        if let Some(m) = self.message {
            kinds.push(("message", EventKind::Message(m.into())));
        }
        if let Some(p) = self.presence {
            kinds.push(("presence", EventKind::Presence(p.into())));
        }
        if let Some(f) = self.file_offer {
            kinds.push(("file_offer", EventKind::FileOffer(f.into())));
        }
        if self.session_start.is_some() {
            kinds.push(("session_start", EventKind::SessionStart));
        }
        if let Some(e) = self.session_end {
            kinds.push(("session_end", EventKind::SessionEnd(e.reason)));
        }
        if let Some(r) = self.room_join {
            kinds.push(("room_join", EventKind::RoomJoin(r.into())));
        }
        if let Some(r) = self.room_leave {
            kinds.push(("room_leave", EventKind::RoomLeave(r.into())));
        }
        if let Some(r) = self.reaction {
            kinds.push(("reaction", EventKind::Reaction(r.into())));
        }
        if let Some(s) = self.subject {
            kinds.push(("subject", EventKind::Subject(s.into())));
        }
        if kinds.len() != 1 {
            let names: Vec<_> = kinds.iter().map(|(n, _)| *n).collect();
            return Err(EventDocError::Kind(if names.is_empty() {
                "none".into()
            } else {
                names.join(" and ")
            }));
        }
        let (key, kind) = kinds.remove(0);
        if let Some(named) = self.kind
            && named != kind.kind().contract_name()
        {
            return Err(EventDocError::KindMismatch { kind: named, key });
        }
        Ok(Event {
            id: self.id.unwrap_or_else(|| default_id.to_owned()),
            network: self.network.into(),
            direction: match self.direction {
                DirectionDoc::Outbound => Direction::Outbound,
                DirectionDoc::Inbound => Direction::Inbound,
            },
            session: Arc::new(Session {
                id: self.session.id,
                user: self.session.user,
                peer: self.session.peer,
            }),
            timestamp: self.timestamp.unwrap_or(now_ms),
            kind,
            tags: self.tags,
            attributes: self.attributes.into_iter().collect(),
            ids: self
                .ids
                .into_iter()
                .map(|i| NetworkId {
                    kind: i.kind,
                    value: i.value,
                    by: i.by,
                })
                .collect(),
        })
    }
}

impl From<&Event> for EventDoc {
    fn from(e: &Event) -> Self {
        let mut doc = EventDoc {
            id: Some(e.id.clone()),
            kind: Some(e.kind.kind().contract_name().to_owned()),
            network: e.network.to_string(),
            direction: match e.direction {
                Direction::Outbound => DirectionDoc::Outbound,
                Direction::Inbound => DirectionDoc::Inbound,
            },
            session: SessionDoc {
                id: e.session.id.clone(),
                user: e.session.user.clone(),
                peer: e.session.peer.clone(),
            },
            timestamp: Some(e.timestamp),
            tags: e.tags.clone(),
            attributes: e.attributes.iter().cloned().collect(),
            ids: e
                .ids
                .iter()
                .map(|i| NetworkIdDoc {
                    kind: i.kind.clone(),
                    value: i.value.clone(),
                    by: i.by.clone(),
                })
                .collect(),
            ..EventDoc::default()
        };
        match &e.kind {
            EventKind::Message(m) => doc.message = Some(m.into()),
            EventKind::Presence(p) => doc.presence = Some(p.into()),
            EventKind::FileOffer(f) => doc.file_offer = Some(f.into()),
            EventKind::SessionStart => doc.session_start = Some(Empty {}),
            EventKind::SessionEnd(reason) => {
                doc.session_end = Some(SessionEndDoc {
                    reason: reason.clone(),
                })
            }
            EventKind::RoomJoin(r) => doc.room_join = Some(r.into()),
            EventKind::RoomLeave(r) => doc.room_leave = Some(r.into()),
            EventKind::Reaction(r) => {
                doc.reaction = Some(ReactionDoc {
                    sender: r.sender.clone(),
                    recipient: r.recipient.clone(),
                    room: match &r.conversation {
                        Conversation::Group(room) => Some(room.clone()),
                        Conversation::Direct => None,
                    },
                    target: r.target.clone(),
                    keys: r.keys.clone(),
                })
            }
            EventKind::Subject(s) => {
                doc.subject = Some(SubjectDoc {
                    sender: s.sender.clone(),
                    room: s.room.clone(),
                    text: s.text.clone(),
                })
            }
        }
        doc
    }
}

impl From<ReactionDoc> for Reaction {
    fn from(r: ReactionDoc) -> Self {
        Reaction {
            sender: r.sender,
            recipient: r.recipient,
            conversation: match r.room {
                Some(room) => Conversation::Group(room),
                None => Conversation::Direct,
            },
            target: r.target,
            keys: r.keys,
        }
    }
}

impl From<SubjectDoc> for Subject {
    fn from(s: SubjectDoc) -> Self {
        Subject {
            sender: s.sender,
            room: s.room,
            text: s.text,
        }
    }
}

impl From<MessageDoc> for Message {
    fn from(m: MessageDoc) -> Self {
        Message {
            id: m.id,
            sender: m.sender,
            recipient: m.recipient,
            conversation: match m.room {
                Some(room) => Conversation::Group(room),
                None => Conversation::Direct,
            },
            body: m.body,
            markup: m.markup,
            thread: m.thread,
            reply_to: m.reply_to,
            attachments: m
                .attachments
                .into_iter()
                .map(|a| Attachment {
                    url: a.url,
                    name: a.name,
                    media_type: a.media_type,
                    size: a.size,
                })
                .collect(),
            encrypted: m.encrypted,
            action: m.action,
            edit_of: m.edit_of,
            retraction_of: m.retraction_of,
            subject: m.subject,
        }
    }
}

impl From<&Message> for MessageDoc {
    fn from(m: &Message) -> Self {
        MessageDoc {
            id: m.id.clone(),
            sender: m.sender.clone(),
            recipient: m.recipient.clone(),
            room: match &m.conversation {
                Conversation::Group(room) => Some(room.clone()),
                Conversation::Direct => None,
            },
            body: m.body.clone(),
            markup: m.markup.clone(),
            thread: m.thread.clone(),
            reply_to: m.reply_to.clone(),
            attachments: m
                .attachments
                .iter()
                .map(|a| AttachmentDoc {
                    url: a.url.clone(),
                    name: a.name.clone(),
                    media_type: a.media_type.clone(),
                    size: a.size,
                })
                .collect(),
            encrypted: m.encrypted,
            action: m.action,
            edit_of: m.edit_of.clone(),
            retraction_of: m.retraction_of.clone(),
            subject: m.subject.clone(),
        }
    }
}

impl From<PresenceDoc> for Presence {
    fn from(p: PresenceDoc) -> Self {
        Presence {
            sender: p.sender,
            recipient: p.recipient,
            available: p.available,
            show: p.show,
            status: p.status,
        }
    }
}

impl From<&Presence> for PresenceDoc {
    fn from(p: &Presence) -> Self {
        PresenceDoc {
            sender: p.sender.clone(),
            recipient: p.recipient.clone(),
            available: p.available,
            show: p.show.clone(),
            status: p.status.clone(),
        }
    }
}

impl From<FileOfferDoc> for FileOffer {
    fn from(f: FileOfferDoc) -> Self {
        FileOffer {
            id: f.id,
            sender: f.sender,
            recipient: f.recipient,
            name: f.name,
            size: f.size,
            media_type: f.media_type,
        }
    }
}

impl From<&FileOffer> for FileOfferDoc {
    fn from(f: &FileOffer) -> Self {
        FileOfferDoc {
            id: f.id.clone(),
            sender: f.sender.clone(),
            recipient: f.recipient.clone(),
            name: f.name.clone(),
            size: f.size,
            media_type: f.media_type.clone(),
        }
    }
}

impl From<RoomChangeDoc> for RoomChange {
    fn from(r: RoomChangeDoc) -> Self {
        RoomChange {
            room: r.room,
            occupant: r.occupant,
            nick: r.nick,
            reason: r.reason,
        }
    }
}

impl From<&RoomChange> for RoomChangeDoc {
    fn from(r: &RoomChange) -> Self {
        RoomChangeDoc {
            room: r.room.clone(),
            occupant: r.occupant.clone(),
            nick: r.nick.clone(),
            reason: r.reason.clone(),
        }
    }
}

/// The JSON form of a verdict's action.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ActionDoc {
    Allow,
    Block { reason: String },
    Drop,
    Rewrite { body: String },
    Hold { reason: String },
}

impl ActionDoc {
    /// `allow`, `block`, `drop`, `rewrite` or `hold`.
    pub fn name(&self) -> &'static str {
        match self {
            ActionDoc::Allow => "allow",
            ActionDoc::Block { .. } => "block",
            ActionDoc::Drop => "drop",
            ActionDoc::Rewrite { .. } => "rewrite",
            ActionDoc::Hold { .. } => "hold",
        }
    }
}

impl From<&Action> for ActionDoc {
    fn from(a: &Action) -> Self {
        match a {
            Action::Allow => ActionDoc::Allow,
            Action::Block(reason) => ActionDoc::Block {
                reason: reason.clone(),
            },
            Action::Drop => ActionDoc::Drop,
            Action::Rewrite(body) => ActionDoc::Rewrite { body: body.clone() },
            Action::Hold(reason) => ActionDoc::Hold {
                reason: reason.clone(),
            },
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct DeciderDoc {
    pub plugin: String,
    pub sha256: String,
}

/// The JSON form of a final verdict.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct FinalVerdictDoc {
    #[serde(flatten)]
    pub action: ActionDoc,
    pub decided_by: Option<DeciderDoc>,
    pub tags: Vec<String>,
    /// Attachments (by URL) taken out of what was delivered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_attachments: Vec<String>,
}

impl From<&FinalVerdict> for FinalVerdictDoc {
    fn from(v: &FinalVerdict) -> Self {
        FinalVerdictDoc {
            action: (&v.action).into(),
            decided_by: v.decided_by.as_ref().map(|d| DeciderDoc {
                plugin: d.plugin.clone(),
                sha256: d.sha256.clone(),
            }),
            tags: v.tags.clone(),
            removed_attachments: v.removed_attachments.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_message_line_parses_with_defaults() {
        let line = r#"{"network":"xmpp","direction":"outbound","message":{"sender":"a@x","recipient":"b@y","body":"hi","room":"r@muc"}}"#;
        let doc: EventDoc = serde_json::from_str(line).unwrap();
        let e = doc.into_event("line-1", 42).unwrap();
        assert_eq!(e.id, "line-1");
        assert_eq!(e.timestamp, 42);
        let EventKind::Message(m) = &e.kind else {
            panic!("not a message")
        };
        assert_eq!(m.body, "hi");
        assert_eq!(m.conversation, Conversation::Group("r@muc".into()));
    }

    #[test]
    fn events_round_trip_through_json() {
        let line = r#"{"id":"e9","network":"irc","direction":"inbound","session":{"id":"s","user":"u","peer":"1.2.3.4:5"},"timestamp":7,"file_offer":{"sender":"a","recipient":"b","name":"x.pdf","size":3},"tags":["t"],"attributes":{"irc.dcc":"1"}}"#;
        let e = serde_json::from_str::<EventDoc>(line)
            .unwrap()
            .into_event("-", 0)
            .unwrap();
        let back = serde_json::to_string(&EventDoc::from(&e)).unwrap();
        let again = serde_json::from_str::<EventDoc>(&back)
            .unwrap()
            .into_event("-", 0)
            .unwrap();
        assert_eq!(e, again);
    }

    #[test]
    fn zero_or_two_kinds_are_refused_by_name() {
        let none = r#"{"network":"xmpp","direction":"outbound"}"#;
        let err = serde_json::from_str::<EventDoc>(none)
            .unwrap()
            .into_event("-", 0)
            .unwrap_err();
        assert!(err.to_string().contains("found none"));
        let two =
            r#"{"network":"xmpp","direction":"outbound","session_start":{},"session_end":{}}"#;
        let err = serde_json::from_str::<EventDoc>(two)
            .unwrap()
            .into_event("-", 0)
            .unwrap_err();
        assert!(
            err.to_string().contains("session_start and session_end"),
            "{err}"
        );
    }

    #[test]
    fn kinds_are_named_as_the_contract_names_them() {
        let line = r#"{"kind":"reaction","network":"xmpp","direction":"outbound","reaction":{"sender":"a","target":"m1","keys":["👍"]},"ids":[{"kind":"origin-id","value":"o1"}]}"#;
        let e = serde_json::from_str::<EventDoc>(line)
            .unwrap()
            .into_event("-", 0)
            .unwrap();
        assert_eq!(e.ids[0].kind, "origin-id");
        let out = serde_json::to_value(EventDoc::from(&e)).unwrap();
        assert_eq!(out["kind"], "reaction");
        let start = r#"{"kind":"session-start","network":"irc","direction":"outbound"}"#;
        let e = serde_json::from_str::<EventDoc>(start)
            .unwrap()
            .into_event("-", 0)
            .unwrap();
        assert_eq!(e.kind, EventKind::SessionStart);
        let wrong =
            r#"{"kind":"presence","network":"irc","direction":"outbound","session_start":{}}"#;
        let err = serde_json::from_str::<EventDoc>(wrong)
            .unwrap()
            .into_event("-", 0)
            .unwrap_err();
        assert!(err.to_string().contains("session_start"), "{err}");
        let room_join = r##"{"network":"irc","direction":"outbound","room_join":{"room":"#a","occupant":"b"}}"##;
        let e = serde_json::from_str::<EventDoc>(room_join)
            .unwrap()
            .into_event("-", 0)
            .unwrap();
        assert_eq!(EventDoc::from(&e).kind.as_deref(), Some("membership"));
    }

    #[test]
    fn unknown_fields_are_errors() {
        let typo = r#"{"network":"xmpp","direction":"outbound","mesage":{}}"#;
        let err = serde_json::from_str::<EventDoc>(typo).unwrap_err();
        assert!(err.to_string().contains("mesage"), "{err}");
    }

    #[test]
    fn verdicts_serialise_flat() {
        let v = FinalVerdict {
            action: Action::Block("no".into()),
            decided_by: Some(Decider {
                plugin: "kw".into(),
                sha256: "ab".into(),
            }),
            tags: vec!["t".into()],
            removed_attachments: Vec::new(),
        };
        let json = serde_json::to_value(FinalVerdictDoc::from(&v)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"action":"block","reason":"no","decided_by":{"plugin":"kw","sha256":"ab"},"tags":["t"]})
        );
    }
}
