//! The IRC adapter: a proxy in front of a real IRC server, plain or TLS on
//! either side.
//!
//! - [`codec`]: bytes to lines (CRLF or LF, IRCv3 length limits) and lines
//!   to their parts; re-splitting text to fit.
//! - [`events`]: lines to events and verdicts back to lines.
//! - [`session`]: one connection's sockets and state machine.
//! - [`config`]: the `[irc]` section.

pub mod codec;
pub mod config;
pub mod events;
pub mod session;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::{TlsAcceptor, TlsConnector};

pub use config::IrcConfig;
use session::IrcShared;

use super::{AdapterStats, Judge};
use crate::plugins::LiveChain;

pub struct IrcAdapter {
    shared: Arc<IrcShared>,
    listeners: Vec<(TcpListener, bool)>,
    stats: Arc<AdapterStats>,
}

impl IrcAdapter {
    /// Loads certificates and binds the listeners.
    ///
    /// # Errors
    /// A certificate, key or CA file is unusable, or an address cannot be bound.
    pub async fn bind(config: &IrcConfig, live: Arc<LiveChain>) -> anyhow::Result<Self> {
        let acceptor = match (&config.cert, &config.key) {
            (Some(cert), Some(key)) => {
                Some(TlsAcceptor::from(crate::tls::server_config(cert, key)?))
            }
            _ => None,
        };
        let connector = TlsConnector::from(crate::tls::client_config(
            config.upstream.ca_file.as_deref(),
        )?);
        let stats = Arc::new(AdapterStats::new("irc"));
        let mut listeners = Vec::new();
        for (address, tls) in [(&config.listen, false), (&config.listen_tls, true)] {
            if let Some(address) = address {
                let listener = TcpListener::bind(address)
                    .await
                    .map_err(|e| anyhow::anyhow!("[irc] cannot listen on {address}: {e}"))?;
                listeners.push((listener, tls));
            }
        }
        Ok(IrcAdapter {
            shared: Arc::new(IrcShared {
                config: config.clone(),
                acceptor,
                connector,
                judge: Judge::new(live, stats.clone(), "irc"),
            }),
            listeners,
            stats,
        })
    }

    pub fn stats(&self) -> Arc<AdapterStats> {
        self.stats.clone()
    }

    /// The bound addresses: (address, TLS).
    pub fn local_addrs(&self) -> Vec<(SocketAddr, bool)> {
        self.listeners
            .iter()
            .filter_map(|(l, tls)| l.local_addr().ok().map(|a| (a, *tls)))
            .collect()
    }

    pub async fn serve(self, shutdown: watch::Receiver<bool>) {
        let config = &self.shared.config;
        let shared = self.shared.clone();
        crate::proxy::serve_all(
            self.listeners,
            config.max_connections,
            Duration::from_millis(config.drain_timeout_ms),
            self.stats,
            shutdown,
            move |tcp, peer, tls, shutdown| {
                session::serve(shared.clone(), tcp, peer, tls, shutdown)
            },
        )
        .await
    }
}
