//! The admin HTTP API, on its own listener (loopback by default), every
//! request authenticated with a bearer token.
//!
//! | endpoint | |
//! |---|---|
//! | `GET /healthz` | the process is up |
//! | `GET /readyz` | a chain is in force and the store answers (503 when PostgreSQL does not) |
//! | `GET /metrics` | Prometheus text |
//! | `GET /plugins` | each plugin: hash, signer, grants, limits, status, counters |
//! | `POST /reload` | re-read the config and swap the chain |
//! | `GET /connections` | a summary per adapter, each relay identity, the bridge's counts |
//! | `GET /held` | messages held for review (`?all=1`: every one ever held, with its ruling) |
//! | `POST /held/{event}/release` | deliver a held message (JSON body: `reviewer`, `note`) |
//! | `POST /held/{event}/reject` | do not deliver it; its sender is told `note` |
//!
//! Served over HTTPS when `tls_cert` and `tls_key` are set (rustls), else
//! plain HTTP — meant for loopback.
//!
//! Requests without the token, or with another, get 401. Every request is
//! logged with the peer address, which is who made it: the token is one
//! shared secret, so the address is the identity the log can give.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{Gateway, review};
use crate::config::AdminConfig;

pub struct AdminServer {
    listener: TcpListener,
    token: Arc<str>,
    gateway: Arc<Gateway>,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Why the admin API could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("token_file {path}: {source}")]
    TokenFile {
        path: String,
        source: std::io::Error,
    },
    #[error("has no token: set token_file, or the {0} environment variable")]
    NoToken(String),
    #[error(transparent)]
    Bind(#[from] super::http::BindError),
}

/// Reads the bearer token: `token_file` if set, else `token_env`.
///
/// # Errors
/// Neither gives a non-empty token: the API is never served open.
pub(crate) fn read_token(config: &AdminConfig) -> Result<String, AdminError> {
    let token = match &config.token_file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|source| AdminError::TokenFile {
                path: path.display().to_string(),
                source,
            })?
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_owned(),
        None => std::env::var(&config.token_env).unwrap_or_default(),
    };
    if token.is_empty() {
        return Err(AdminError::NoToken(config.token_env.clone()));
    }
    Ok(token)
}

/// Compares without an early exit, so timing does not reveal the prefix
/// that matched.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl AdminServer {
    /// # Errors
    /// No token, or the address cannot be bound.
    pub async fn bind(
        config: &AdminConfig,
        gateway: Arc<Gateway>,
    ) -> Result<AdminServer, AdminError> {
        let token = read_token(config)?;
        let (listener, tls) = super::http::bind(
            &config.listen,
            config.tls_cert.as_deref(),
            config.tls_key.as_deref(),
        )
        .await?;
        if tls.is_none()
            && let Ok(addr) = listener.local_addr()
            && !addr.ip().is_loopback()
        {
            // The bearer token crosses the network in clear text.
            tracing::warn!(
                listen = %addr,
                "[admin] listens beyond loopback over plain HTTP: the token and every answer \
                 can be read on the network; set tls_cert and tls_key, or listen on 127.0.0.1"
            );
        }
        Ok(AdminServer {
            listener,
            token: token.into(),
            gateway,
            tls,
        })
    }

    /// Whether the API is served over HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Serves until `shutdown` flips.
    pub async fn serve(self, shutdown: watch::Receiver<bool>) {
        let (token, gateway) = (self.token, self.gateway);
        super::http::serve(
            "admin",
            self.listener,
            self.tls,
            shutdown,
            move |req, peer| {
                let (token, gateway) = (token.clone(), gateway.clone());
                async move { handle(req, peer, &token, gateway).await }
            },
        )
        .await;
    }
}

fn respond(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, v);
    }
    response
}

fn json_response(status: StatusCode, value: serde_json::Value) -> Response<Full<Bytes>> {
    respond(status, "application/json", value.to_string() + "\n")
}

async fn handle(
    req: Request<Incoming>,
    peer: SocketAddr,
    token: &str,
    gateway: Arc<Gateway>,
) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    let authorized = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| same(given.as_bytes(), token.as_bytes()));
    let response = if !authorized {
        let mut r = json_response(
            StatusCode::UNAUTHORIZED,
            json!({"error": "missing or wrong bearer token"}),
        );
        if let Ok(v) = "Bearer".parse() {
            r.headers_mut().insert(hyper::header::WWW_AUTHENTICATE, v);
        }
        r
    } else if let Some(rest) = path.strip_prefix("/held") {
        let body = match read_body(req).await {
            Ok(b) => b,
            Err(r) => return r,
        };
        held(&method, rest, &query, &body, peer, gateway).await
    } else {
        route(&method, &path, gateway).await
    };
    tracing::info!(%peer, %method, path, status = response.status().as_u16(), authorized, "admin request");
    response
}

/// A request's body, up to 64 KiB.
async fn read_body(req: Request<Incoming>) -> Result<Bytes, Response<Full<Bytes>>> {
    use http_body_util::{BodyExt, Limited};
    match Limited::new(req.into_body(), 64 << 10).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) => Err(json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"error": format!("cannot read the request body: {e}")}),
        )),
    }
}

/// What a reviewer sends with a ruling.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RulingBody {
    #[serde(default)]
    reviewer: Option<String>,
    #[serde(default)]
    note: String,
}

/// `/held`, `/held/{event}/release`, `/held/{event}/reject`.
async fn held(
    method: &Method,
    rest: &str,
    query: &str,
    body: &[u8],
    peer: SocketAddr,
    gateway: Arc<Gateway>,
) -> Response<Full<Bytes>> {
    use crate::archive::{ArchiveError, Decision};
    use review::ReviewError;
    let failed = |e: ReviewError| {
        let status = match &e {
            ReviewError::NoArchive => StatusCode::SERVICE_UNAVAILABLE,
            ReviewError::Archive(ArchiveError::NotHeld(_)) => StatusCode::NOT_FOUND,
            ReviewError::Archive(ArchiveError::AlreadyDecided { .. }) => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        json_response(status, json!({"error": e.to_string()}))
    };
    let parts: Vec<&str> = rest.trim_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        (&Method::GET, [""]) => {
            let all = query.split('&').any(|kv| kv == "all=1" || kv == "all=true");
            match gateway.desk.held(all).await {
                Ok(list) => json_response(StatusCode::OK, json!({ "held": list })),
                Err(e) => failed(e),
            }
        }
        (&Method::POST, [event, verb @ ("release" | "reject")]) => {
            let ruling: RulingBody = if body.iter().all(u8::is_ascii_whitespace) {
                RulingBody::default()
            } else {
                match serde_json::from_slice(body) {
                    Ok(r) => r,
                    Err(e) => {
                        return json_response(
                            StatusCode::BAD_REQUEST,
                            json!({"error": format!("body: {e}")}),
                        );
                    }
                }
            };
            let decision = if *verb == "release" {
                Decision::Release
            } else {
                Decision::Reject
            };
            let reviewer = ruling
                .reviewer
                .unwrap_or_else(|| format!("admin API ({peer})"));
            match gateway
                .desk
                .rule(event, decision, &reviewer, &ruling.note)
                .await
            {
                Ok(decided) => json_response(StatusCode::OK, json!(decided)),
                Err(e) => failed(e),
            }
        }
        (_, [""] | [_, "release" | "reject"]) => json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"error": "method not allowed"}),
        ),
        _ => json_response(StatusCode::NOT_FOUND, json!({"error": "no such endpoint"})),
    }
}

async fn route(method: &Method, path: &str, gateway: Arc<Gateway>) -> Response<Full<Bytes>> {
    match (method, path) {
        (&Method::GET, "/healthz") => respond(StatusCode::OK, "text/plain", "ok\n"),
        (&Method::GET, "/readyz") => match gateway.not_ready() {
            None => json_response(
                StatusCode::OK,
                json!({"ready": true, "generation": gateway.live.current().generation()}),
            ),
            Some(why) => json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"ready": false, "why": why, "generation": gateway.live.current().generation()}),
            ),
        },
        (&Method::GET, "/metrics") => respond(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            gateway.engine.shared().metrics.render_prometheus()
                + &crate::adapters::render_prometheus(&gateway.adapter_stats())
                + &gateway.store_metrics(),
        ),
        (&Method::GET, "/plugins") => json_response(StatusCode::OK, plugins(&gateway)),
        (&Method::GET, "/connections") => {
            let adapters: serde_json::Map<String, serde_json::Value> = gateway
                .adapter_stats()
                .iter()
                .map(|a| (a.network.to_owned(), a.summary()))
                .collect();
            let relays: Vec<_> = gateway.relays().iter().map(|r| r.state()).collect();
            let bridge = gateway.bridge_stats().map(|b| {
                json!({
                    "sent": b.sent.load(std::sync::atomic::Ordering::Relaxed),
                    "delivered": b.delivered.load(std::sync::atomic::Ordering::Relaxed),
                    "refused": b.refused.load(std::sync::atomic::Ordering::Relaxed),
                    "failed": b.failed.load(std::sync::atomic::Ordering::Relaxed),
                    "repeated": b.repeated.load(std::sync::atomic::Ordering::Relaxed),
                })
            });
            let mut body = json!({ "adapters": adapters });
            // Only a gateway that bridges has relays to show.
            if gateway.config().bridge.is_some() {
                body["relays"] = json!(relays);
                body["bridge"] = json!(bridge);
            }
            json_response(StatusCode::OK, body)
        }
        (&Method::POST, "/reload") => {
            let g = gateway.clone();
            match tokio::task::spawn_blocking(move || g.reload("admin API")).await {
                Ok(Ok(generation)) => {
                    json_response(StatusCode::OK, json!({"generation": generation}))
                }
                Ok(Err(error)) => json_response(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!({"error": error.to_string(), "generation": gateway.live.current().generation()}),
                ),
                Err(e) => json_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": e.to_string()}),
                ),
            }
        }
        (_, "/healthz" | "/readyz" | "/metrics" | "/plugins" | "/connections" | "/reload") => {
            json_response(
                StatusCode::METHOD_NOT_ALLOWED,
                json!({"error": "method not allowed"}),
            )
        }
        _ => json_response(StatusCode::NOT_FOUND, json!({"error": "no such endpoint"})),
    }
}

fn plugins(gateway: &Gateway) -> serde_json::Value {
    let chain = gateway.live.current();
    let (reloads_ok, reloads_failed) = gateway.live.reload_counts();
    let list: Vec<serde_json::Value> = chain
        .plugins()
        .iter()
        .map(|p| {
            let s = &p.metrics().stats;
            json!({
                "name": p.name(),
                "sha256": p.sha256,
                "signed_by": p.signed.as_ref().map(|v| json!({
                    "vendor": v.vendor, "plugin": v.plugin, "version": v.version, "key_id": v.key_id,
                })),
                "roles": {"policy": p.is_policy(), "observer": p.is_observer()},
                "grants": p.spec.grants.iter().map(|g| g.to_string()).collect::<Vec<_>>(),
                "limits": {
                    "failure": p.spec.failure.to_string(),
                    "deadline_ms": p.spec.deadline_ms,
                    "memory_mib": p.spec.memory_mib,
                    "pool": p.spec.pool,
                },
                "status": if p.is_backing_off() { "backing-off" } else { "ok" },
                "idle_instances": p.idle_instances(),
                "counters": {
                    "calls": s.calls(),
                    "traps": s.traps.load(Relaxed),
                    "timeouts": s.timeouts.load(Relaxed),
                    "memory_exceeded": s.memory_exceeded.load(Relaxed),
                    "invalid_verdicts": s.invalid_verdicts.load(Relaxed),
                    "fail_open_skips": s.fail_open_skips.load(Relaxed),
                    "instantiations": s.instantiations.load(Relaxed),
                    "verdicts": {
                        "allow": s.allow.load(Relaxed),
                        "block": s.block.load(Relaxed),
                        "drop": s.drop.load(Relaxed),
                        "rewrite": s.rewrite.load(Relaxed),
                        "hold": s.hold.load(Relaxed),
                    },
                },
            })
        })
        .collect();
    json!({
        "generation": chain.generation(),
        "reloads": {"ok": reloads_ok, "failed": reloads_failed, "last_error": gateway.live.last_error()},
        "plugins": list,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison_needs_every_byte() {
        assert!(same(b"secret", b"secret"));
        assert!(!same(b"secret", b"secreT"));
        assert!(!same(b"secret", b"secret2"));
        assert!(!same(b"", b"x"));
    }

    #[test]
    fn an_admin_section_without_a_token_is_refused() {
        let config = AdminConfig {
            listen: "127.0.0.1:0".into(),
            token_file: None,
            token_env: "IMGATE_TEST_TOKEN_THAT_IS_NOT_SET".into(),
            tls_cert: None,
            tls_key: None,
        };
        let err = read_token(&config).unwrap_err().to_string();
        assert!(err.contains("IMGATE_TEST_TOKEN_THAT_IS_NOT_SET"), "{err}");
    }
}
