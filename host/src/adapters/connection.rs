//! Connection plumbing every adapter's session shares: which side of the
//! proxy a socket is, the socket type both TLS and plain streams erase to,
//! and the polite close after refusing a client.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Which side of the proxy a connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    Client,
    Upstream,
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Peer::Client => "client",
            Peer::Upstream => "upstream",
        })
    }
}

/// A plain or TLS stream, either side.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// After telling a client why it is being closed, shuts the write side and
/// reads and discards what it is still sending for a moment, so closing
/// does not reset the connection and destroy the message before the client
/// has read it.
pub async fn linger(io: &mut (impl AsyncRead + AsyncWrite + Unpin)) {
    let _ = io.shutdown().await;
    let mut scratch = vec![0u8; 16384];
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while matches!(io.read(&mut scratch).await, Ok(n) if n > 0) {}
    })
    .await;
}
