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

use tokio::sync::watch;
use tokio_rustls::{TlsAcceptor, TlsConnector};

pub use config::IrcConfig;
use session::IrcShared;

use super::{AdapterStats, Judge};
use crate::plugins::LiveChain;
use crate::proxy::Listeners;

pub struct IrcAdapter {
    shared: Arc<IrcShared>,
    listeners: Listeners,
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
        let listeners = Listeners::bind("irc", &config.listen, &config.listen_tls).await?;
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

    /// The bound addresses: (address, TLS from the first byte).
    pub fn local_addrs(&self) -> Vec<(SocketAddr, bool)> {
        self.listeners.local_addrs()
    }

    pub async fn serve(self, shutdown: watch::Receiver<bool>) {
        let config = &self.shared.config;
        let shared = self.shared.clone();
        self.listeners
            .serve(
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
