//! The XMPP adapter: a TLS-terminating client-to-server proxy in front of a
//! real XMPP server.
//!
//! - [`codec`]: bytes to frames and elements, with XMPP's XML restrictions.
//! - [`events`]: stanzas to events and verdicts back to stanzas.
//! - [`sm`]: XEP-0198 counters translated across dropped and injected stanzas.
//! - [`seen`]: verdicts remembered so carbon copies are judged once.
//! - [`session`]: one connection's sockets and state machine.
//! - [`config`]: the `[xmpp]` section.

pub mod codec;
pub mod config;
pub mod events;
pub mod seen;
pub mod session;
pub mod sm;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_rustls::{TlsAcceptor, TlsConnector};

pub use config::XmppConfig;
use session::XmppShared;

use super::{AdapterStats, Judge};
use crate::plugins::LiveChain;
use crate::proxy::Listeners;

/// The adapter with its listeners bound, ready to serve.
pub struct XmppAdapter {
    shared: Arc<XmppShared>,
    listeners: Listeners,
    stats: Arc<AdapterStats>,
}

impl XmppAdapter {
    /// Loads the certificates and binds the listeners.
    ///
    /// # Errors
    /// A certificate, key or CA file is unusable, or an address cannot be bound.
    pub async fn bind(config: &XmppConfig, live: Arc<LiveChain>) -> anyhow::Result<Self> {
        let server = crate::tls::server_config(&config.cert, &config.key)?;
        let client = crate::tls::client_config(config.upstream.ca_file.as_deref())?;
        let stats = Arc::new(AdapterStats::new("xmpp"));
        let listeners = Listeners::bind("xmpp", &config.listen, &config.listen_tls).await?;
        Ok(XmppAdapter {
            shared: Arc::new(XmppShared {
                config: config.clone(),
                acceptor: TlsAcceptor::from(server),
                connector: TlsConnector::from(client),
                judge: Judge::new(live, stats.clone(), "xmpp"),
                seen: seen::SeenMessages::new(65_536),
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

    /// Serves every listener until `shutdown`, then drains sessions.
    pub async fn serve(self, shutdown: watch::Receiver<bool>) {
        let config = &self.shared.config;
        let shared = self.shared.clone();
        self.listeners
            .serve(
                config.max_connections,
                Duration::from_millis(config.drain_timeout_ms),
                self.stats,
                shutdown,
                move |tcp, peer, direct_tls, shutdown| {
                    session::serve(shared.clone(), tcp, peer, direct_tls, shutdown)
                },
            )
            .await
    }
}
