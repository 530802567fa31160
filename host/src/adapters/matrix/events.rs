//! Matrix requests to neutral events, and verdicts back into requests.
//!
//! One function per direction: [`read`] turns a judged request's JSON into
//! the event the chain sees; [`rewrite`] writes a rewrite's text back into
//! the JSON the homeserver receives.

use serde_json::{Map, Value};

use super::routes::{Membership, Route};
use crate::event::{
    Attachment, Conversation, EventKind, FileOffer, Message, NetworkId, Reaction, RoomChange,
    Subject,
};

/// The format of `formatted_body` that imgate reads as markup.
pub const HTML: &str = "org.matrix.custom.html";

/// A judged request, read.
#[derive(Debug, PartialEq)]
pub struct Reading {
    pub kind: EventKind,
    pub attributes: Vec<(String, String)>,
    pub ids: Vec<NetworkId>,
}

/// What a request's body says, for the routes that carry JSON; `user` is
/// the token's owner. `None` when there is nothing to judge (an event
/// type no policy reads, such as a typing notice sent as an event).
pub fn read(route: &Route, user: &str, body: &Map<String, Value>) -> Option<Reading> {
    match route {
        Route::Send {
            room,
            event_type,
            txn,
        } => sent(
            user,
            room,
            event_type,
            body,
            NetworkId::new("txn-id", txn.clone()),
        ),
        Route::Redact { room, event, txn } => {
            let reason = text(body, "reason").unwrap_or_default();
            Some(Reading {
                kind: EventKind::Message(Message {
                    retraction_of: Some(event.clone()),
                    body: reason,
                    ..in_room(user, room)
                }),
                attributes: vec![("matrix.type".into(), "m.room.redaction".into())],
                ids: vec![NetworkId::new("txn-id", txn.clone())],
            })
        }
        Route::State {
            room,
            event_type,
            key,
        } => state(user, room, event_type, key, body),
        Route::Membership { room, change } => Some(membership(user, room, *change, body)),
        Route::Upload | Route::Logout => None,
    }
}

/// A room event `user` sends (or sent: read from a timeline), known by
/// `id`.
fn sent(
    user: &str,
    room: &str,
    event_type: &str,
    content: &Map<String, Value>,
    id: NetworkId,
) -> Option<Reading> {
    let mut reading = match event_type {
        "m.room.message" => message(user, room, content),
        "m.room.encrypted" => Some(encrypted(user, room, content)),
        "m.reaction" => reaction(user, room, content),
        "m.sticker" => Some(sticker(user, room, content)),
        _ => None,
    }?;
    reading.ids = vec![id];
    reading
        .attributes
        .push(("matrix.type".into(), event_type.to_owned()));
    Some(reading)
}

/// An event a client is about to see, from a timeline or history: its
/// id, and what it says; `None` for what no policy reads.
pub fn read_delivered(event: &Map<String, Value>, room: &str) -> Option<(String, Reading)> {
    let id = text(event, "event_id")?;
    let sender = text(event, "sender")?;
    let event_type = text(event, "type")?;
    let content = event.get("content").and_then(Value::as_object)?;
    if event.contains_key("state_key") {
        return None;
    }
    let reading = sent(
        &sender,
        room,
        &event_type,
        content,
        NetworkId::new("event-id", id.clone()),
    )?;
    Some((id, reading))
}

/// What a client sees of an event the chain stopped: a redacted event
/// (content emptied, `redacted_because` saying why), as the homeserver
/// would show a deleted one, so the timeline keeps its shape.
pub fn stub(event: &mut Map<String, Value>, reason: &str) {
    event.insert("content".into(), Value::Object(Map::new()));
    let id = text(event, "event_id").unwrap_or_default();
    let redaction = serde_json::json!({
        "type": "m.room.redaction",
        "sender": event.get("sender").cloned().unwrap_or(Value::Null),
        "event_id": format!("$imgate-redaction-{}", id.trim_start_matches('$')),
        "origin_server_ts": event.get("origin_server_ts").cloned().unwrap_or(Value::Null),
        "redacts": id,
        "content": {"reason": reason},
    });
    let unsigned = event
        .entry("unsigned")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(unsigned) = unsigned.as_object_mut() {
        unsigned.insert("redacted_because".into(), redaction);
    }
}

/// A message in `room` from `user`, with nothing said yet.
fn in_room(user: &str, room: &str) -> Message {
    Message {
        id: None,
        sender: user.to_owned(),
        recipient: room.to_owned(),
        conversation: Conversation::Group(room.to_owned()),
        body: String::new(),
        markup: None,
        thread: None,
        reply_to: None,
        attachments: Vec::new(),
        encrypted: false,
        action: false,
        edit_of: None,
        retraction_of: None,
        subject: None,
    }
}

fn text(body: &Map<String, Value>, key: &str) -> Option<String> {
    body.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn relates_to(body: &Map<String, Value>) -> Option<&Map<String, Value>> {
    body.get("m.relates_to").and_then(Value::as_object)
}

/// `m.room.message`: text, notice, emote, image, file and the rest, with
/// its edit, reply and thread.
fn message(user: &str, room: &str, body: &Map<String, Value>) -> Option<Reading> {
    let mut m = in_room(user, room);
    let relation = relates_to(body);
    let rel_type = relation
        .and_then(|r| r.get("rel_type"))
        .and_then(Value::as_str);
    let target = relation
        .and_then(|r| r.get("event_id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    // An edit's text is its new content; `body` is a fallback ("* text").
    let content = match (
        rel_type,
        body.get("m.new_content").and_then(Value::as_object),
    ) {
        (Some("m.replace"), Some(new)) => {
            m.edit_of = target.clone();
            new
        }
        _ => body,
    };
    let msgtype = text(content, "msgtype").unwrap_or_default();
    m.body = text(content, "body").unwrap_or_default();
    if text(content, "format").as_deref() == Some(HTML) {
        m.markup = text(content, "formatted_body");
    }
    m.action = msgtype == "m.emote";
    if rel_type == Some("m.thread") {
        m.thread = target;
    }
    m.reply_to = relation
        .and_then(|r| r.get("m.in_reply_to"))
        .and_then(|r| r.get("event_id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(a) = attachment(content) {
        m.attachments.push(a);
    }
    Some(Reading {
        kind: EventKind::Message(m),
        attributes: vec![("matrix.msgtype".into(), msgtype)],
        ids: Vec::new(),
    })
}

/// The file an image, file, audio or video message carries.
fn attachment(content: &Map<String, Value>) -> Option<Attachment> {
    let url = content
        .get("url")
        .or_else(|| content.get("file").and_then(|f| f.get("url")))
        .and_then(Value::as_str)?;
    let info = content.get("info").and_then(Value::as_object);
    Some(Attachment {
        url: url.to_owned(),
        name: text(content, "filename").or_else(|| text(content, "body")),
        media_type: info.and_then(|i| text(i, "mimetype")),
        size: info.and_then(|i| i.get("size")).and_then(Value::as_u64),
    })
}

fn sticker(user: &str, room: &str, body: &Map<String, Value>) -> Reading {
    let mut m = in_room(user, room);
    m.body = text(body, "body").unwrap_or_default();
    m.attachments.extend(attachment(body));
    Reading {
        kind: EventKind::Message(m),
        attributes: Vec::new(),
        ids: Vec::new(),
    }
}

/// `m.room.encrypted`: judged on who, where and when only.
fn encrypted(user: &str, room: &str, body: &Map<String, Value>) -> Reading {
    let mut m = in_room(user, room);
    m.encrypted = true;
    let algorithm = text(body, "algorithm").unwrap_or_default();
    Reading {
        kind: EventKind::Message(m),
        attributes: vec![("matrix.algorithm".into(), algorithm)],
        ids: Vec::new(),
    }
}

/// `m.reaction`: an annotation of another event.
fn reaction(user: &str, room: &str, body: &Map<String, Value>) -> Option<Reading> {
    let relation = relates_to(body)?;
    let target = relation.get("event_id").and_then(Value::as_str)?;
    let key = relation
        .get("key")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Some(Reading {
        kind: EventKind::Reaction(Reaction {
            sender: user.to_owned(),
            recipient: room.to_owned(),
            conversation: Conversation::Group(room.to_owned()),
            target: target.to_owned(),
            keys: vec![key.to_owned()],
        }),
        attributes: Vec::new(),
        ids: Vec::new(),
    })
}

/// Room state a user writes: the name and the topic (as a subject), and
/// membership set as state.
fn state(
    user: &str,
    room: &str,
    event_type: &str,
    key: &str,
    body: &Map<String, Value>,
) -> Option<Reading> {
    let field = match event_type {
        "m.room.topic" => "topic",
        "m.room.name" => "name",
        "m.room.member" => {
            let change = match text(body, "membership").as_deref() {
                Some("join") => Membership::Join,
                Some("leave") if key == user => Membership::Leave,
                Some("leave") => Membership::Kick,
                Some("invite") => Membership::Invite,
                Some("ban") => Membership::Ban,
                _ => return None,
            };
            let mut target = body.clone();
            target.insert("user_id".into(), Value::String(key.to_owned()));
            return Some(membership(user, room, change, &target));
        }
        _ => return None,
    };
    Some(Reading {
        kind: EventKind::Subject(Subject {
            sender: user.to_owned(),
            room: room.to_owned(),
            text: text(body, field).unwrap_or_default(),
        }),
        attributes: vec![("matrix.type".into(), event_type.to_owned())],
        ids: Vec::new(),
    })
}

/// A membership change; the occupant is the user it happens to, who is
/// not the actor for an invite, kick or ban.
fn membership(user: &str, room: &str, change: Membership, body: &Map<String, Value>) -> Reading {
    let occupant = match change {
        Membership::Join | Membership::Leave => user.to_owned(),
        _ => text(body, "user_id").unwrap_or_default(),
    };
    let change_name = match change {
        Membership::Join => "join",
        Membership::Leave => "leave",
        Membership::Invite => "invite",
        Membership::Kick => "kick",
        Membership::Ban => "ban",
        Membership::Unban => "unban",
    };
    let room_change = RoomChange {
        room: room.to_owned(),
        occupant,
        nick: None,
        reason: text(body, "reason"),
    };
    let kind = match change {
        Membership::Join | Membership::Invite | Membership::Unban => {
            EventKind::RoomJoin(room_change)
        }
        _ => EventKind::RoomLeave(room_change),
    };
    Reading {
        kind,
        attributes: vec![
            ("matrix.membership".into(), change_name.into()),
            ("matrix.actor".into(), user.to_owned()),
        ],
        ids: Vec::new(),
    }
}

/// A media upload, read from its headers before its body is.
pub fn upload(
    user: &str,
    name: Option<String>,
    media_type: Option<String>,
    size: Option<u64>,
) -> EventKind {
    EventKind::FileOffer(FileOffer {
        id: None,
        sender: user.to_owned(),
        recipient: String::new(),
        name: name.unwrap_or_default(),
        size,
        media_type,
    })
}

/// `body` with its text replaced by `new`: the body, and the HTML body in
/// step with it (the new text, escaped), in an edit's new content and its
/// fallback too. Attachments in `removed` are taken out: a file message
/// that loses its file becomes a text message. `false` when there is no
/// text to replace.
pub fn rewrite(body: &mut Map<String, Value>, new: &str, removed: &[String]) -> bool {
    let is_edit = relates_to(body)
        .and_then(|r| r.get("rel_type"))
        .and_then(Value::as_str)
        == Some("m.replace");
    if is_edit {
        let Some(content) = body.get_mut("m.new_content").and_then(Value::as_object_mut) else {
            return false;
        };
        replace_text(content, new, removed);
        replace_text(body, &format!("* {new}"), removed);
        return true;
    }
    if !body.contains_key("body") {
        return false;
    }
    replace_text(body, new, removed);
    true
}

fn replace_text(content: &mut Map<String, Value>, new: &str, removed: &[String]) {
    content.insert("body".into(), Value::String(new.to_owned()));
    if content.contains_key("formatted_body") {
        content.insert("format".into(), Value::String(HTML.into()));
        content.insert("formatted_body".into(), Value::String(escape_html(new)));
    }
    let url = content
        .get("url")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if url.is_some_and(|u| removed.contains(&u)) {
        for key in ["url", "info", "file", "filename"] {
            content.remove(key);
        }
        content.insert("msgtype".into(), Value::String("m.text".into()));
    }
}

/// Text as HTML that shows it as it is.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("<br>"),
            c => out.push(c),
        }
    }
    out
}

/// How deeply `bytes` (JSON) nests, counted without parsing; stops
/// counting past `limit`.
pub fn depth_exceeds(bytes: &[u8], limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn send(event_type: &str) -> Route {
        Route::Send {
            room: "!r:x".into(),
            event_type: event_type.into(),
            txn: "t1".into(),
        }
    }

    fn message_of(r: &Reading) -> &Message {
        match &r.kind {
            EventKind::Message(m) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_text_message_with_html_a_reply_and_its_txn() {
        let body = obj(json!({
            "msgtype": "m.text", "body": "hello", "format": HTML,
            "formatted_body": "<b>hello</b>",
            "m.relates_to": {"m.in_reply_to": {"event_id": "$e1"}}
        }));
        let r = read(&send("m.room.message"), "@a:x", &body).unwrap();
        let m = message_of(&r);
        assert_eq!(
            (m.body.as_str(), m.markup.as_deref(), m.reply_to.as_deref()),
            ("hello", Some("<b>hello</b>"), Some("$e1"))
        );
        assert_eq!(m.conversation, Conversation::Group("!r:x".into()));
        assert_eq!(r.ids, vec![NetworkId::new("txn-id", "t1")]);
    }

    #[test]
    fn an_edit_is_judged_on_its_new_text_and_rewritten_in_both_places() {
        let mut body = obj(json!({
            "msgtype": "m.text", "body": "* new secret", "format": HTML,
            "formatted_body": "* new <i>secret</i>",
            "m.new_content": {"msgtype": "m.text", "body": "new secret", "format": HTML, "formatted_body": "new <i>secret</i>"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": "$orig"}
        }));
        let r = read(&send("m.room.message"), "@a:x", &body).unwrap();
        let m = message_of(&r);
        assert_eq!(
            (m.body.as_str(), m.edit_of.as_deref()),
            ("new secret", Some("$orig"))
        );
        assert!(rewrite(&mut body, "new [redacted] <3", &[]));
        assert_eq!(body["m.new_content"]["body"], "new [redacted] <3");
        assert_eq!(
            body["m.new_content"]["formatted_body"],
            "new [redacted] &lt;3"
        );
        assert_eq!(body["body"], "* new [redacted] <3");
    }

    #[test]
    fn emotes_files_threads_reactions_encryption_and_redactions() {
        let emote = read(&send("m.room.message"), "@a:x", &obj(json!({"msgtype": "m.emote", "body": "waves", "m.relates_to": {"rel_type": "m.thread", "event_id": "$root"}}))).unwrap();
        assert!(message_of(&emote).action);
        assert_eq!(message_of(&emote).thread.as_deref(), Some("$root"));
        let file = read(&send("m.room.message"), "@a:x", &obj(json!({"msgtype": "m.file", "body": "plan.pdf", "url": "mxc://x/abc", "info": {"mimetype": "application/pdf", "size": 1234}}))).unwrap();
        assert_eq!(
            message_of(&file).attachments,
            vec![Attachment {
                url: "mxc://x/abc".into(),
                name: Some("plan.pdf".into()),
                media_type: Some("application/pdf".into()),
                size: Some(1234)
            }]
        );
        let reaction = read(&send("m.reaction"), "@a:x", &obj(json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": "$m", "key": "👍"}}))).unwrap();
        assert!(
            matches!(&reaction.kind, EventKind::Reaction(r) if r.target == "$m" && r.keys == ["👍"])
        );
        let e2e = read(
            &send("m.room.encrypted"),
            "@a:x",
            &obj(json!({"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AAA"})),
        )
        .unwrap();
        assert!(message_of(&e2e).encrypted && message_of(&e2e).body.is_empty());
        let redact = Route::Redact {
            room: "!r:x".into(),
            event: "$m".into(),
            txn: "t2".into(),
        };
        let r = read(&redact, "@a:x", &obj(json!({"reason": "oops"}))).unwrap();
        assert_eq!(message_of(&r).retraction_of.as_deref(), Some("$m"));
        assert_eq!(read(&send("m.typing.custom"), "@a:x", &Map::new()), None);
    }

    #[test]
    fn state_and_membership_name_actor_and_target() {
        let topic = Route::State {
            room: "!r:x".into(),
            event_type: "m.room.topic".into(),
            key: String::new(),
        };
        let r = read(&topic, "@a:x", &obj(json!({"topic": "plans"}))).unwrap();
        assert!(matches!(&r.kind, EventKind::Subject(s) if s.text == "plans"));
        let kick = Route::Membership {
            room: "!r:x".into(),
            change: Membership::Kick,
        };
        let r = read(
            &kick,
            "@a:x",
            &obj(json!({"user_id": "@b:x", "reason": "bye"})),
        )
        .unwrap();
        assert!(
            matches!(&r.kind, EventKind::RoomLeave(c) if c.occupant == "@b:x" && c.reason.as_deref() == Some("bye"))
        );
        assert!(
            r.attributes
                .contains(&("matrix.actor".into(), "@a:x".into()))
        );
        let invite_state = Route::State {
            room: "!r:x".into(),
            event_type: "m.room.member".into(),
            key: "@c:x".into(),
        };
        let r = read(&invite_state, "@a:x", &obj(json!({"membership": "invite"}))).unwrap();
        assert!(matches!(&r.kind, EventKind::RoomJoin(c) if c.occupant == "@c:x"));
    }

    #[test]
    fn a_file_that_loses_its_attachment_becomes_text() {
        let mut body = obj(
            json!({"msgtype": "m.image", "body": "cat.png", "url": "mxc://x/cat", "info": {"size": 1}}),
        );
        assert!(rewrite(
            &mut body,
            "[image removed]",
            &["mxc://x/cat".into()]
        ));
        assert_eq!(
            Value::Object(body),
            json!({"msgtype": "m.text", "body": "[image removed]"})
        );
    }

    #[test]
    fn a_delivered_event_is_read_by_its_id_and_a_stub_keeps_its_place() {
        let mut event = obj(json!({
            "type": "m.room.message", "event_id": "$e1", "sender": "@b:x", "origin_server_ts": 5,
            "content": {"msgtype": "m.text", "body": "secret"}
        }));
        let (id, r) = read_delivered(&event, "!r:x").unwrap();
        assert_eq!(
            (id.as_str(), message_of(&r).sender.as_str()),
            ("$e1", "@b:x")
        );
        assert_eq!(r.ids, vec![NetworkId::new("event-id", "$e1")]);
        stub(&mut event, "blocked by policy");
        assert_eq!(event["content"], json!({}));
        assert_eq!(event["unsigned"]["redacted_because"]["redacts"], "$e1");
        assert_eq!(
            event["unsigned"]["redacted_because"]["content"]["reason"],
            "blocked by policy"
        );
        let state = obj(
            json!({"type": "m.room.topic", "event_id": "$t", "sender": "@b:x", "state_key": "", "content": {"topic": "t"}}),
        );
        assert!(read_delivered(&state, "!r:x").is_none());
    }

    #[test]
    fn depth_is_counted_outside_strings() {
        assert!(!depth_exceeds(br#"{"a":{"b":"{{{{{{"}}"#, 2));
        assert!(depth_exceeds(br#"{"a":{"b":{"c":1}}}"#, 2));
        assert!(!depth_exceeds(br#"{"a":"\"{{{"}"#, 1));
    }
}
