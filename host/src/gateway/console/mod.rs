//! The compliance console (`[console]`): compliance officers search, read,
//! decide held messages and export the archive in a browser. Served by
//! `imgate run` on its own listener, server-rendered, no script.
//!
//! ```text
//! browser ─▶ auth (session cookie, CSRF, login limit) ─▶ page ─▶ archive (read)
//!                                                           └─▶ chain entry: who viewed, decided, exported
//! ```
//!
//! - `auth`: sessions, CSRF tokens, the login rate limit.
//! - `form`: the search form as an archive filter and back.
//! - `pages`: the HTML (maud: everything escaped).
//!
//! Every page that shows message content, every decision and every export
//! is recorded in the chain before the answer is sent; when that record
//! cannot be written, the content is not shown.

mod auth;
mod form;
mod pages;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use maud::Markup;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use super::review::{ReviewDesk, ReviewError};
use crate::archive::export::{Format, files};
use crate::archive::{
    ArchiveError, ArchiveRecord, AuditEntry, Decision, Entry, Filter, Role, Store, password_matches,
};
use crate::config::ConsoleConfig;
use crate::event::now_ms;
use crate::store::StoreConfig;
use crate::util::hex::encode as hex;
use auth::{LOGIN_COOKIE, Limiter, SESSION_COOKIE, Sessions};
use form::{PAGE, Search};
use pages::{Line, Viewer};

/// The most records one export holds; a larger one must be narrowed.
pub const EXPORT_MAX: usize = 100_000;
/// Messages shown on each side of a hit in its conversation.
const AROUND: usize = 10;
/// argon2 verifications at once (each takes ~19 MiB and tens of ms).
const HASHING: usize = 2;

const CSS: &str = include_str!("console.css");
/// No script, no frames, nothing from elsewhere; forms post only here.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// Why the console could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error(transparent)]
    Bind(#[from] super::http::BindError),
    #[error("the archive: {0}")]
    Archive(ArchiveError),
}

type Answer = Response<Full<Bytes>>;

pub struct ConsoleServer {
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    console: Arc<Console>,
}

/// What every request shares.
struct Console {
    store: Mutex<Store>,
    store_config: StoreConfig,
    desk: Arc<ReviewDesk>,
    sessions: Sessions,
    limiter: Limiter,
    hashing: Semaphore,
    max_age: Duration,
}

impl ConsoleServer {
    /// # Errors
    /// TLS files, the store, or the address.
    pub async fn bind(
        config: &ConsoleConfig,
        store: &StoreConfig,
        desk: Arc<ReviewDesk>,
    ) -> Result<ConsoleServer, ConsoleError> {
        let opened = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || Store::connect(&store))
                .await
                .map_err(|e| ConsoleError::Archive(ArchiveError::WriteFailed(e.to_string())))?
                .map_err(ConsoleError::Archive)?
        };
        let (listener, tls) = super::http::bind(
            &config.listen,
            config.tls_cert.as_deref(),
            config.tls_key.as_deref(),
        )
        .await?;
        let max_age = Duration::from_secs(config.session_max_hours * 3600);
        Ok(ConsoleServer {
            listener,
            tls,
            console: Arc::new(Console {
                store: Mutex::new(opened),
                store_config: store.clone(),
                desk,
                sessions: Sessions::new(
                    Duration::from_secs(config.session_idle_minutes * 60),
                    max_age,
                ),
                limiter: Limiter::default(),
                hashing: Semaphore::new(HASHING),
                max_age,
            }),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    pub async fn serve(self, shutdown: watch::Receiver<bool>) {
        let console = self.console;
        super::http::serve(
            "console",
            self.listener,
            self.tls,
            shutdown,
            move |req, peer| {
                let console = console.clone();
                async move { console.handle(req, peer).await }
            },
        )
        .await;
    }
}

/// Headers every answer carries.
fn secure(mut r: Answer) -> Answer {
    let h = r.headers_mut();
    for (k, v) in [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    r
}

fn answer(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Answer {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    secure(r)
}

fn page(status: StatusCode, m: Markup) -> Answer {
    answer(status, "text/html; charset=utf-8", m.into_string())
}

fn redirect(to: &str) -> Answer {
    let mut r = answer(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "");
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn with_cookie(mut r: Answer, cookie: &str) -> Answer {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// Where to go after signing in: a path on this console, nothing else.
fn local_path(next: &str) -> &str {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && next.bytes().all(|b| b.is_ascii_graphic());
    if ok && next != "/login" {
        next
    } else {
        "/search"
    }
}

/// Fixed texts a redirect may ask a page to show (never text from a link).
fn notice_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "released" => {
            "Released: the message was delivered, or the reason it could not be is recorded."
        }
        "rejected" => "Rejected: the sender was told, and the decision is recorded.",
        "hold-added" => "The legal hold is in force.",
        "hold-lifted" => "The legal hold is lifted.",
        "user-added" => "The account was added.",
        "user-removed" => "The account was removed; its sessions have ended.",
        "verified" => "The chain was verified; the result is below and in the chain.",
        _ => return None,
    })
}

struct Asked {
    method: Method,
    path: String,
    query: String,
    cookies: String,
    peer: SocketAddr,
}

/// A signed-in request.
struct Who {
    token: String,
    account: String,
    role: Role,
    csrf: String,
}

impl Who {
    fn viewer(&self) -> Viewer<'_> {
        Viewer {
            account: &self.account,
            role: self.role,
            csrf: &self.csrf,
        }
    }
}

impl Console {
    /// Runs `f` on the store, off the async workers.
    async fn db<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Store) -> Result<R, ArchiveError> + Send + 'static,
    ) -> Result<R, ArchiveError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut store = me.store.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut store)
        })
        .await
        .map_err(|e| ArchiveError::WriteFailed(e.to_string()))?
    }

    async fn handle(self: Arc<Self>, req: Request<Incoming>, peer: SocketAddr) -> Answer {
        let asked = Asked {
            method: req.method().clone(),
            path: req.uri().path().to_owned(),
            query: req.uri().query().unwrap_or_default().to_owned(),
            cookies: req
                .headers()
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect::<Vec<_>>()
                .join("; "),
            peer,
        };
        let body = if asked.method == Method::POST {
            use http_body_util::{BodyExt, Limited};
            match Limited::new(req.into_body(), 64 << 10).collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => {
                    return page(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        pages::notice("Too large", None, "A form may hold at most 64 KiB."),
                    );
                }
            }
        } else {
            Bytes::new()
        };
        let (response, account) = self.route(&asked, &body).await;
        tracing::info!(
            peer = %asked.peer,
            method = %asked.method,
            path = asked.path,
            status = response.status().as_u16(),
            account = account.as_deref().unwrap_or("-"),
            "console request"
        );
        response
    }

    async fn route(self: &Arc<Self>, a: &Asked, body: &[u8]) -> (Answer, Option<String>) {
        match (&a.method, a.path.as_str()) {
            (&Method::GET, "/console.css") => {
                return (answer(StatusCode::OK, "text/css; charset=utf-8", CSS), None);
            }
            // Browsers ask for it unbidden; it is not worth a redirect.
            (&Method::GET, "/favicon.ico") => {
                return (answer(StatusCode::NO_CONTENT, "image/x-icon", ""), None);
            }
            (&Method::GET, "/login") => return (self.login_page(a, None), None),
            (&Method::POST, "/login") => return self.login(a, body).await,
            _ => {}
        }
        let who = match self.who(a).await {
            Ok(Some(w)) => w,
            Ok(None) => {
                let next = if a.method == Method::GET {
                    let full = if a.query.is_empty() {
                        a.path.clone()
                    } else {
                        format!("{}?{}", a.path, a.query)
                    };
                    form_urlencoded::Serializer::new(String::new())
                        .append_pair("next", &full)
                        .finish()
                } else {
                    String::new()
                };
                return (redirect(&format!("/login?{next}")), None);
            }
            Err(e) => return (self.failed(None, &e), None),
        };
        let fields = form::fields(body);
        if a.method == Method::POST {
            let given = fields.get("csrf").map(String::as_str).unwrap_or("");
            if !auth::same(given, &who.csrf) {
                let r = page(
                    StatusCode::FORBIDDEN,
                    pages::notice(
                        "Refused",
                        Some(&who.viewer()),
                        "This form did not come from your console session (its CSRF token is missing or wrong). Nothing was changed. Open the page again and resubmit.",
                    ),
                );
                return (r, Some(who.account));
            }
        }
        let r = self.signed_in(a, &fields, &who).await;
        (r, Some(who.account))
    }

    async fn signed_in(
        self: &Arc<Self>,
        a: &Asked,
        f: &HashMap<String, String>,
        who: &Who,
    ) -> Answer {
        let query = form::fields(a.query.as_bytes());
        let notice = query.get("done").and_then(|c| notice_text(c));
        let decoded: Vec<String> = a
            .path
            .trim_matches('/')
            .split('/')
            .map(|p| {
                percent_encoding::percent_decode_str(p)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect();
        let parts: Vec<&str> = decoded.iter().map(String::as_str).collect();
        let admin_only = matches!(parts.first(), Some(&"holds" | &"users"));
        if admin_only && who.role != Role::Admin {
            return page(
                StatusCode::FORBIDDEN,
                pages::notice(
                    "Not for your role",
                    Some(&who.viewer()),
                    "Legal holds and accounts are managed by admins.",
                ),
            );
        }
        let result = match (&a.method, parts.as_slice()) {
            (&Method::GET, [""]) => Ok(redirect("/search")),
            (&Method::POST, ["logout"]) => {
                self.sessions.end(&who.token);
                let by = who.account.clone();
                if let Err(e) = self
                    .db(move |s| s.note("sign-out", &by, now_ms(), json!({})))
                    .await
                {
                    tracing::warn!(error = %e, account = who.account, "console sign-out not recorded");
                }
                Ok(with_cookie(
                    redirect("/login"),
                    &auth::set_cookie(SESSION_COOKIE, "", Some(Duration::ZERO)),
                ))
            }
            (&Method::GET, ["search"]) => self.search(who, &query).await,
            (&Method::GET, ["conversation", seq]) => match seq.parse() {
                Ok(seq) => self.conversation(who, seq).await,
                Err(_) => Ok(self.not_found(who)),
            },
            (&Method::GET, ["event", id]) => self.event(who, id).await,
            (&Method::GET, ["held"]) => self.held(who, notice).await,
            (&Method::POST, ["held", event]) => self.decide(who, event, f).await,
            (&Method::GET, ["exports"]) => self.exports(who).await,
            (&Method::POST, ["exports"]) => self.export(who, f).await,
            (&Method::GET, ["chain"]) => self.chain(who, notice).await,
            (&Method::POST, ["chain", "verify"]) => self.verify(who).await,
            (&Method::GET, ["holds"]) => {
                let holds = self.db(|s| s.holds()).await;
                holds.map(|h| page(StatusCode::OK, pages::holds(&who.viewer(), &h, notice)))
            }
            (&Method::POST, ["holds"]) => self.hold_add(who, f).await,
            (&Method::POST, ["holds", id, "remove"]) => self.hold_remove(who, id).await,
            (&Method::GET, ["users"]) => {
                let list = self.db(|s| s.accounts()).await;
                list.map(|l| page(StatusCode::OK, pages::users(&who.viewer(), &l, notice)))
            }
            (&Method::POST, ["users"]) => self.user_add(who, f).await,
            (&Method::POST, ["users", name, "remove"]) => self.user_remove(who, name).await,
            _ => Ok(self.not_found(who)),
        };
        result.unwrap_or_else(|e| self.failed(Some(who), &e))
    }

    fn not_found(&self, who: &Who) -> Answer {
        page(
            StatusCode::NOT_FOUND,
            pages::notice("Not found", Some(&who.viewer()), "There is no such page."),
        )
    }

    fn failed(&self, who: Option<&Who>, e: &ArchiveError) -> Answer {
        tracing::warn!(error = %e, "console: the archive failed");
        page(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::notice(
                "The archive did not answer",
                who.map(Who::viewer).as_ref(),
                &format!("Nothing was shown or changed: {e}"),
            ),
        )
    }

    /// The session's account, checked against the store on every request:
    /// a removed account or a changed role counts at once.
    async fn who(self: &Arc<Self>, a: &Asked) -> Result<Option<Who>, ArchiveError> {
        let Some(token) = auth::cookie(&a.cookies, SESSION_COOKIE) else {
            return Ok(None);
        };
        let Some(session) = self.sessions.get(token) else {
            return Ok(None);
        };
        let name = session.account.clone();
        match self.db(move |s| s.account(&name)).await? {
            Some(account) => Ok(Some(Who {
                token: token.to_owned(),
                account: account.name,
                role: account.role,
                csrf: session.csrf,
            })),
            None => {
                self.sessions.end(token);
                Ok(None)
            }
        }
    }

    fn login_page(&self, a: &Asked, error: Option<&str>) -> Answer {
        // One token per browser: a second tab or a stray request must not
        // invalidate the form already shown.
        let token = auth::cookie(&a.cookies, LOGIN_COOKIE)
            .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
            .map_or_else(auth::token, str::to_owned);
        let query = form::fields(a.query.as_bytes());
        let next = local_path(query.get("next").map(String::as_str).unwrap_or("/search"));
        let status = if error.is_some() {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        };
        with_cookie(
            page(status, pages::login(error, &token, next)),
            &auth::set_cookie(LOGIN_COOKIE, &token, None),
        )
    }

    async fn login(self: &Arc<Self>, a: &Asked, body: &[u8]) -> (Answer, Option<String>) {
        let f = form::fields(body);
        let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
        let retry = |error: &str, next: &str| {
            let again = Asked {
                method: Method::GET,
                path: "/login".into(),
                query: form_urlencoded::Serializer::new(String::new())
                    .append_pair("next", next)
                    .finish(),
                cookies: a.cookies.clone(),
                peer: a.peer,
            };
            self.login_page(&again, Some(error))
        };
        let next = local_path(get("next")).to_owned();
        let cookie = auth::cookie(&a.cookies, LOGIN_COOKIE).unwrap_or("");
        if cookie.is_empty() || !auth::same(cookie, get("login_csrf")) {
            let mut r = retry(
                "The sign-in form had expired or did not come from this console. Try again.",
                &next,
            );
            *r.status_mut() = StatusCode::FORBIDDEN;
            return (r, None);
        }
        let account = get("account").trim().to_owned();
        if let Err(wait) = self.limiter.check(a.peer.ip(), &account) {
            let mut r = retry(
                &format!(
                    "Too many failed sign-ins. Try again in {} minutes.",
                    wait.as_secs().div_ceil(60)
                ),
                &next,
            );
            *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            tracing::warn!(peer = %a.peer, account, "console sign-in refused: rate limit");
            return (r, None);
        }
        let password = get("password").to_owned();
        let found = {
            let name = account.clone();
            self.db(move |s| s.account(&name)).await
        };
        let found = match found {
            Ok(f) => f,
            Err(e) => return (self.failed(None, &e), None),
        };
        // Unknown names cost a verification too, so timing does not say
        // which accounts exist.
        let hash = found
            .as_ref()
            .map(|a| a.hash.clone())
            .unwrap_or_else(|| DUMMY_HASH.to_owned());
        let Ok(_permit) = self.hashing.acquire().await else {
            return (retry("The console is stopping.", &next), None);
        };
        let matches = tokio::task::spawn_blocking(move || password_matches(&hash, &password))
            .await
            .unwrap_or(false);
        match found {
            Some(acc) if matches => {
                self.limiter.succeeded(&acc.name);
                // Who signed in, from where, is part of who read the
                // archive; no record, no session. (Failures are only
                // logged: they would let anyone grow the chain.)
                let (by, address) = (acc.name.clone(), a.peer.ip().to_string());
                let noted = self
                    .db(move |s| s.note("sign-in", &by, now_ms(), json!({"address": address})))
                    .await;
                if let Err(e) = noted {
                    return (self.failed(None, &e), None);
                }
                let token = self.sessions.start(&acc.name);
                tracing::info!(peer = %a.peer, account = acc.name, "console sign-in");
                let r = with_cookie(
                    redirect(&next),
                    &auth::set_cookie(SESSION_COOKIE, &token, Some(self.max_age)),
                );
                (
                    with_cookie(r, &auth::set_cookie(LOGIN_COOKIE, "", Some(Duration::ZERO))),
                    Some(acc.name),
                )
            }
            _ => {
                self.limiter.failed(a.peer.ip(), &account);
                tracing::warn!(peer = %a.peer, account, "console sign-in failed");
                (retry("Wrong account or password.", &next), None)
            }
        }
    }

    /// Records that `who` saw content; the page is shown only after.
    async fn viewed(
        self: &Arc<Self>,
        who: &Who,
        details: serde_json::Value,
    ) -> Result<(), ArchiveError> {
        let by = who.account.clone();
        self.db(move |s| s.note("view", &by, now_ms(), details).map(|_| ()))
            .await
    }

    async fn search(
        self: &Arc<Self>,
        who: &Who,
        query: &HashMap<String, String>,
    ) -> Result<Answer, ArchiveError> {
        let search = Search::from_fields(query);
        let filter = match search.filter(PAGE + 1) {
            Ok(f) => f,
            Err(e) => return Ok(self.search_page(who, &search, &[], None, Some(&e))),
        };
        let found = self.db(move |s| s.search(&filter)).await;
        let mut records: Vec<ArchiveRecord> = match found {
            Ok(entries) => records(entries),
            // A query FTS cannot read is the searcher's to fix.
            Err(ArchiveError::Db(e)) => {
                let why = format!("The search could not run: {e}");
                return Ok(self.search_page(who, &search, &[], None, Some(&why)));
            }
            Err(e) => return Err(e),
        };
        let older = (records.len() > PAGE).then(|| {
            records.truncate(PAGE);
            records.last().map_or(0, |r| r.seq)
        });
        if !records.is_empty() {
            self.viewed(
                who,
                json!({"page": "search", "search": search, "shown": records.iter().map(|r| r.seq).collect::<Vec<_>>()}),
            )
            .await?;
        }
        Ok(self.search_page(who, &search, &records, older, None))
    }

    fn search_page(
        &self,
        who: &Who,
        search: &Search,
        records: &[ArchiveRecord],
        older: Option<u64>,
        error: Option<&str>,
    ) -> Answer {
        let status = if error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        };
        page(
            status,
            pages::search(
                &who.viewer(),
                &pages::Page {
                    search,
                    records,
                    older,
                    error,
                },
            ),
        )
    }

    async fn conversation(self: &Arc<Self>, who: &Who, seq: u64) -> Result<Answer, ArchiveError> {
        let found = self
            .db(move |s| {
                let one = Filter {
                    after_seq: Some(seq.saturating_sub(1)),
                    before_seq: Some(seq.saturating_add(1)),
                    ..Default::default()
                };
                let Some(hit) = records(s.search(&one)?).pop() else {
                    return Ok(None);
                };
                let c = hit.columns();
                let mut thread = Filter {
                    network: Some(c.network.clone()),
                    ..Default::default()
                };
                let around = if let Some(room) = &c.room {
                    thread.room = Some(room.clone());
                    format!("The room {room} on {}", c.network)
                } else if let (Some(from), Some(to)) = (&c.sender, &c.recipient) {
                    thread.participant = Some(from.clone());
                    thread.with = Some(to.clone());
                    format!("Between {from} and {to} on {}", c.network)
                } else {
                    thread.participant = Some(c.user.clone());
                    format!("The session of {} on {}", c.user, c.network)
                };
                let mut before = records(s.search(&Filter {
                    before_seq: Some(seq),
                    newest_first: true,
                    limit: Some(AROUND),
                    ..thread.clone()
                })?);
                before.reverse();
                let after = records(s.search(&Filter {
                    after_seq: Some(seq),
                    limit: Some(AROUND),
                    ..thread
                })?);
                let mut lines = Vec::new();
                for record in before.into_iter().chain([hit]).chain(after) {
                    let copies = match &record.event.id {
                        Some(id) => s.bridge_copies_of(id)?,
                        None => Vec::new(),
                    };
                    lines.push(Line { record, copies });
                }
                Ok(Some((around, lines)))
            })
            .await?;
        let Some((around, lines)) = found else {
            return Ok(self.not_found(who));
        };
        self.viewed(
            who,
            json!({"page": "conversation", "entry": seq, "shown": lines.iter().map(|l| l.record.seq).collect::<Vec<_>>()}),
        )
        .await?;
        Ok(page(
            StatusCode::OK,
            pages::conversation(&who.viewer(), seq, &around, &lines),
        ))
    }

    /// An event by its id (a bridged copy's origin, or a copy): found
    /// where the bridge recorded it, then shown in its conversation.
    async fn event(self: &Arc<Self>, who: &Who, id: &str) -> Result<Answer, ArchiveError> {
        let id = id.to_owned();
        let seq = self
            .db(move |s| {
                let Some((network, room, ms)) = s.bridge_place(&id)? else {
                    return Ok(None);
                };
                let window = 10 * 60 * 1000;
                let near = Filter {
                    network: Some(network),
                    room: Some(room),
                    since_ms: Some(ms.saturating_sub(window)),
                    until_ms: Some(ms + window),
                    ..Default::default()
                };
                Ok(records(s.search(&near)?)
                    .into_iter()
                    .find(|r| r.event.id.as_deref() == Some(id.as_str()))
                    .map(|r| r.seq))
            })
            .await?;
        Ok(match seq {
            Some(seq) => redirect(&format!("/conversation/{seq}")),
            None => page(
                StatusCode::NOT_FOUND,
                pages::notice(
                    "Not in the archive",
                    Some(&who.viewer()),
                    "That event's record is not in the archive (it may not have been archived, or was purged).",
                ),
            ),
        })
    }

    async fn held(
        self: &Arc<Self>,
        who: &Who,
        notice: Option<&str>,
    ) -> Result<Answer, ArchiveError> {
        let all = match self.desk.held(true).await {
            Ok(all) => all,
            Err(ReviewError::Archive(e)) => return Err(e),
            Err(e) => return Err(ArchiveError::WriteFailed(e.to_string())),
        };
        let (waiting, mut decided): (Vec<_>, Vec<_>) =
            all.into_iter().partition(|h| h.status == "held");
        decided.sort_by_key(|h| std::cmp::Reverse(h.decided_ms));
        decided.truncate(50);
        if !waiting.is_empty() || !decided.is_empty() {
            self.viewed(
                who,
                json!({"page": "held", "shown": waiting.iter().chain(&decided).map(|h| h.seq).collect::<Vec<_>>()}),
            )
            .await?;
        }
        Ok(page(
            StatusCode::OK,
            pages::held(&who.viewer(), &waiting, &decided, notice),
        ))
    }

    async fn decide(
        self: &Arc<Self>,
        who: &Who,
        event: &str,
        f: &HashMap<String, String>,
    ) -> Result<Answer, ArchiveError> {
        let reason = f.get("reason").map(|r| r.trim()).unwrap_or("");
        let decision = match f.get("decision").map(String::as_str) {
            Some("release") => Decision::Release,
            Some("reject") => Decision::Reject,
            _ => return Ok(self.refuse(who, "Choose release or reject.")),
        };
        if reason.is_empty() {
            return Ok(self.refuse(
                who,
                "A decision needs a reason: it is recorded in the chain.",
            ));
        }
        if reason.chars().count() > 1000 {
            return Ok(self.refuse(who, "A reason is at most 1000 characters."));
        }
        let done = match decision {
            Decision::Release => "/held?done=released",
            Decision::Reject => "/held?done=rejected",
        };
        match self.desk.rule(event, decision, &who.account, reason).await {
            Ok(_) => Ok(redirect(done)),
            Err(ReviewError::Archive(
                e @ (ArchiveError::NotHeld(_) | ArchiveError::AlreadyDecided { .. }),
            )) => Ok(self.refuse(who, &e.to_string())),
            Err(ReviewError::Archive(e)) => Err(e),
            Err(e) => Err(ArchiveError::WriteFailed(e.to_string())),
        }
    }

    fn refuse(&self, who: &Who, why: &str) -> Answer {
        page(
            StatusCode::UNPROCESSABLE_ENTITY,
            pages::notice("Not done", Some(&who.viewer()), why),
        )
    }

    async fn exports(self: &Arc<Self>, who: &Who) -> Result<Answer, ArchiveError> {
        let past = self
            .db(|s| {
                s.search(&Filter {
                    kind: Some("audit:export".into()),
                    newest_first: true,
                    limit: Some(100),
                    ..Default::default()
                })
            })
            .await?;
        let past: Vec<AuditEntry> = past.into_iter().filter_map(Entry::into_audit).collect();
        Ok(page(StatusCode::OK, pages::exports(&who.viewer(), &past)))
    }

    /// The search's records as a tar download: the records, manifest.json
    /// and CHAIN.txt; recorded in the chain first, with the manifest's hash.
    async fn export(
        self: &Arc<Self>,
        who: &Who,
        f: &HashMap<String, String>,
    ) -> Result<Answer, ArchiveError> {
        let search = Search::from_fields(f);
        let format = match f.get("format").map(String::as_str) {
            Some("eml") => Format::Eml,
            Some("jsonl") | None => Format::Jsonl,
            Some(other) => return Ok(self.refuse(who, &format!("unknown format `{other}`"))),
        };
        let mut filter = match search.filter(EXPORT_MAX + 1) {
            Ok(f) => f,
            Err(e) => return Ok(self.refuse(who, &e)),
        };
        filter.newest_first = false;
        let by = who.account.clone();
        let s2 = search.clone();
        let made = self
            .db(move |s| {
                let stored = s.select(&filter)?;
                if stored.len() > EXPORT_MAX {
                    return Ok(Err(format!(
                        "The search finds more than {EXPORT_MAX} records: narrow it (a time range, a participant) and export in parts."
                    )));
                }
                let files = files(format, &stored);
                let manifest = files
                    .iter()
                    .find(|(n, _)| n == "manifest.json")
                    .map(|(_, b)| hex(&Sha256::digest(b)))
                    .unwrap_or_default();
                let format_name = if format == Format::Eml { "eml" } else { "jsonl" };
                let (seq, hash) = s.note(
                    "export",
                    &by,
                    now_ms(),
                    json!({
                        "format": format_name,
                        "search": s2,
                        "records": stored.len(),
                        "first": stored.first().map(|r| r.seq),
                        "last": stored.last().map(|r| r.seq),
                        "manifest_sha256": manifest,
                    }),
                )?;
                Ok(Ok((files, seq, hash, manifest, format_name)))
            })
            .await?;
        let (files, seq, hash, manifest, format_name) = match made {
            Ok(m) => m,
            Err(why) => return Ok(self.refuse(who, &why)),
        };
        let chain = format!(
            "imgate export, recorded in the archive's chain as entry {seq} (hash {hash}).\n\
             \n\
             sha256(manifest.json) = {manifest}, as entry {seq} records.\n\
             manifest.json lists each record's number (seq), the hash of the record before it\n\
             (prev) and its own (hash): hash = sha256(bytes of prev || the record's canonical\n\
             bytes). For JSON Lines those bytes are each line of records.jsonl without its\n\
             newline. `imgate archive verify` on the archive shows the chain is unbroken.\n"
        );
        let tar = match tarball(&files, &chain) {
            Ok(t) => t,
            Err(e) => {
                return Err(ArchiveError::WriteFailed(format!(
                    "cannot build the download: {e}"
                )));
            }
        };
        let mut r = answer(StatusCode::OK, "application/x-tar", tar);
        let name = format!("imgate-export-{seq}-{format_name}.tar");
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
        Ok(r)
    }

    async fn chain(
        self: &Arc<Self>,
        who: &Who,
        notice: Option<&str>,
    ) -> Result<Answer, ArchiveError> {
        let status = self
            .db(|s| {
                let (records, head) = s.head()?;
                let checkpoints = s.checkpoints()?.len();
                let last_verify = s
                    .search(&Filter {
                        kind: Some("audit:verify".into()),
                        newest_first: true,
                        limit: Some(1),
                        ..Default::default()
                    })?
                    .into_iter()
                    .find_map(Entry::into_audit);
                Ok(pages::ChainStatus {
                    records,
                    head,
                    checkpoints,
                    last_verify,
                })
            })
            .await?;
        Ok(page(
            StatusCode::OK,
            pages::chain(&who.viewer(), &status, notice),
        ))
    }

    /// Walks the chain on a connection of its own (the console's other
    /// pages are not held up), then records the result in the chain.
    async fn verify(self: &Arc<Self>, who: &Who) -> Result<Answer, ArchiveError> {
        let config = self.store_config.clone();
        let result = tokio::task::spawn_blocking(move || {
            let store = Store::connect_read_only(&config)?;
            Ok::<_, ArchiveError>(store.verify())
        })
        .await
        .map_err(|e| ArchiveError::WriteFailed(e.to_string()))??;
        let details = match &result {
            Ok(v) => json!({"ok": true, "records": v.records, "head": v.last_hash}),
            Err(b) => json!({"ok": false, "broken": b.to_string()}),
        };
        let by = who.account.clone();
        self.db(move |s| s.note("verify", &by, now_ms(), details))
            .await?;
        Ok(redirect("/chain?done=verified"))
    }

    async fn hold_add(
        self: &Arc<Self>,
        who: &Who,
        f: &HashMap<String, String>,
    ) -> Result<Answer, ArchiveError> {
        let get = |k: &str| f.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
        let (kind, value, reason) = (get("kind"), get("value"), get("reason"));
        if value.is_empty() || reason.is_empty() {
            return Ok(self.refuse(who, "A hold needs a user or room and a reason."));
        }
        let by = who.account.clone();
        match self
            .db(move |s| s.hold_add(&kind, &value, &reason, &by, now_ms()))
            .await
        {
            Ok(_) => Ok(redirect("/holds?done=hold-added")),
            Err(e @ ArchiveError::HoldKind(_)) => Ok(self.refuse(who, &e.to_string())),
            Err(e) => Err(e),
        }
    }

    async fn hold_remove(self: &Arc<Self>, who: &Who, id: &str) -> Result<Answer, ArchiveError> {
        let Ok(id) = id.parse::<i64>() else {
            return Ok(self.not_found(who));
        };
        let by = who.account.clone();
        match self.db(move |s| s.hold_remove(id, &by, now_ms())).await {
            Ok(_) => Ok(redirect("/holds?done=hold-lifted")),
            Err(e @ ArchiveError::NoHold(_)) => Ok(self.refuse(who, &e.to_string())),
            Err(e) => Err(e),
        }
    }

    async fn user_add(
        self: &Arc<Self>,
        who: &Who,
        f: &HashMap<String, String>,
    ) -> Result<Answer, ArchiveError> {
        let name = f
            .get("name")
            .map(|v| v.trim().to_owned())
            .unwrap_or_default();
        let password = f.get("password").cloned().unwrap_or_default();
        let role: Role = match f
            .get("role")
            .map(String::as_str)
            .unwrap_or("reviewer")
            .parse()
        {
            Ok(r) => r,
            Err(e) => return Ok(self.refuse(who, &e.to_string())),
        };
        let Ok(_permit) = self.hashing.acquire().await else {
            return Ok(self.refuse(who, "The console is stopping."));
        };
        let by = who.account.clone();
        let added = self
            .db(move |s| {
                crate::archive::check_name(&name)?;
                let hash = crate::archive::hash_password(&password)?;
                s.account_add(&name, role, &hash, &by, now_ms())
            })
            .await;
        match added {
            Ok(_) => Ok(redirect("/users?done=user-added")),
            Err(e @ (ArchiveError::BadAccount(_) | ArchiveError::AccountExists(_))) => {
                Ok(self.refuse(who, &e.to_string()))
            }
            Err(e) => Err(e),
        }
    }

    async fn user_remove(self: &Arc<Self>, who: &Who, name: &str) -> Result<Answer, ArchiveError> {
        if name == who.account {
            return Ok(self.refuse(
                who,
                "You cannot remove your own account; another admin can.",
            ));
        }
        let (name, by) = (name.to_owned(), who.account.clone());
        match self
            .db(move |s| s.account_remove(&name, &by, now_ms()))
            .await
        {
            Ok(_) => Ok(redirect("/users?done=user-removed")),
            Err(e @ ArchiveError::NoAccount(_)) => Ok(self.refuse(who, &e.to_string())),
            Err(e) => Err(e),
        }
    }
}

/// A hash no password matches quickly, for unknown account names (made
/// with the same parameters as real ones).
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2CZqRNDnkKMYDa0XMIzSgkg0o+NKWsOYKr9nzLOcs5o";

fn records(entries: Vec<Entry>) -> Vec<ArchiveRecord> {
    entries.into_iter().filter_map(Entry::into_record).collect()
}

/// The export's files and CHAIN.txt as one uncompressed tar.
fn tarball(files: &[(String, Vec<u8>)], chain: &str) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    let mtime = now_ms() / 1000;
    let all = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .chain([("CHAIN.txt", chain.as_bytes())]);
    for (name, bytes) in all {
        let mut h = tar::Header::new_ustar();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(mtime);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, name, bytes)?;
    }
    tar.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(local_path("/held"), "/held");
        assert_eq!(local_path("/search?text=a%20b"), "/search?text=a%20b");
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "",
            "/login",
            "/a b",
        ] {
            assert_eq!(local_path(bad), "/search", "{bad}");
        }
    }

    #[test]
    fn the_dummy_hash_is_a_real_argon2id_hash() {
        assert!(argon2::password_hash::PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(!password_matches(DUMMY_HASH, ""));
    }

    #[test]
    fn an_export_tar_holds_the_files_and_the_chain_note() {
        let files = vec![
            ("records.jsonl".to_owned(), b"{}\n".to_vec()),
            ("manifest.json".to_owned(), b"{}".to_vec()),
        ];
        let tar = tarball(&files, "note").unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["records.jsonl", "manifest.json", "CHAIN.txt"]);
    }
}
