//! The IRC adapter: a proxy in front of a real IRC server, plain or TLS on
//! either side. Owns IRC's lines and registration; the accept loop, relay
//! and close are `stream`'s, and policy is reached only through the `Gate`.
//!
//! - [`codec`]: bytes to lines (CR or LF, IRCv3 length limits) and lines
//!   to their parts; re-splitting text to fit.
//! - [`events`]: lines to events and verdicts back to lines.
//! - `handshake`: TLS with the client, the connection to the server.
//! - `session`: one connection's lines, as hooks of the session driver.
//! - [`config`]: the `[irc]` section.

pub mod codec;
pub mod config;
pub mod events;
mod handshake;
pub mod relay;
mod session;

use std::sync::Arc;

use tokio_rustls::{TlsAcceptor, TlsConnector};

pub use config::IrcConfig;
pub use session::IrcSession;

use super::review::Reviews;
use super::section::AdapterSection;
use super::stream::{Adapter, Base, Timeouts};
use super::{AdapterError, Gate};
use crate::event::Judge;

/// The IRC protocol as the session driver runs it; built once per adapter.
pub struct Irc {
    config: IrcConfig,
    acceptor: Option<TlsAcceptor>,
    connector: TlsConnector,
    base: Base,
}

impl Irc {
    /// Loads the certificates.
    ///
    /// # Errors
    /// A certificate, key or CA file is unusable.
    pub fn new(config: &IrcConfig, judge: Arc<dyn Judge>) -> Result<Self, AdapterError> {
        let tls = |source| AdapterError::Tls {
            network: "irc",
            source,
        };
        let acceptor = match (&config.cert, &config.key) {
            (Some(cert), Some(key)) => Some(TlsAcceptor::from(
                crate::tls::server_config(cert, key).map_err(tls)?,
            )),
            _ => None,
        };
        let connector = TlsConnector::from(
            crate::tls::client_config(config.upstream.ca_file.as_deref()).map_err(tls)?,
        );
        Ok(Irc {
            base: Base {
                gate: Gate::new(judge, "irc"),
                timeouts: Timeouts::of(&config.common()),
            },
            config: config.clone(),
            acceptor,
            connector,
        })
    }
}

/// The IRC adapter with its listeners bound.
pub type IrcAdapter = Adapter<Irc>;

impl IrcAdapter {
    /// Loads certificates and binds the listeners.
    ///
    /// # Errors
    /// A certificate, key or CA file is unusable, or an address cannot be bound.
    /// Rulings on held messages reach its sessions through `reviews`.
    pub async fn start(
        config: &IrcConfig,
        judge: Arc<dyn Judge>,
        reviews: Arc<Reviews>,
    ) -> Result<Self, AdapterError> {
        let mut protocol = Irc::new(config, judge)?;
        protocol.base.gate = protocol.base.gate.clone().with_reviews(reviews);
        Adapter::bind(protocol, config.common()).await
    }
}
