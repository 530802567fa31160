//! One client connection's connection to the homeserver: made when the
//! first request needs it, made again when the homeserver closed it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio_rustls::TlsConnector;

use crate::adapters::stream::Io;
use crate::adapters::stream::{SessionError, upstream};

/// Bodies imgate sends either way: streamed through, or its own.
pub type ProxyBody = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// A body imgate wrote itself.
pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A body passed through as it arrives.
pub fn streamed(body: Incoming) -> ProxyBody {
    body.map_err(Into::into).boxed()
}

/// How to reach the homeserver.
pub struct Homeserver {
    pub address: String,
    /// TLS with the name the certificate must carry; `None`: plain HTTP.
    pub tls: Option<(TlsConnector, String)>,
    pub connect_timeout: Duration,
    /// The longest the homeserver may take to start answering (a `/sync`
    /// long-poll included).
    pub answer_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot reach the homeserver: {0}")]
    Connect(String),
    #[error("the homeserver did not answer in time")]
    Timeout,
    #[error("the homeserver connection failed: {0}")]
    Http(#[from] hyper::Error),
}

#[derive(Debug, thiserror::Error)]
#[error("matrix")]
pub struct NoProtocolError;

/// The connection of one client connection.
pub struct Upstream {
    homeserver: Arc<Homeserver>,
    sender: tokio::sync::Mutex<Option<SendRequest<ProxyBody>>>,
}

impl Upstream {
    pub fn new(homeserver: Arc<Homeserver>) -> Self {
        Upstream {
            homeserver,
            sender: tokio::sync::Mutex::new(None),
        }
    }

    /// Sends `request` and returns the response's head; its body streams.
    ///
    /// # Errors
    /// The homeserver cannot be reached, fails, or does not answer in
    /// time.
    pub async fn send(
        &self,
        request: Request<ProxyBody>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let mut slot = self.sender.lock().await;
        let sender = match slot.as_mut() {
            Some(s) if !s.is_closed() => s,
            _ => slot.insert(self.connect().await?),
        };
        let within = self.homeserver.answer_timeout;
        let answer = tokio::time::timeout(within, async {
            sender.ready().await?;
            sender.send_request(request).await
        })
        .await;
        match answer {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => {
                *slot = None;
                Err(e.into())
            }
            Err(_) => {
                *slot = None;
                Err(UpstreamError::Timeout)
            }
        }
    }

    async fn connect(&self) -> Result<SendRequest<ProxyBody>, UpstreamError> {
        let hs = &self.homeserver;
        let connect = |e: SessionError<NoProtocolError>| UpstreamError::Connect(e.to_string());
        let tcp = upstream::connect(&hs.address, hs.connect_timeout)
            .await
            .map_err(connect)?;
        let io: Box<dyn Io> = match &hs.tls {
            None => Box::new(tcp),
            Some((connector, name)) => tokio::time::timeout(
                hs.connect_timeout,
                upstream::tls_to(connector, name, Box::new(tcp)),
            )
            .await
            .map_err(|_| UpstreamError::Timeout)?
            .map_err(connect)?,
        };
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "homeserver connection ended");
            }
        });
        Ok(sender)
    }
}
