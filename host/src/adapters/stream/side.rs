//! One side of a proxied connection: its socket (plain or TLS, erased),
//! its read buffer and the protocol's framer over that buffer.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::SessionError;

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

/// A protocol's framing: bytes at the front of a buffer to one frame.
/// No I/O; an incomplete frame is not an error.
pub trait Framer: Send {
    type Frame;
    type Error: std::error::Error + Send + Sync + 'static;

    /// The next complete frame, its bytes taken from the front of `buf`;
    /// `None` until more bytes arrive.
    ///
    /// # Errors
    /// The bytes can never become a frame; the session ends.
    fn next_frame(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Frame>, Self::Error>;
}

/// Bytes from `side` that can never become a frame.
#[derive(Debug)]
pub struct FrameError<X> {
    pub side: Peer,
    pub source: X,
}

/// Read space: a new or quiet peer gets a little; each read that fills
/// what it was given doubles it, up to the most. A session that only
/// chats never takes a large buffer, and one that went quiet gives its
/// buffer back (see [`Side::quiet_down`]).
const LEAST_READ: usize = 512;
const MOST_READ: usize = 16 * 1024;

/// One peer: its socket, read buffer and framer.
pub struct Side<F> {
    pub io: Box<dyn Io>,
    pub buf: BytesMut,
    pub framer: F,
    pub peer: Peer,
    /// Read space the next read is given.
    read_size: usize,
}

impl<F: Framer> Side<F> {
    pub fn new(io: Box<dyn Io>, peer: Peer, framer: F) -> Self {
        Side {
            io,
            buf: BytesMut::new(),
            framer,
            peer,
            read_size: LEAST_READ,
        }
    }

    /// Reads once; `Ok(0)` is the peer closing. Cancel-safe.
    pub async fn fill(&mut self) -> std::io::Result<usize> {
        self.buf.reserve(self.read_size);
        let spare = self.buf.capacity() - self.buf.len();
        let n = self.io.read_buf(&mut self.buf).await?;
        if n == spare {
            self.read_size = (self.read_size * 2).min(MOST_READ);
        }
        Ok(n)
    }

    /// The peer has gone quiet: gives the read buffer back (when nothing
    /// is waiting in it), so an idle session costs its sockets and little
    /// else; reads start small again and grow as the peer talks.
    pub fn quiet_down(&mut self) {
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
        self.read_size = LEAST_READ;
    }

    /// The next complete frame already buffered.
    ///
    /// # Errors
    /// The framer's, as the protocol's own error naming this side.
    pub fn next_frame<E>(&mut self) -> Result<Option<F::Frame>, SessionError<E>>
    where
        E: std::error::Error + From<FrameError<F::Error>> + 'static,
    {
        self.framer.next_frame(&mut self.buf).map_err(|source| {
            SessionError::Protocol(E::from(FrameError {
                side: self.peer,
                source,
            }))
        })
    }

    /// Writes and flushes `bytes`.
    ///
    /// # Errors
    /// The socket failed; `phase` names what the session was doing.
    pub async fn send<E: std::error::Error + 'static>(
        &mut self,
        bytes: &[u8],
        phase: &'static str,
    ) -> Result<(), SessionError<E>> {
        let io = |source| SessionError::Io {
            side: self.peer,
            phase,
            source,
        };
        self.io.write_all(bytes).await.map_err(io)?;
        self.io.flush().await.map_err(io)
    }

    /// Whether anything but whitespace is left unread: a peer that closes
    /// now cut a frame in half.
    pub fn holds_partial_frame(&self) -> bool {
        self.buf.iter().any(|b| !b.is_ascii_whitespace())
    }
}

/// After telling a client why it is being closed, shuts the write side and
/// reads and discards what it is still sending for a moment, so closing
/// does not reset the connection and destroy the message before the client
/// has read it.
pub async fn linger(io: &mut (impl AsyncRead + AsyncWrite + Unpin + ?Sized)) {
    let _ = io.shutdown().await;
    let mut scratch = vec![0u8; 16384];
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while matches!(io.read(&mut scratch).await, Ok(n) if n > 0) {}
    })
    .await;
}
