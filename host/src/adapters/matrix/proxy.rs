//! One request from a Matrix client: passed through as it is, or read,
//! judged and answered in Matrix's terms.
//!
//! ```text
//! request ─▶ route? ─ no ──────────────────────────────▶ homeserver (streamed)
//!              └ yes ─▶ token's owner ─▶ body (bounded) ─▶ event ─▶ judge
//!                        allow | rewrite ─▶ homeserver; block | drop ─▶ answered here
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde_json::{Map, Value, json};

use super::events::{self, Reading};
use super::memory::{Bounded, Decided, Key, Known, Owner, key_of};
use super::routes::{self, Route};
use super::upstream::{ProxyBody, Upstream, full, streamed};
use crate::adapters::review::{Held, ReviewCall, Ruling};
use crate::adapters::{Ask, Gate, Judged, Seen};
use crate::event::{Action, Direction, EventKind, Session};

/// What every connection of the adapter shares.
pub struct Shared {
    pub gate: Gate,
    pub max_json_bytes: usize,
    pub max_json_depth: usize,
    /// How long a judged JSON body may take to arrive.
    pub body_timeout: std::time::Duration,
    pub tokens: Bounded<Key, Owner>,
    pub transactions: Bounded<Key, Decided>,
    /// Verdicts on delivered events, by event id: each is judged once
    /// however many clients see it, and however often.
    pub delivered: Bounded<Key, Decided>,
    pub max_listing_bytes: usize,
    /// Sends held for review, by event id, until a ruling.
    pub held: std::sync::Mutex<Held<HeldRequest>>,
    /// Where reviewers' rulings on held sends arrive.
    pub rulings: tokio::sync::mpsc::Sender<ReviewCall>,
}

/// A Matrix error answer, as the homeserver would give it.
pub fn error(status: StatusCode, errcode: &str, message: &str) -> Response<ProxyBody> {
    let body = json!({"errcode": errcode, "error": message}).to_string();
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn ok_json(value: Value) -> Response<ProxyBody> {
    let mut r = Response::new(full(value.to_string()));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Headers that belong to one hop, not to the request.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for h in HOP_BY_HOP {
        headers.remove(h);
    }
}

/// Answers one request.
pub async fn handle(
    shared: Arc<Shared>,
    upstream: Arc<Upstream>,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    let route = routes::route(request.method(), request.uri().path());
    let token = routes::access_token(
        request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
        request.uri().query(),
    );
    let listing = routes::listing(request.method(), request.uri().path());
    let judged = route.is_some() || listing.is_some();
    let Some(token) = token.filter(|_| judged) else {
        // Not judged (or not signed in: the homeserver refuses it).
        let (parts, body) = request.into_parts();
        return forward(&upstream, Request::from_parts(parts, streamed(body))).await;
    };
    let session = match owner(&shared, &upstream, &token, peer).await {
        Ok(Owner::Known(known)) => known.session.clone(),
        Ok(Owner::Refused(reason)) => {
            return error(
                StatusCode::FORBIDDEN,
                "M_FORBIDDEN",
                &format!("session refused: {reason}"),
            );
        }
        // An unknown token: the homeserver gives its own answer.
        Err(Unknown) => {
            let (parts, body) = request.into_parts();
            return forward(&upstream, Request::from_parts(parts, streamed(body))).await;
        }
    };
    let route = match (route, listing) {
        (Some(route), _) => route,
        (None, Some(listing)) => {
            let (parts, body) = request.into_parts();
            let request = Request::from_parts(parts, streamed(body));
            return inbound(&shared, &upstream, &session, listing, request).await;
        }
        (None, None) => {
            let (parts, body) = request.into_parts();
            return forward(&upstream, Request::from_parts(parts, streamed(body))).await;
        }
    };
    match route {
        Route::Upload => upload(&shared, &upstream, &session, request).await,
        Route::Logout => {
            shared.gate.judge(
                &session,
                Direction::Outbound,
                EventKind::SessionEnd("logged out".into()),
                Vec::new(),
            );
            shared.tokens.forget(&key_of(&[&token]));
            let (parts, body) = request.into_parts();
            forward(&upstream, Request::from_parts(parts, streamed(body))).await
        }
        route => json_request(&shared, &upstream, &session, &token, route, request).await,
    }
}

/// The token is not one the homeserver knows.
struct Unknown;

/// Whose `token` is: remembered, or asked of the homeserver once
/// (`/account/whoami`), when the session starts and is judged.
async fn owner(
    shared: &Shared,
    upstream: &Upstream,
    token: &str,
    peer: SocketAddr,
) -> Result<Owner, Unknown> {
    let key = key_of(&[token]);
    if let Some(owner) = shared.tokens.get(&key) {
        return Ok(owner);
    }
    let ask = Request::get("/_matrix/client/v3/account/whoami")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(full(Bytes::new()))
        .map_err(|_| Unknown)?;
    let response = upstream.send(ask).await.map_err(|_| Unknown)?;
    if response.status() != StatusCode::OK {
        return Err(Unknown);
    }
    let body = Limited::new(response.into_body(), 64 * 1024)
        .collect()
        .await
        .map_err(|_| Unknown)?
        .to_bytes();
    let user = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("user_id")?.as_str().map(str::to_owned))
        .ok_or(Unknown)?;
    let session = Arc::new(Session {
        id: crate::event::new_session_id("matrix"),
        user,
        peer: peer.to_string(),
    });
    let owner = match shared.gate.judge(
        &session,
        Direction::Outbound,
        EventKind::SessionStart,
        Vec::new(),
    ) {
        Action::Block(reason) | Action::Hold(reason) => Owner::Refused(reason),
        Action::Drop => Owner::Refused("not allowed".into()),
        _ => Owner::Known(Arc::new(Known {
            _door: shared
                .gate
                .reviews()
                .open_onto(&session.id, shared.rulings.clone()),
            session: session.clone(),
        })),
    };
    match &owner {
        Owner::Known(k) => {
            tracing::info!(user = %k.session.user, session = %k.session.id, "session started")
        }
        Owner::Refused(reason) => tracing::info!(user = %session.user, %reason, "session refused"),
    }
    Ok(shared.tokens.keep(key, owner))
}

/// A media upload: judged from its headers (name, type, size) before its
/// body is read, so a refused file is never taken in.
async fn upload(
    shared: &Shared,
    upstream: &Upstream,
    session: &Arc<Session>,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    let headers = request.headers();
    let text = |h: header::HeaderName| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let size = text(header::CONTENT_LENGTH).and_then(|s| s.parse::<u64>().ok());
    let name = routes::query_param(request.uri().query(), "filename");
    let kind = events::upload(&session.user, name, text(header::CONTENT_TYPE), size);
    let judged = shared.gate.rule(Ask {
        session,
        direction: Direction::Outbound,
        kind,
        attributes: Vec::new(),
        ids: Vec::new(),
        seen: Seen::Alone,
    });
    match judged.action {
        Action::Allow | Action::Rewrite(_) => {
            let (parts, body) = request.into_parts();
            forward(upstream, Request::from_parts(parts, streamed(body))).await
        }
        Action::Block(reason) | Action::Hold(reason) => {
            error(StatusCode::FORBIDDEN, "M_FORBIDDEN", &reason)
        }
        Action::Drop => error(StatusCode::FORBIDDEN, "M_FORBIDDEN", "upload not allowed"),
    }
}

/// A request with a JSON body: read within the limits, judged, then sent
/// on (as it was, or rewritten) or answered here.
async fn json_request(
    shared: &Shared,
    upstream: &Upstream,
    session: &Arc<Session>,
    token: &str,
    route: Route,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    let (parts, body) = request.into_parts();
    // A judged body is small: one that trickles in is cut off, so a slow
    // client cannot hold a connection open on it.
    let read = tokio::time::timeout(
        shared.body_timeout,
        Limited::new(body, shared.max_json_bytes).collect(),
    );
    let Ok(read) = read.await else {
        return error(
            StatusCode::REQUEST_TIMEOUT,
            "M_UNKNOWN",
            &format!("request body not sent within {:?}", shared.body_timeout),
        );
    };
    let bytes = match read {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "M_TOO_LARGE",
                &format!("request body over {} bytes", shared.max_json_bytes),
            );
        }
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "M_UNKNOWN",
                "request body cut short",
            );
        }
    };
    // A membership change may come with no body at all.
    let empty = bytes.iter().all(u8::is_ascii_whitespace);
    let parsed = if empty && matches!(route, Route::Membership { .. }) {
        Ok(Map::new())
    } else {
        parse(&bytes, shared.max_json_depth)
    };
    let mut object = match parsed {
        Ok(object) => object,
        Err(answer) => return answer,
    };
    let transaction = matches!(route, Route::Send { .. } | Route::Redact { .. })
        .then(|| key_of(&[token, parts.uri.path()]));
    let decided = match transaction.and_then(|k| shared.transactions.get(&k)) {
        // A retry: the same answer, not a second judgment.
        Some(decided) => decided,
        None => {
            let Some(reading) = events::read(&route, &session.user, &object) else {
                return forward(upstream, Request::from_parts(parts, full(bytes))).await;
            };
            let judged = judge(&shared.gate, session, reading);
            if let Some(event_id) = &judged.event_id {
                hold(shared, event_id, token, &parts, &bytes);
            }
            let decided = Decided::from(&judged);
            match transaction {
                Some(k) => shared.transactions.keep(k, decided),
                None => decided,
            }
        }
    };
    let sends = matches!(route, Route::Send { .. });
    match decided.action {
        Action::Allow if sends => {
            note_sent(shared, upstream, Request::from_parts(parts, full(bytes))).await
        }
        Action::Allow => forward(upstream, Request::from_parts(parts, full(bytes))).await,
        Action::Rewrite(text) => {
            let body = if events::rewrite(&mut object, &text, &decided.removed_attachments) {
                Bytes::from(Value::Object(object).to_string())
            } else {
                bytes
            };
            let mut parts = parts;
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
            let request = Request::from_parts(parts, full(body));
            if sends {
                note_sent(shared, upstream, request).await
            } else {
                forward(upstream, request).await
            }
        }
        Action::Block(reason) => error(StatusCode::FORBIDDEN, "M_FORBIDDEN", &reason),
        // The client is told it was sent; it is, if a reviewer releases it.
        Action::Hold(_) => {
            let id = transaction.unwrap_or_else(|| key_of(&[token, parts.uri.path(), "hold"]));
            ok_json(json!({"event_id": made_up_id("held", &id)}))
        }
        Action::Drop => match route {
            // The client is told it was sent; nobody receives it.
            Route::Send { .. } | Route::Redact { .. } | Route::State { .. } => {
                let id = transaction.unwrap_or_else(|| key_of(&[token, parts.uri.path(), "drop"]));
                ok_json(json!({"event_id": made_up_id("dropped", &id)}))
            }
            _ => error(StatusCode::FORBIDDEN, "M_FORBIDDEN", "not allowed"),
        },
    }
}

/// The event id a dropped or held event is answered with: the same for
/// a retry.
fn made_up_id(what: &str, key: &Key) -> String {
    let hex: String = key[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("$imgate-{what}-{hex}")
}

/// A request held for review: what to send, as its user, on release.
pub struct HeldRequest {
    token: String,
    method: hyper::Method,
    path: String,
    content_type: Option<HeaderValue>,
    body: Bytes,
}

/// Keeps a held request under its event id until a ruling.
fn hold(
    shared: &Shared,
    event_id: &str,
    token: &str,
    parts: &hyper::http::request::Parts,
    body: &Bytes,
) {
    let request = HeldRequest {
        token: token.to_owned(),
        method: parts.method.clone(),
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned()),
        content_type: parts.headers.get(header::CONTENT_TYPE).cloned(),
        body: body.clone(),
    };
    let size = request.body.len() + request.path.len();
    let mut held = shared.held.lock().unwrap_or_else(|p| p.into_inner());
    held.keep(event_id.to_owned(), size, request);
}

/// Acts on reviewers' rulings until the channel closes: a released send
/// goes to the homeserver as its user sent it (the same transaction, so
/// the sender's client matches it to what it showed); a rejected one is
/// never sent.
pub async fn rule_on_held(
    shared: Arc<Shared>,
    upstream: Upstream,
    mut rulings: tokio::sync::mpsc::Receiver<ReviewCall>,
) {
    while let Some(call) = rulings.recv().await {
        let held = shared
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(&call.event_id);
        let answer = match (held, call.ruling) {
            (Err(e), _) => Err(e),
            (Ok(request), Ruling::Release) => release(&upstream, request).await,
            (Ok(_), Ruling::Reject(_)) => {
                Ok("rejected: never sent (the sender's client showed it as sent)".into())
            }
        };
        let _ = call.reply.send(answer);
    }
}

async fn release(upstream: &Upstream, held: HeldRequest) -> Result<String, String> {
    let mut request = Request::builder()
        .method(held.method)
        .uri(held.path)
        .header(header::AUTHORIZATION, format!("Bearer {}", held.token));
    if let Some(t) = held.content_type {
        request = request.header(header::CONTENT_TYPE, t);
    }
    let request = request.body(full(held.body)).map_err(|e| e.to_string())?;
    match send(upstream, request).await {
        Ok(r) if r.status() == StatusCode::OK => Ok("delivered".into()),
        Ok(r) => Err(format!("the homeserver refused it ({})", r.status())),
        Err(_) => Err("the homeserver could not be reached".into()),
    }
}

fn judge(gate: &Gate, session: &Arc<Session>, reading: Reading) -> Judged {
    gate.rule(Ask {
        session,
        direction: Direction::Outbound,
        kind: reading.kind,
        attributes: reading.attributes,
        ids: reading.ids,
        seen: Seen::Alone,
    })
}

/// A judged body: UTF-8 JSON, an object, within the depth limit.
#[allow(clippy::result_large_err)]
fn parse(bytes: &[u8], max_depth: usize) -> Result<Map<String, Value>, Response<ProxyBody>> {
    if std::str::from_utf8(bytes).is_err() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "M_NOT_JSON",
            "content is not UTF-8",
        ));
    }
    if events::depth_exceeds(bytes, max_depth) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "M_BAD_JSON",
            &format!("JSON nested deeper than {max_depth}"),
        ));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(error(
            StatusCode::BAD_REQUEST,
            "M_BAD_JSON",
            "content must be a JSON object",
        )),
        Err(e) => Err(error(
            StatusCode::BAD_REQUEST,
            "M_NOT_JSON",
            &format!("content is not JSON: {e}"),
        )),
    }
}

/// Sends `request` to the homeserver and streams its answer back.
async fn forward(upstream: &Upstream, request: Request<ProxyBody>) -> Response<ProxyBody> {
    match send(upstream, request).await {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            Response::from_parts(parts, streamed(body))
        }
        Err(answer) => answer,
    }
}

/// Sends `request` to the homeserver; its answer's head, or what to tell
/// the client when there is none.
#[allow(clippy::result_large_err)]
async fn send(
    upstream: &Upstream,
    mut request: Request<ProxyBody>,
) -> Result<Response<Incoming>, Response<ProxyBody>> {
    strip_hop_by_hop(request.headers_mut());
    match upstream.send(request).await {
        Ok(mut response) => {
            strip_hop_by_hop(response.headers_mut());
            Ok(response)
        }
        Err(e) => {
            tracing::warn!(error = %e, "matrix request not passed on");
            Err(error(StatusCode::BAD_GATEWAY, "M_UNKNOWN", &e.to_string()))
        }
    }
}

/// A sent event the homeserver accepted: its id takes the verdict it was
/// sent under (what was stored is what was allowed), so no client's sync
/// judges it again.
async fn note_sent(
    shared: &Shared,
    upstream: &Upstream,
    request: Request<ProxyBody>,
) -> Response<ProxyBody> {
    let response = match send(upstream, request).await {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let (parts, body) = response.into_parts();
    if parts.status != StatusCode::OK {
        return Response::from_parts(parts, streamed(body));
    }
    let Ok(collected) = Limited::new(body, 64 * 1024).collect().await else {
        return error(
            StatusCode::BAD_GATEWAY,
            "M_UNKNOWN",
            "the homeserver's answer was cut short",
        );
    };
    let bytes = collected.to_bytes();
    if let Some(id) = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v.get("event_id")?.as_str().map(str::to_owned))
    {
        let allowed = Decided {
            action: Action::Allow,
            removed_attachments: Vec::new(),
        };
        shared.delivered.keep(key_of(&[&id]), allowed);
    }
    Response::from_parts(parts, full(bytes))
}

/// A listing: the homeserver's answer, with each event in it judged as
/// this session receives it (once per gateway, by event id). A stopped
/// event becomes a redacted stub; a rewritten one shows the new text.
async fn inbound(
    shared: &Shared,
    upstream: &Upstream,
    session: &Arc<Session>,
    listing: routes::Listing,
    request: Request<ProxyBody>,
) -> Response<ProxyBody> {
    let response = match send(upstream, request).await {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let (mut parts, body) = response.into_parts();
    if parts.status != StatusCode::OK {
        return Response::from_parts(parts, streamed(body));
    }
    let bytes = match Limited::new(body, shared.max_listing_bytes).collect().await {
        Ok(c) => c.to_bytes(),
        // Shown unjudged, it would be a way around policy.
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            let why = format!(
                "the homeserver's answer is over {} bytes, too large to judge (a sync filter with a smaller timeline limit helps)",
                shared.max_listing_bytes
            );
            return error(StatusCode::BAD_GATEWAY, "M_TOO_LARGE", &why);
        }
        Err(_) => {
            return error(
                StatusCode::BAD_GATEWAY,
                "M_UNKNOWN",
                "the homeserver's answer was cut short",
            );
        }
    };
    let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
        return error(
            StatusCode::BAD_GATEWAY,
            "M_UNKNOWN",
            "the homeserver's answer is not JSON",
        );
    };
    let mut changed = false;
    super::inbound::each_event(listing, &mut value, &mut |event, room| {
        changed |= judge_delivered(shared, session, event, room);
    });
    let body = if changed {
        Bytes::from(value.to_string())
    } else {
        bytes
    };
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    Response::from_parts(parts, full(body))
}

/// One delivered event, judged (or its verdict reused) and applied in
/// place; whether it changed.
fn judge_delivered(
    shared: &Shared,
    session: &Arc<Session>,
    event: &mut Map<String, Value>,
    room: &str,
) -> bool {
    let Some((id, reading)) = events::read_delivered(event, room) else {
        return false;
    };
    let key = key_of(&[&id]);
    let decided = match shared.delivered.get(&key) {
        Some(d) => d,
        None => {
            // Clients syncing the same event at once: one judges it.
            let stem = shared.gate.judgments().stem(&[&id]);
            let judged = shared.gate.rule(Ask {
                session,
                direction: Direction::Inbound,
                kind: reading.kind,
                attributes: reading.attributes,
                ids: reading.ids,
                seen: Seen::Named(stem),
            });
            shared.delivered.keep(key, Decided::from(&judged))
        }
    };
    match decided.action {
        Action::Allow => false,
        Action::Rewrite(text) => event
            .get_mut("content")
            .and_then(Value::as_object_mut)
            .is_some_and(|c| events::rewrite(c, &text, &decided.removed_attachments)),
        Action::Block(reason) | Action::Hold(reason) => {
            events::stub(event, &reason);
            true
        }
        Action::Drop => {
            events::stub(event, "removed by policy");
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(r: Result<Map<String, Value>, Response<ProxyBody>>) -> (u16, Value) {
        let r = r.unwrap_err();
        let status = r.status().as_u16();
        let body = r.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn bad_bodies_get_matrix_errors() {
        let (s, v) = answer(parse(b"\xff\xfe", 8)).await;
        assert_eq!((s, v["errcode"].as_str()), (400, Some("M_NOT_JSON")));
        let (s, v) = answer(parse(b"{\"body\": ", 8)).await;
        assert_eq!((s, v["errcode"].as_str()), (400, Some("M_NOT_JSON")));
        let (_, v) = answer(parse(b"[1]", 8)).await;
        assert_eq!(v["errcode"], "M_BAD_JSON");
        let deep = format!(
            "{}{}",
            "{\"a\":".repeat(40),
            "1".to_owned() + &"}".repeat(40)
        );
        let (_, v) = answer(parse(deep.as_bytes(), 32)).await;
        assert_eq!(v["errcode"], "M_BAD_JSON");
        assert!(parse(b"{\"body\": \"hi\"}", 8).is_ok());
    }

    #[test]
    fn a_dropped_event_has_one_id_however_often_it_is_sent() {
        let k = key_of(&["tok", "/path"]);
        assert_eq!(made_up_id("dropped", &k), made_up_id("dropped", &k));
        assert!(made_up_id("dropped", &k).starts_with("$imgate-dropped-"));
    }
}
