//! `imgate archive held`, `release` and `reject`: the review queue of
//! messages a plugin held.
//!
//! The list is read from the archive file. A ruling must reach the
//! session that holds the message, which lives in the running gateway, so
//! `release` and `reject` go through the gateway's admin API (`[admin]`
//! in the same config: its address, its token, and over HTTPS its own
//! `tls_cert` as the certificate to trust).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;

use crate::archive::{HeldMessage, Store};
use crate::config::{AdminConfig, Config};

fn fail(e: impl std::fmt::Display) -> anyhow::Result<ExitCode> {
    eprintln!("error: {e}");
    Ok(ExitCode::from(2))
}

fn when(ms: u64) -> String {
    crate::archive::export::rfc3339(ms)
}

/// Lists the messages awaiting review (or, with `all`, every one ever
/// held and how it was decided).
pub fn held(config: &Path, all: bool, json: bool) -> anyhow::Result<ExitCode> {
    let loaded = match Config::load(config) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let (Some(_), Some(store)) = (loaded.archive, loaded.store) else {
        return fail("the config has no [archive] section, so nothing is held");
    };
    let opened = match Store::connect_read_only(&store) {
        Ok(s) => s,
        Err(e) => {
            return fail(format!(
                "cannot open the archive {}: {e}",
                super::archive::named(&store)
            ));
        }
    };
    let store = opened;
    let list = match store.held_messages(all) {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    if json {
        for h in &list {
            println!("{}", serde_json::to_string(h)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    for h in &list {
        print_held(h);
    }
    println!(
        "{} message(s) {}",
        list.len(),
        if all { "held" } else { "awaiting review" }
    );
    Ok(ExitCode::SUCCESS)
}

fn print_held(h: &HeldMessage) {
    let body = h.body.as_deref().unwrap_or("");
    let body: String = body.chars().take(60).collect();
    println!(
        "{}  {}  {} {} → {}  [{}] {:?}",
        h.event_id,
        when(h.held_ms),
        h.network,
        h.sender,
        h.target,
        h.status,
        body
    );
    println!(
        "    held by {}: {}",
        h.held_by.as_deref().unwrap_or("?"),
        h.reason
    );
    if let (Some(reviewer), Some(outcome)) = (&h.reviewer, &h.outcome) {
        println!(
            "    {} by {reviewer}{}: {outcome}",
            h.status,
            h.note
                .as_deref()
                .filter(|n| !n.is_empty())
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        );
    }
}

/// Releases (`verb` = `release`) or rejects a held message through the
/// running gateway's admin API.
pub fn rule(
    config: &Path,
    event: &str,
    verb: &str,
    reviewer: Option<String>,
    note: &str,
) -> anyhow::Result<ExitCode> {
    let loaded = match Config::load(config) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let Some(admin) = loaded.admin else {
        return fail(
            "the config has no [admin] section: rulings go through the running gateway's admin API",
        );
    };
    let token = match crate::gateway::read_token(&admin) {
        Ok(t) => t,
        Err(e) => return fail(format!("[admin] {e}")),
    };
    let reviewer = super::archive::who(reviewer);
    let body = serde_json::json!({"reviewer": reviewer, "note": note}).to_string();
    let path = format!("/held/{event}/{verb}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (status, value) = match runtime.block_on(post(&admin, &token, &path, body)) {
        Ok(r) => r,
        Err(e) => {
            return fail(format!(
                "cannot reach the gateway's admin API at {}: {e:#}",
                admin.listen
            ));
        }
    };
    if status != StatusCode::OK {
        let error = value["error"].as_str().unwrap_or("no reason given");
        return fail(format!("{verb} refused ({status}): {error}"));
    }
    let decided: HeldMessage = serde_json::from_value(value).context("the admin API's answer")?;
    print_held(&decided);
    Ok(if decided.status == "failed" {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// One POST to the admin API, over HTTPS when it has a certificate.
async fn post(
    admin: &AdminConfig,
    token: &str,
    path: &str,
    body: String,
) -> anyhow::Result<(StatusCode, serde_json::Value)> {
    let address: std::net::SocketAddr = admin.listen.parse().context("[admin] listen")?;
    // A wildcard listener is reached on loopback.
    let (connect, host) = if address.ip().is_unspecified() {
        let loopback =
            std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), address.port());
        (loopback, "localhost".to_owned())
    } else {
        (address, address.ip().to_string())
    };
    let tcp = tokio::net::TcpStream::connect(connect).await?;
    let request = Request::post(path)
        .header(hyper::header::HOST, &host)
        .header(hyper::header::AUTHORIZATION, format!("Bearer {token}"))
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))?;
    let response = match &admin.tls_cert {
        Some(cert) => {
            let tls = crate::tls::client_config(Some(cert))?;
            let name = rustls::pki_types::ServerName::try_from(host.clone())?;
            let stream = tokio_rustls::TlsConnector::from(tls)
                .connect(name, tcp)
                .await?;
            send(TokioIo::new(stream), request).await?
        }
        None => send(TokioIo::new(tcp), request).await?,
    };
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    let value = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Ok((status, value))
}

async fn send<T>(
    io: T,
    request: Request<Full<Bytes>>,
) -> anyhow::Result<hyper::Response<hyper::body::Incoming>>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(connection);
    Ok(sender.send_request(request).await?)
}
