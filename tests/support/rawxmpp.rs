//! A minimal XMPP client in Rust for load: STARTTLS, SASL PLAIN, bind,
//! then raw stanzas. Used by the throughput benchmark, where a Python
//! client would be the bottleneck. Frames with imgate's own codec.

use std::path::Path;

use bytes::BytesMut;
use imgate::adapters::xmpp::codec::{Element, Frame, Framer, Limits};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub struct RawClient<S = Box<dyn Io>> {
    pub io: S,
    buf: BytesMut,
    framer: Framer,
    /// The bound full JID.
    pub jid: String,
}

const LIMITS: Limits = Limits {
    max_stanza_bytes: 1 << 20,
    max_depth: 64,
};

fn header(domain: &str) -> String {
    format!(
        "<?xml version='1.0'?><stream:stream to='{domain}' xmlns='jabber:client' \
         xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
    )
}

fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl<S: AsyncRead + AsyncWrite + Unpin> RawClient<S> {
    fn new(io: S) -> Self {
        RawClient {
            io,
            buf: BytesMut::with_capacity(65536),
            framer: Framer::new(LIMITS),
            jid: String::new(),
        }
    }

    /// The next frame other than whitespace; `None` when the server closed.
    pub async fn frame(&mut self) -> std::io::Result<Option<Frame>> {
        loop {
            match self.framer.next(&self.buf) {
                Ok(Some((Frame::Whitespace(_), n))) => {
                    let _ = self.buf.split_to(n);
                    continue;
                }
                Ok(Some((frame, n))) => {
                    let _ = self.buf.split_to(n);
                    return Ok(Some(frame));
                }
                Ok(None) => {}
                Err(e) => return Err(std::io::Error::other(e.to_string())),
            }
            self.buf.reserve(65536);
            if self.io.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }

    pub async fn element(&mut self) -> std::io::Result<Element> {
        loop {
            match self.frame().await? {
                Some(Frame::Element(raw)) => {
                    return Element::parse(&raw).map_err(|e| std::io::Error::other(e.to_string()));
                }
                Some(Frame::StreamOpen(_)) => continue,
                Some(other) => return Err(std::io::Error::other(format!("unexpected {other:?}"))),
                None => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            }
        }
    }

    pub async fn send(&mut self, xml: &str) -> std::io::Result<()> {
        self.io.write_all(xml.as_bytes()).await?;
        self.io.flush().await
    }
}

/// The reading side of a split client.
pub type Reader = RawClient<tokio::io::Join<tokio::io::ReadHalf<Box<dyn Io>>, tokio::io::Sink>>;

impl RawClient {
    /// Splits into a reader (framing what arrives, as before) and the
    /// writing half, to read and write from two tasks.
    pub fn split(self) -> (Reader, tokio::io::WriteHalf<Box<dyn Io>>) {
        let (r, w) = tokio::io::split(self.io);
        let reader = RawClient {
            io: tokio::io::join(r, tokio::io::sink()),
            buf: self.buf,
            framer: self.framer,
            jid: self.jid,
        };
        (reader, w)
    }

    /// Connects to `addr`, STARTTLS trusting `ca`, logs in as
    /// `user@domain` and binds `resource`.
    pub async fn login(
        addr: std::net::SocketAddr,
        ca: &Path,
        domain: &str,
        user: &str,
        password: &str,
        resource: &str,
    ) -> std::io::Result<RawClient> {
        let mut c = RawClient::past_starttls(addr, ca, domain).await?;
        let token = base64(format!("\0{user}\0{password}").as_bytes());
        c.send(&format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>"
        ))
        .await?;
        let result = c.element().await?;
        if result.local_name() != "success" {
            return Err(std::io::Error::other(format!(
                "login failed: {}",
                result.to_xml()
            )));
        }
        c.framer = Framer::new(LIMITS);
        c.send(&header(domain)).await?;
        let _features = c.element().await?;
        c.send(&format!(
            "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
             <resource>{resource}</resource></bind></iq>"
        ))
        .await?;
        let bound = c.element().await?;
        c.jid = bound
            .child("bind", "urn:ietf:params:xml:ns:xmpp-bind")
            .and_then(|b| b.child("jid", "urn:ietf:params:xml:ns:xmpp-bind"))
            .map(Element::text)
            .ok_or_else(|| std::io::Error::other(format!("bind failed: {}", bound.to_xml())))?;
        c.send("<presence/>").await?;
        Ok(c)
    }

    /// Connects to `addr` and STARTTLS trusting `ca`, up to the stream
    /// features that offer the login: a session that has not logged in.
    pub async fn past_starttls(
        addr: std::net::SocketAddr,
        ca: &Path,
        domain: &str,
    ) -> std::io::Result<RawClient> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let mut c = RawClient::new(tcp);
        c.send(&header(domain)).await?;
        let features = c.element().await?;
        if features.to_xml().find("starttls").is_none() {
            return Err(std::io::Error::other("no STARTTLS offered"));
        }
        c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            .await?;
        let proceed = c.element().await?;
        if proceed.local_name() != "proceed" {
            return Err(std::io::Error::other(format!(
                "STARTTLS refused: {}",
                proceed.to_xml()
            )));
        }
        let config = imgate::tls::client_config(Some(ca)).map_err(std::io::Error::other)?;
        let name = rustls::pki_types::ServerName::try_from(domain.to_owned())
            .map_err(std::io::Error::other)?;
        let tls = TlsConnector::from(config).connect(name, c.io).await?;
        let mut c: RawClient = RawClient::new(Box::new(tls));
        c.send(&header(domain)).await?;
        let _features = c.element().await?;
        Ok(c)
    }
}
