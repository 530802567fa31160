//! The Matrix relay identity: a bot account on the homeserver (the
//! `[matrix]` upstream), logged in with its password, in its rooms. It
//! hears what they say through its own `/sync` and writes the bridge's
//! copies as `m.room.message` events in the configured format. Matrix has
//! relations, so a copy keeps them: an edit is an `m.replace`, a reply an
//! `m.in_reply_to`, a retraction a redaction, a reaction an annotation.
//! A user whose message was not bridged is told so in a direct room.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::{Method, Request, StatusCode, header};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value, json};
use tokio::sync::watch;

use super::upstream::{Homeserver, Upstream, full};
use super::{MatrixConfig, events};
use crate::adapters::AdapterError;
use crate::adapters::relay::config::{MatrixRelayConfig, render, secret};
use crate::adapters::relay::{Command, Link, RelayHandle, RelayStatus, Timing, relay_session};
use crate::event::bridge::Copy;
use crate::event::{Direction, Event, Judge, NetworkId, event_id_text, new_event_uuid_at, now_ms};

/// How long the relay's `/sync` waits for something new.
const SYNC_WAIT_MS: u64 = 30_000;
/// The largest `/sync` answer the relay reads.
const MAX_SYNC_BYTES: usize = 64 << 20;

/// Starts the relay; it connects in the background and keeps connected.
///
/// # Errors
/// The `[matrix]` section's CA file is unusable.
pub fn start(
    relay: &MatrixRelayConfig,
    format: &str,
    matrix: &MatrixConfig,
    judge: Arc<dyn Judge>,
    timing: Timing,
    stopping: watch::Receiver<bool>,
) -> Result<(RelayHandle, tokio::task::JoinHandle<()>), AdapterError> {
    let homeserver = super::homeserver(matrix)?;
    let status = RelayStatus::new("matrix", &relay.user, &relay.rooms);
    let session = relay_session("matrix", &relay.user);
    let relay = Arc::new(relay.clone());
    let format: Arc<str> = Arc::from(format);
    Ok(crate::adapters::relay::start(
        status,
        session,
        judge,
        timing,
        stopping,
        move |link| {
            let (homeserver, relay, format) = (homeserver.clone(), relay.clone(), format.clone());
            async move {
                let mut link = link;
                let result = connection(homeserver, &relay, &format, &mut link).await;
                (result, link)
            }
        },
    ))
}

/// The relay signed in: its connections, token and rooms.
struct Bot {
    sends: Upstream,
    token: String,
    user_id: String,
    /// Room id → the name the config gave it (an id or an alias).
    names: HashMap<String, String>,
    /// The config's name → room id.
    ids: HashMap<String, String>,
    /// A user → the direct room the relay tells them things in.
    direct: HashMap<String, String>,
}

/// One connection: sign in, join, then hear and write until it breaks.
async fn connection(
    homeserver: Arc<Homeserver>,
    relay: &MatrixRelayConfig,
    format: &str,
    link: &mut Link,
) -> Result<(), String> {
    let sends = Upstream::new(homeserver.clone());
    let syncs = Upstream::new(homeserver);
    let password = secret(&relay.password, &relay.password_file)?;
    let login = json!({
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": relay.user},
        "password": password,
        "initial_device_display_name": "imgate relay",
    });
    let signed_in = call(
        &sends,
        Method::POST,
        "/_matrix/client/v3/login",
        None,
        Some(login),
    )
    .await?;
    let token = text_of(&signed_in, "access_token")?;
    let user_id = text_of(&signed_in, "user_id")?;
    let mut bot = Bot {
        sends,
        token,
        user_id,
        names: HashMap::new(),
        ids: HashMap::new(),
        direct: HashMap::new(),
    };
    for room in &relay.rooms {
        let path = format!("/_matrix/client/v3/join/{}", encode(room));
        let joined = call(
            &bot.sends,
            Method::POST,
            &path,
            Some(&bot.token),
            Some(json!({})),
        )
        .await?;
        let id = text_of(&joined, "room_id")?;
        bot.names.insert(id.clone(), room.clone());
        bot.ids.insert(room.clone(), id);
    }
    // Start from now: what was said before the relay came is not bridged.
    let filter = encode(r#"{"room":{"timeline":{"limit":0}}}"#);
    let first = call(
        &syncs,
        Method::GET,
        &format!("/_matrix/client/v3/sync?timeout=0&filter={filter}"),
        Some(&bot.token),
        None,
    )
    .await?;
    let mut since = text_of(&first, "next_batch")?;
    link.status.up();
    tracing::info!(user = %bot.user_id, rooms = bot.ids.len(), "matrix relay up");
    loop {
        let path = format!(
            "/_matrix/client/v3/sync?timeout={SYNC_WAIT_MS}&since={}",
            encode(&since)
        );
        let token = bot.token.clone();
        let sync = call(&syncs, Method::GET, &path, Some(&token), None);
        tokio::pin!(sync);
        let answer = loop {
            tokio::select! {
                answer = &mut sync => break answer?,
                command = link.commands.recv() => match command {
                    Some(Command::Send(copy, reply)) => {
                        let _ = reply.send(write(&bot, format, &copy).await);
                    }
                    Some(Command::Tell { who, text, .. }) => {
                        if let Err(e) = tell(&mut bot, &who, &text).await {
                            tracing::warn!(%who, error = %e, "the matrix relay could not tell a user");
                        }
                    }
                    None => return Ok(()),
                },
            }
        };
        since = text_of(&answer, "next_batch")?;
        for event in heard(&bot, &answer, link.session.clone()) {
            link.heard(event).await;
        }
    }
}

/// What the relay's rooms said, from others, as events.
fn heard(bot: &Bot, sync: &Value, session: Arc<crate::event::Session>) -> Vec<Event> {
    let mut out = Vec::new();
    let Some(rooms) = sync.pointer("/rooms/join").and_then(Value::as_object) else {
        return out;
    };
    for (room_id, joined) in rooms {
        let Some(name) = bot.names.get(room_id) else {
            continue;
        };
        let timeline = joined
            .pointer("/timeline/events")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for event in timeline.iter().filter_map(Value::as_object) {
            if event.get("sender").and_then(Value::as_str) == Some(bot.user_id.as_str()) {
                continue;
            }
            let Some((_, reading)) = events::read_delivered(event, name) else {
                continue;
            };
            let at = now_ms();
            out.push(Event {
                id: event_id_text(new_event_uuid_at(at)),
                network: "matrix".into(),
                direction: Direction::Inbound,
                session: session.clone(),
                timestamp: at,
                kind: reading.kind,
                tags: Vec::new(),
                attributes: reading.attributes,
                ids: reading.ids,
            });
        }
    }
    out
}

/// Tells `who` (a user id) `text` privately: an `m.notice` in a direct
/// room the relay makes with them the first time, and keeps.
async fn tell(bot: &mut Bot, who: &str, text: &str) -> Result<(), String> {
    if !who.starts_with('@') {
        return Err("not a Matrix user".into());
    }
    let room = match bot.direct.get(who) {
        Some(room) => room.clone(),
        None => {
            let made = call(
                &bot.sends,
                Method::POST,
                "/_matrix/client/v3/createRoom",
                Some(&bot.token),
                Some(json!({"is_direct": true, "invite": [who], "preset": "trusted_private_chat"})),
            )
            .await?;
            let room = text_of(&made, "room_id")?;
            bot.direct.insert(who.to_owned(), room.clone());
            room
        }
    };
    let path = format!(
        "/_matrix/client/v3/rooms/{}/send/m.room.message/{}",
        encode(&room),
        encode(&event_id_text(new_event_uuid_at(now_ms())))
    );
    let notice = json!({"msgtype": "m.notice", "body": text});
    call(
        &bot.sends,
        Method::PUT,
        &path,
        Some(&bot.token),
        Some(notice),
    )
    .await?;
    Ok(())
}

/// Writes one copy into its room: the ids the homeserver gave it.
async fn write(bot: &Bot, format: &str, copy: &Copy) -> Result<Vec<NetworkId>, String> {
    let room = bot
        .ids
        .get(&copy.to)
        .or_else(|| bot.names.contains_key(&copy.to).then_some(&copy.to))
        .ok_or_else(|| format!("the matrix relay is not in {}", copy.to))?;
    let text = render(
        format,
        copy.author.as_deref(),
        &copy.from_network,
        &copy.body,
    );
    let target = copy.relation.as_ref().and_then(|r| {
        let id = r.ids.iter().find(|i| i.kind == "event-id")?;
        Some((r.rel_type.as_str(), id.value.clone(), r.key.clone()))
    });
    // The ticket is the transaction: a copy written again is one event.
    let txn = encode(&copy.id);
    let room = encode(room);
    let (path, content) = match target {
        Some(("retraction", event, _)) => (
            format!(
                "/_matrix/client/v3/rooms/{room}/redact/{}/{txn}",
                encode(&event)
            ),
            json!({"reason": text}),
        ),
        Some(("reaction", event, key)) => (
            format!("/_matrix/client/v3/rooms/{room}/send/m.reaction/{txn}"),
            json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": event, "key": key.unwrap_or(copy.body.clone())}}),
        ),
        other => {
            let msgtype = if copy.emote { "m.emote" } else { "m.text" };
            let mut content = Map::new();
            content.insert("msgtype".into(), json!(msgtype));
            match other {
                Some(("edit", event, _)) => {
                    content.insert("body".into(), json!(format!("* {text}")));
                    content.insert(
                        "m.new_content".into(),
                        json!({"msgtype": msgtype, "body": text}),
                    );
                    content.insert(
                        "m.relates_to".into(),
                        json!({"rel_type": "m.replace", "event_id": event}),
                    );
                }
                Some(("reply", event, _)) => {
                    content.insert("body".into(), json!(text));
                    content.insert(
                        "m.relates_to".into(),
                        json!({"m.in_reply_to": {"event_id": event}}),
                    );
                }
                _ => {
                    content.insert("body".into(), json!(text));
                }
            }
            (
                format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}"),
                Value::Object(content),
            )
        }
    };
    let answer = call(
        &bot.sends,
        Method::PUT,
        &path,
        Some(&bot.token),
        Some(content),
    )
    .await?;
    let id = text_of(&answer, "event_id")?;
    Ok(vec![NetworkId::new("event-id", id)])
}

/// One call to the homeserver: its JSON answer, or why there is none.
async fn call(
    upstream: &Upstream,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Result<Value, String> {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let bytes = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    if !bytes.is_empty() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let request = request.body(full(bytes)).map_err(|e| e.to_string())?;
    let response = upstream.send(request).await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_SYNC_BYTES)
        .collect()
        .await
        .map_err(|e| format!("reading the homeserver's answer: {e}"))?
        .to_bytes();
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if status != StatusCode::OK {
        let why = value
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or_default();
        return Err(format!("{path}: {status} {why}"));
    }
    Ok(value)
}

fn text_of(value: &Value, key: &str) -> Result<String, String> {
    value
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("the homeserver's answer has no {key}"))
}

fn encode(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}
