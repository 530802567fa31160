//! What every stream protocol shares: the accept loop, one session driver
//! (connect, relay, close), the two sides of a connection, and reaching
//! the upstream server. A protocol is a [`Protocol`] (its handshake) and
//! its [`Hooks`] (its frames); it writes no accept loop and no relay.
//!
//! Owns: sockets, buffers, timeouts, the order of goodbyes. Must not
//! touch: any protocol's wire format, the runtime.

mod driver;
mod listen;
mod side;
pub mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use driver::{
    Accepted, Base, Connected, Farewell, Hooks, HooksError, Outbox, Protocol, SessionError,
    Timeouts,
};
pub use side::{FrameError, Framer, Io, Peer, Side, linger};

use super::section::CommonSection;
use super::{AdapterError, AdapterStats};
pub use listen::Listeners;

/// A stream protocol with its listeners bound, ready to serve.
pub struct Adapter<P: Protocol> {
    protocol: Arc<P>,
    listeners: Listeners,
    max_connections: usize,
    drain: Duration,
}

impl<P: Protocol> Adapter<P> {
    /// Binds the section's listeners for `protocol`.
    ///
    /// # Errors
    /// An address cannot be bound.
    pub async fn bind(protocol: P, section: CommonSection<'_>) -> Result<Self, AdapterError> {
        let listeners = Listeners::bind(section.listen, section.listen_tls)
            .await
            .map_err(|source| AdapterError::Listen {
                network: P::NETWORK,
                source,
            })?;
        Ok(Adapter {
            protocol: Arc::new(protocol),
            listeners,
            max_connections: section.max_connections,
            drain: Duration::from_millis(section.drain_timeout_ms),
        })
    }

    pub fn stats(&self) -> Arc<AdapterStats> {
        self.protocol.base().gate.shared_stats()
    }

    /// The bound addresses: (address, TLS from the first byte).
    pub fn local_addrs(&self) -> Vec<(SocketAddr, bool)> {
        self.listeners.local_addrs()
    }

    /// Serves every listener until `shutdown`, then drains sessions.
    pub async fn serve(self, shutdown: watch::Receiver<bool>) {
        let protocol = self.protocol.clone();
        self.listeners
            .serve(
                self.max_connections,
                self.drain,
                self.protocol.base().gate.shared_stats(),
                shutdown,
                move |tcp, peer, tls, shutdown| {
                    driver::serve(protocol.clone(), tcp, peer, tls, shutdown)
                },
            )
            .await
    }
}

impl Timeouts {
    pub fn of(section: &CommonSection<'_>) -> Self {
        Timeouts {
            handshake: Duration::from_millis(section.handshake_timeout_ms),
            idle: Duration::from_secs(section.idle_timeout_s),
            connect: Duration::from_millis(section.connect_timeout_ms),
        }
    }
}
