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

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::{TlsAcceptor, TlsConnector};

pub use config::XmppConfig;
use session::XmppShared;

use super::{AdapterStats, Judge};
use crate::plugins::LiveChain;

/// The adapter with its listeners bound, ready to serve.
pub struct XmppAdapter {
    shared: Arc<XmppShared>,
    listeners: Vec<(TcpListener, bool)>,
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
        let mut listeners = Vec::new();
        for (address, direct_tls) in [(&config.listen, false), (&config.listen_tls, true)] {
            if let Some(address) = address {
                let listener = TcpListener::bind(address)
                    .await
                    .map_err(|e| anyhow::anyhow!("[xmpp] cannot listen on {address}: {e}"))?;
                listeners.push((listener, direct_tls));
            }
        }
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

    /// The bound addresses: (address, direct TLS).
    pub fn local_addrs(&self) -> Vec<(SocketAddr, bool)> {
        self.listeners
            .iter()
            .filter_map(|(l, tls)| l.local_addr().ok().map(|a| (a, *tls)))
            .collect()
    }

    /// Serves every listener until `shutdown`, then drains sessions.
    pub async fn serve(self, shutdown: watch::Receiver<bool>) {
        let config = &self.shared.config;
        let shared = self.shared.clone();
        crate::proxy::serve_all(
            self.listeners,
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
