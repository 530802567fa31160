//! The accept loop every adapter listener shares: the connection cap, accept
//! error backoff, one task per connection, and draining on shutdown.
//!
//! A connection's error stays in its own task; the listener never sees it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::adapters::AdapterStats;

/// An adapter's bound listeners, each marked with whether it speaks TLS
/// from the first byte.
pub struct Listeners {
    bound: Vec<(TcpListener, bool)>,
}

impl Listeners {
    /// Binds `listen` (plain) and `listen_tls`, whichever are set.
    ///
    /// # Errors
    /// An address cannot be bound.
    pub async fn bind(
        listen: &Option<String>,
        listen_tls: &Option<String>,
    ) -> Result<Self, std::io::Error> {
        let mut bound = Vec::new();
        for (address, tls) in [(listen, false), (listen_tls, true)] {
            if let Some(address) = address {
                let listener = TcpListener::bind(address).await.map_err(|e| {
                    std::io::Error::new(e.kind(), format!("cannot listen on {address}: {e}"))
                })?;
                bound.push((listener, tls));
            }
        }
        Ok(Listeners { bound })
    }

    /// The bound addresses: (address, TLS).
    pub fn local_addrs(&self) -> Vec<(SocketAddr, bool)> {
        self.bound
            .iter()
            .filter_map(|(l, tls)| l.local_addr().ok().map(|a| (a, *tls)))
            .collect()
    }

    /// Serves every listener until `shutdown`, under one connection cap of
    /// `max_connections`, then drains. `handle` gets each connection with
    /// its listener's TLS mark.
    pub async fn serve<H, F>(
        self,
        max_connections: usize,
        drain: Duration,
        stats: Arc<AdapterStats>,
        shutdown: watch::Receiver<bool>,
        handle: H,
    ) where
        H: Fn(TcpStream, SocketAddr, bool, watch::Receiver<bool>) -> F + Clone + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let permits = Arc::new(Semaphore::new(max_connections));
        let mut tasks = JoinSet::new();
        for (listener, tls) in self.bound {
            let handle = handle.clone();
            tasks.spawn(serve(
                listener,
                permits.clone(),
                drain,
                stats.clone(),
                shutdown.clone(),
                move |tcp, peer, shutdown| handle(tcp, peer, tls, shutdown),
            ));
        }
        while tasks.join_next().await.is_some() {}
    }
}

/// Accepts on `listener` until `shutdown`, running `handle` for each
/// connection while `permits` last (listeners of one adapter share them). On shutdown, waits up to
/// `drain` for the open connections (which see the same signal) to close.
async fn serve<H, F>(
    listener: TcpListener,
    permits: Arc<Semaphore>,
    drain: Duration,
    stats: Arc<AdapterStats>,
    mut shutdown: watch::Receiver<bool>,
    handle: H,
) where
    H: Fn(TcpStream, SocketAddr, watch::Receiver<bool>) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let mut connections = JoinSet::new();
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => break,
            // Reap finished connections as we go, so the set stays small.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => {
                backoff = Duration::from_millis(5);
                a
            }
            Err(e) => {
                // Out of file descriptors and the like: wait, do not spin.
                tracing::warn!(error = %e, "accept failed; backing off");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            stats.connections_refused.fetch_add(1, Relaxed);
            tracing::warn!(%peer, "connection refused: at the connection cap");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        stats.connections_total.fetch_add(1, Relaxed);
        stats.connections_active.fetch_add(1, Relaxed);
        let task = handle(stream, peer, shutdown.clone());
        let stats = stats.clone();
        connections.spawn(async move {
            task.await;
            stats.connections_active.fetch_sub(1, Relaxed);
            drop(permit);
        });
    }
    drop(listener);
    let open = connections.len();
    if open > 0 {
        tracing::info!(open, "draining connections");
    }
    if tokio::time::timeout(drain, async {
        while connections.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tracing::warn!(
            left = connections.len(),
            "connections still open after the drain period; closing them"
        );
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
}
