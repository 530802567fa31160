//! The Matrix adapter: an HTTP reverse proxy for the client-server API in
//! front of a real homeserver. What imgate does not judge passes through
//! as it is, streamed (a `/sync` long-poll stays open); what it judges is
//! read into the neutral event and answered in Matrix's terms.
//!
//! - [`routes`]: which requests are judged, and the access token.
//! - [`events`]: request JSON to events, and rewrites back into it.
//! - `proxy`: one request, passed through or judged.
//! - `inbound`: the events of a listing (`/sync`, history) a client sees.
//! - `memory`: token owners and transaction verdicts, bounded.
//! - `upstream`: one client connection's connection to the homeserver.
//! - [`relay`]: the gateway's own account (a bot), for bridging.
//! - [`config`]: the `[matrix]` section.

pub mod config;
pub mod events;
mod inbound;
mod memory;
mod proxy;
pub mod relay;
pub mod routes;
mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::{TlsAcceptor, TlsConnector};

pub use config::MatrixConfig;

use super::review::{Held, Reviews};
use super::section::AdapterSection;
use super::stream::Listeners;
use super::{AdapterError, AdapterStats, Gate};
use crate::event::Judge;
use config::UpstreamTls;
use memory::Bounded;
use proxy::Shared;
use upstream::{Homeserver, Upstream};

/// The Matrix adapter with its listeners bound, ready to serve.
pub struct MatrixAdapter {
    listeners: Listeners,
    shared: Arc<Shared>,
    acceptor: Option<TlsAcceptor>,
    homeserver: Arc<Homeserver>,
    config: MatrixConfig,
    ruled: tokio::sync::mpsc::Receiver<super::review::ReviewCall>,
}

/// Sends held for review at once, over every session, and their bytes:
/// past either the oldest can no longer be released.
const HELD_SENDS: usize = 10_000;
const HELD_BYTES: usize = 64 << 20;

impl MatrixAdapter {
    /// Loads the certificates and binds the listeners.
    ///
    /// # Errors
    /// A certificate, key or CA file is unusable, or an address cannot be
    /// bound.
    pub async fn start(
        config: &MatrixConfig,
        judge: Arc<dyn Judge>,
        reviews: Arc<Reviews>,
    ) -> Result<Self, AdapterError> {
        let tls = |source| AdapterError::Tls {
            network: "matrix",
            source,
        };
        let acceptor = match (&config.cert, &config.key) {
            (Some(cert), Some(key)) => {
                let mut server = (*crate::tls::server_config(cert, key).map_err(tls)?).clone();
                server.alpn_protocols = vec![b"http/1.1".to_vec()];
                Some(TlsAcceptor::from(Arc::new(server)))
            }
            _ => None,
        };
        let homeserver = homeserver(config)?;
        let listeners = Listeners::bind(&config.listen, &config.listen_tls)
            .await
            .map_err(|source| AdapterError::Listen {
                network: "matrix",
                source,
            })?;
        let (rulings, ruled) = tokio::sync::mpsc::channel(64);
        let shared = Arc::new(Shared {
            gate: Gate::new(judge, "matrix").with_reviews(reviews),
            max_json_bytes: config.max_json_bytes,
            max_json_depth: config.max_json_depth,
            body_timeout: Duration::from_millis(config.header_timeout_ms),
            tokens: Bounded::new(config.remembered_tokens),
            transactions: Bounded::new(config.remembered_transactions),
            delivered: Bounded::new(config.remembered_events),
            max_listing_bytes: config.max_listing_bytes,
            held: std::sync::Mutex::new(Held::new(HELD_SENDS, HELD_BYTES)),
            rulings,
        });
        Ok(MatrixAdapter {
            listeners,
            shared,
            acceptor,
            homeserver,
            config: config.clone(),
            ruled,
        })
    }

    /// The bound addresses: (address, TLS).
    pub fn local_addrs(&self) -> Vec<(SocketAddr, bool)> {
        self.listeners.local_addrs()
    }

    pub fn stats(&self) -> Arc<AdapterStats> {
        self.shared.gate.shared_stats()
    }

    /// Serves until `shutdown`, then drains.
    pub async fn serve(self, shutdown: watch::Receiver<bool>) {
        let common = self.config.common();
        let (max, drain) = (
            common.max_connections,
            Duration::from_millis(common.drain_timeout_ms),
        );
        let handshake = Duration::from_millis(self.config.handshake_timeout_ms);
        let header_timeout = Duration::from_millis(self.config.header_timeout_ms);
        let (shared, acceptor, homeserver) = (self.shared, self.acceptor, self.homeserver);
        let reviewer = Upstream::new(homeserver.clone());
        let mut stopping = shutdown.clone();
        let rulings = proxy::rule_on_held(shared.clone(), reviewer, self.ruled);
        tokio::spawn(async move {
            tokio::select! {
                _ = rulings => {}
                _ = stopping.changed() => {}
            }
        });
        let stats = shared.gate.shared_stats();
        self.listeners
            .serve(
                max,
                drain,
                stats,
                shutdown,
                move |tcp, peer, tls, shutdown| {
                    let connection = Connection {
                        shared: shared.clone(),
                        homeserver: homeserver.clone(),
                        acceptor: if tls { acceptor.clone() } else { None },
                        handshake,
                        header_timeout,
                    };
                    connection.run(tcp, peer, shutdown)
                },
            )
            .await;
    }
}

/// How to reach the homeserver `config` names.
///
/// # Errors
/// The CA file is unusable.
pub fn homeserver(config: &MatrixConfig) -> Result<Arc<Homeserver>, AdapterError> {
    let tls = match config.upstream.tls {
        UpstreamTls::Plain => None,
        UpstreamTls::Tls => {
            let client = crate::tls::client_config(config.upstream.ca_file.as_deref()).map_err(
                |source| AdapterError::Tls {
                    network: "matrix",
                    source,
                },
            )?;
            Some((
                TlsConnector::from(client),
                config.upstream_name().to_owned(),
            ))
        }
    };
    Ok(Arc::new(Homeserver {
        address: config.upstream.address.clone(),
        tls,
        connect_timeout: Duration::from_millis(config.upstream.connect_timeout_ms),
        answer_timeout: Duration::from_secs(config.idle_timeout_s),
    }))
}

/// One client connection.
struct Connection {
    shared: Arc<Shared>,
    homeserver: Arc<Homeserver>,
    acceptor: Option<TlsAcceptor>,
    handshake: Duration,
    header_timeout: Duration,
}

impl Connection {
    async fn run(self, tcp: TcpStream, peer: SocketAddr, shutdown: watch::Receiver<bool>) {
        let io: Box<dyn super::stream::Io> = match &self.acceptor {
            None => Box::new(tcp),
            Some(acceptor) => {
                match tokio::time::timeout(self.handshake, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => Box::new(tls),
                    Ok(Err(e)) => {
                        tracing::info!(%peer, error = %e, "matrix TLS handshake failed");
                        self.shared
                            .gate
                            .stats()
                            .connection_errors
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        return;
                    }
                    Err(_) => {
                        tracing::info!(%peer, "matrix TLS handshake timed out");
                        return;
                    }
                }
            }
        };
        let upstream = Arc::new(Upstream::new(self.homeserver.clone()));
        let shared = self.shared.clone();
        let service = hyper::service::service_fn(move |request| {
            let (shared, upstream) = (shared.clone(), upstream.clone());
            async move {
                Ok::<_, std::convert::Infallible>(
                    proxy::handle(shared, upstream, peer, request).await,
                )
            }
        });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout)
            .keep_alive(true);
        let connection = http.serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        let mut shutdown = shutdown;
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "matrix connection ended with an error");
                }
            }
            _ = shutdown.changed() => {
                // Finish the request in flight, then close.
                connection.as_mut().graceful_shutdown();
                let _ = connection.await;
            }
        }
    }
}
