//! The XMPP adapter: a TLS-terminating client-to-server proxy in front of a
//! real XMPP server. Owns XMPP's streams and stanzas; the accept loop, relay
//! and close are `stream`'s, and policy is reached only through the `Gate`.
//!
//! - [`codec`]: bytes to frames and elements, with XMPP's XML restrictions.
//! - [`events`]: stanzas to events and verdicts back to stanzas.
//! - `handshake`: TLS with the client, its header, the stream to the server.
//! - `session`: one connection's frames, as hooks of the session driver.
//! - `rooms`: room membership as one session sees it.
//! - `sm`: XEP-0198 counters translated across dropped and injected stanzas.
//! - `wire`: stream headers and errors the gateway writes itself.
//! - [`relay`]: the gateway's own account, for bridging.
//! - [`config`]: the `[xmpp]` section.

pub mod codec;
pub mod config;
pub mod events;
mod handshake;
pub mod relay;
mod rooms;
mod session;
mod sm;
mod wire;

use std::sync::Arc;

use tokio_rustls::{TlsAcceptor, TlsConnector};

pub use config::XmppConfig;

use super::review::Reviews;
use super::section::AdapterSection;
use super::stream::{Adapter, Base, Timeouts};
use super::{AdapterError, Gate};
use crate::event::Judge;

/// The XMPP protocol as the session driver runs it; built once per adapter.
pub struct Xmpp {
    config: XmppConfig,
    acceptor: TlsAcceptor,
    connector: TlsConnector,
    base: Base,
}

impl Xmpp {
    /// Loads the certificates.
    ///
    /// # Errors
    /// A certificate, key or CA file is unusable.
    pub fn new(config: &XmppConfig, judge: Arc<dyn Judge>) -> Result<Self, AdapterError> {
        let tls = |source| AdapterError::Tls {
            network: "xmpp",
            source,
        };
        let server = crate::tls::server_config(&config.cert, &config.key).map_err(tls)?;
        let client = crate::tls::client_config(config.upstream.ca_file.as_deref()).map_err(tls)?;
        Ok(Xmpp {
            base: Base {
                gate: Gate::new(judge, "xmpp"),
                timeouts: Timeouts::of(&config.common()),
            },
            config: config.clone(),
            acceptor: TlsAcceptor::from(server),
            connector: TlsConnector::from(client),
        })
    }

    fn framer(&self) -> codec::Framer {
        codec::Framer::new(codec::Limits {
            max_stanza_bytes: self.config.max_stanza_bytes,
            max_depth: self.config.max_depth,
        })
    }
}

/// The XMPP adapter with its listeners bound.
pub type XmppAdapter = Adapter<Xmpp>;

impl XmppAdapter {
    /// Loads the certificates and binds the listeners.
    ///
    /// # Errors
    /// A certificate, key or CA file is unusable, or an address cannot be bound.
    /// Rulings on held messages reach its sessions through `reviews`.
    pub async fn start(
        config: &XmppConfig,
        judge: Arc<dyn Judge>,
        reviews: Arc<Reviews>,
    ) -> Result<Self, AdapterError> {
        let mut protocol = Xmpp::new(config, judge)?;
        protocol.base.gate = protocol.base.gate.clone().with_reviews(reviews);
        Adapter::bind(protocol, config.common()).await
    }
}
