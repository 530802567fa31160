//! Reaching the real server, and TLS on either side: the steps of a
//! handshake every stream protocol takes in its own order.

use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::SessionError;
use super::side::{Io, Peer};

/// A TCP connection to `address`, within `within` (`upstream.connect_timeout_ms`).
///
/// # Errors
/// The address does not answer, or not in time.
pub async fn connect<E: std::error::Error + 'static>(
    address: &str,
    within: Duration,
) -> Result<TcpStream, SessionError<E>> {
    let tcp = match tokio::time::timeout(within, TcpStream::connect(address)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(source)) => {
            return Err(SessionError::Io {
                side: Peer::Upstream,
                phase: "connect",
                source,
            });
        }
        Err(_) => {
            return Err(SessionError::Timeout {
                phase: "connecting upstream",
            });
        }
    };
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

/// TLS to the server, which must prove it is `name`.
///
/// # Errors
/// `name` is not a TLS server name, or the handshake fails.
pub async fn tls_to<E: std::error::Error + 'static>(
    connector: &TlsConnector,
    name: &str,
    io: Box<dyn Io>,
) -> Result<Box<dyn Io>, SessionError<E>> {
    let server_name = rustls::pki_types::ServerName::try_from(name.to_owned())
        .map_err(|_| SessionError::ServerName(name.to_owned()))?;
    let tls = connector
        .connect(server_name, io)
        .await
        .map_err(|source| SessionError::Tls {
            side: Peer::Upstream,
            source,
        })?;
    Ok(Box::new(tls))
}

/// TLS with the client, as the gateway's certificate.
///
/// # Errors
/// The handshake fails.
pub async fn tls_from<E: std::error::Error + 'static>(
    acceptor: &TlsAcceptor,
    io: Box<dyn Io>,
) -> Result<Box<dyn Io>, SessionError<E>> {
    let tls = acceptor
        .accept(io)
        .await
        .map_err(|source| SessionError::Tls {
            side: Peer::Client,
            source,
        })?;
    Ok(Box::new(tls))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("none")]
    struct NoProtocolError;

    /// A server that never accepts and whose queue is full: a connect to
    /// it hangs (Linux drops the SYN), as to a black-holed address.
    async fn full_listener() -> (tokio::net::TcpListener, Vec<TcpStream>) {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(1).unwrap();
        let address = listener.local_addr().unwrap();
        let mut queued = Vec::new();
        while let Ok(Ok(s)) =
            tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(address)).await
        {
            queued.push(s);
        }
        (listener, queued)
    }

    #[tokio::test]
    async fn the_connect_timeout_bounds_the_connect() {
        let (listener, _queued) = full_listener().await;
        let address = listener.local_addr().unwrap().to_string();
        let started = std::time::Instant::now();
        let result = connect::<NoProtocolError>(&address, Duration::from_millis(300)).await;
        assert!(
            matches!(
                result,
                Err(SessionError::Timeout {
                    phase: "connecting upstream"
                })
            ),
            "{result:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
