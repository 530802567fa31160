//! Connecting an XMPP session: TLS with the client (STARTTLS or direct),
//! its first encrypted header, then a stream to the real server secured as
//! configured. The client's header is forwarded; from there both streams
//! are relayed (`session`).
//!
//! ```text
//! client ──(STARTTLS | direct TLS)──▶ imgate ──(STARTTLS | direct TLS | plain)──▶ server
//! ```

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::Xmpp;
use super::codec::{CodecError, Element, Frame, Framer};
use super::session::{XmppError, XmppSession, condition};
use super::wire::{NS_TLS, header_from, header_to, stream_error};
use crate::adapters::stream::{
    Accepted, Base, Connected, Io, Peer, Protocol, SessionError, Side, upstream,
};

type Error = SessionError<XmppError>;

impl Protocol for Xmpp {
    const NETWORK: &'static str = "xmpp";
    type Hooks = XmppSession;

    fn base(&self) -> &Base {
        &self.base
    }

    async fn connect(
        &self,
        Accepted {
            tcp,
            peer,
            tls: direct_tls,
            id,
            deadline,
        }: Accepted<'_>,
    ) -> Result<Connected<XmppSession>, Error> {
        let (mut client, header, domain) =
            match tokio::time::timeout_at(deadline, accept_client(self, tcp, direct_tls, id)).await
            {
                Ok(r) => r?,
                Err(_) => {
                    return Err(SessionError::Timeout {
                        phase: "client handshake",
                    });
                }
            };
        let mut server =
            match tokio::time::timeout_at(deadline, connect_upstream(self, &domain)).await {
                Ok(Ok(u)) => u,
                Ok(Err(e)) => {
                    fail_client(&mut client, &domain, id, &e).await;
                    return Err(e);
                }
                Err(_) => {
                    let e = SessionError::Timeout {
                        phase: "connecting upstream",
                    };
                    fail_client(&mut client, &domain, id, &e).await;
                    return Err(e);
                }
            };
        server.send(&header, "stream start").await?;
        tracing::debug!(%domain, "upstream stream open");
        Ok(Connected {
            client,
            upstream: server,
            hooks: XmppSession::new(self, id, peer, domain),
        })
    }
}

/// Tells a client still waiting for the server's header why it is closed.
async fn fail_client(client: &mut Side<Framer>, domain: &str, id: &str, e: &Error) {
    let out = format!(
        "{}{}",
        header_from(domain, id),
        stream_error(condition(e), &e.to_string())
    );
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        client.send::<XmppError>(out.as_bytes(), "close"),
    )
    .await;
    let _ = client.io.shutdown().await;
}

/// The next frame that is not whitespace, reading as needed.
async fn read_frame(side: &mut Side<Framer>, phase: &'static str) -> Result<Frame, Error> {
    loop {
        match side.next_frame()? {
            Some(Frame::Whitespace(_)) => continue,
            Some(frame) => return Ok(frame),
            None => {}
        }
        let n = side.fill().await.map_err(|source| SessionError::Io {
            side: side.peer,
            phase,
            source,
        })?;
        if n == 0 {
            return Err(SessionError::Closed {
                side: side.peer,
                phase,
            });
        }
    }
}

pub(super) async fn read_header(
    side: &mut Side<Framer>,
    phase: &'static str,
) -> Result<Vec<u8>, Error> {
    match read_frame(side, phase).await? {
        Frame::StreamOpen(tag) => Ok(tag),
        _ => Err(broke(
            side.peer,
            format!("expected a stream header during {phase}"),
        )),
    }
}

pub(super) async fn read_element(
    side: &mut Side<Framer>,
    phase: &'static str,
) -> Result<Element, Error> {
    match read_frame(side, phase).await? {
        Frame::Element(raw) => Element::parse(&raw).map_err(|source| codec(side.peer, source)),
        _ => Err(broke(
            side.peer,
            format!("expected an element during {phase}"),
        )),
    }
}

fn broke(side: Peer, reason: impl Into<String>) -> Error {
    SessionError::Protocol(XmppError::Broke {
        side,
        reason: reason.into(),
    })
}

fn codec(side: Peer, source: CodecError) -> Error {
    SessionError::Protocol(XmppError::Codec { side, source })
}

/// TLS with the client (STARTTLS or direct) and its first encrypted header.
/// Returns the header as received, to forward, and the domain it names.
async fn accept_client(
    xmpp: &Xmpp,
    tcp: TcpStream,
    direct_tls: bool,
    id: &str,
) -> Result<(Side<Framer>, Vec<u8>, String), Error> {
    let tls = if direct_tls {
        upstream::tls_from(&xmpp.acceptor, Box::new(tcp)).await?
    } else {
        let mut plain = Side::new(Box::new(tcp), Peer::Client, xmpp.framer());
        let header = match read_header(&mut plain, "stream start").await {
            Ok(h) => h,
            Err(e) => {
                // Answer with a header of our own so the error is readable.
                let out = format!(
                    "{}{}",
                    header_from("", id),
                    stream_error(condition(&e), &e.to_string())
                );
                let _ = plain.send::<XmppError>(out.as_bytes(), "close").await;
                return Err(e);
            }
        };
        let domain = domain_of(&header).unwrap_or_default();
        let features = format!(
            "{}<stream:features><starttls xmlns='{NS_TLS}'><required/></starttls></stream:features>",
            header_from(&domain, id)
        );
        plain.send(features.as_bytes(), "STARTTLS").await?;
        match read_element(&mut plain, "STARTTLS").await {
            Ok(el) if el.is("starttls", NS_TLS) => {}
            Ok(_) | Err(SessionError::Protocol(_)) => {
                let e = broke(Peer::Client, "TLS is required: send <starttls/> first");
                let _ = plain
                    .send::<XmppError>(
                        stream_error(condition(&e), &e.to_string()).as_bytes(),
                        "close",
                    )
                    .await;
                return Err(e);
            }
            Err(e) => return Err(e),
        }
        plain
            .send(
                format!("<proceed xmlns='{NS_TLS}'/>").as_bytes(),
                "STARTTLS",
            )
            .await?;
        upstream::tls_from(&xmpp.acceptor, plain.io).await?
    };
    let mut client = Side::new(tls, Peer::Client, xmpp.framer());
    let header = read_header(&mut client, "stream start after TLS").await?;
    let Some(domain) = domain_of(&header) else {
        let e = broke(Peer::Client, "the stream header names no domain (`to`)");
        fail_client(&mut client, "", id, &e).await;
        return Err(e);
    };
    Ok((client, header, domain))
}

fn domain_of(header: &[u8]) -> Option<String> {
    super::codec::stream_attrs(header)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == "to")
        .map(|(_, v)| v)
        .filter(|d| !d.is_empty())
}

/// A stream to the real server, secured as configured, ready for the
/// client's header.
pub(super) async fn connect_upstream(xmpp: &Xmpp, domain: &str) -> Result<Side<Framer>, Error> {
    use super::config::UpstreamTls;
    let up = &xmpp.config.upstream;
    let tcp: Box<dyn Io> =
        Box::new(upstream::connect(&up.address, xmpp.base.timeouts.connect).await?);
    let name = up.server_name.as_deref().unwrap_or(domain);
    let io: Box<dyn Io> = match up.tls {
        UpstreamTls::Plain => tcp,
        UpstreamTls::Direct => upstream::tls_to(&xmpp.connector, name, tcp).await?,
        UpstreamTls::Starttls => {
            let mut plain = Side::new(tcp, Peer::Upstream, xmpp.framer());
            plain.send(header_to(domain).as_bytes(), "STARTTLS").await?;
            read_header(&mut plain, "STARTTLS").await?;
            let features = read_element(&mut plain, "STARTTLS").await?;
            if features.child("starttls", NS_TLS).is_none() {
                return Err(broke(
                    Peer::Upstream,
                    "the server does not offer STARTTLS; set upstream.tls",
                ));
            }
            plain
                .send(
                    format!("<starttls xmlns='{NS_TLS}'/>").as_bytes(),
                    "STARTTLS",
                )
                .await?;
            let answer = read_element(&mut plain, "STARTTLS").await?;
            if !answer.is("proceed", NS_TLS) {
                return Err(broke(Peer::Upstream, "the server refused STARTTLS"));
            }
            upstream::tls_to(&xmpp.connector, name, plain.io).await?
        }
    };
    Ok(Side::new(io, Peer::Upstream, xmpp.framer()))
}
