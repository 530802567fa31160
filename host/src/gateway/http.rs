//! The accept loop under the gateway's HTTP listeners (the admin API and
//! the console): HTTP/1.1, over rustls when configured, one task per
//! connection; a connection's error ends that connection only.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Why a listener could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("TLS: {0}")]
    Tls(crate::tls::TlsError),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
}

/// Binds `listen`, with TLS when both a certificate and a key are given.
///
/// # Errors
/// The TLS files, or the address.
pub async fn bind(
    listen: &str,
    cert: Option<&std::path::Path>,
    key: Option<&std::path::Path>,
) -> Result<(TcpListener, Option<tokio_rustls::TlsAcceptor>), BindError> {
    let tls = match (cert, key) {
        (Some(cert), Some(key)) => Some(tokio_rustls::TlsAcceptor::from(
            crate::tls::server_config(cert, key).map_err(BindError::Tls)?,
        )),
        _ => None,
    };
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| BindError::Listen {
            address: listen.to_owned(),
            source,
        })?;
    Ok((listener, tls))
}

/// Connections open at once per listener; past it new ones are closed
/// at once (these listeners serve a few people, not the public).
const MAX_CONNECTIONS: usize = 256;
/// A request's headers must arrive within this (slow-header clients).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `handle` on `listener` until `shutdown` flips; `name` is for
/// the log.
pub async fn serve<H, F>(
    name: &'static str,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
    handle: H,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let open = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "{name} accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = open.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "{name}: {MAX_CONNECTIONS} connections are open; closing a new one");
            continue;
        };
        let handle = handle.clone();
        let service = hyper::service::service_fn(move |req| {
            let handle = handle.clone();
            async move { Ok::<_, Infallible>(handle(req, peer).await) }
        });
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            let result = match tls {
                None => {
                    http.serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await
                }
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(tls)) => {
                            http.serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                                .await
                        }
                        Ok(Err(e)) => {
                            tracing::info!(%peer, error = %e, "{name} TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "{name} connection ended with an error");
            }
        });
    }
}
