//! Connecting an IRC session: TLS with the client if its listener speaks
//! it, then the server, plain or TLS. Registration itself (CAP, NICK,
//! USER, SASL) is relayed as ordinary lines.

use super::Irc;
use super::codec::Framer;
use super::config::UpstreamTls;
use super::session::{IrcError, IrcSession};
use crate::adapters::stream::{
    Accepted, Base, Connected, Io, Peer, Protocol, SessionError, Side, upstream,
};

impl Protocol for Irc {
    const NETWORK: &'static str = "irc";
    type Hooks = IrcSession;

    fn base(&self) -> &Base {
        &self.base
    }

    async fn connect(
        &self,
        accepted: Accepted<'_>,
    ) -> Result<Connected<IrcSession>, SessionError<IrcError>> {
        let deadline = accepted.deadline;
        match tokio::time::timeout_at(deadline, self.connect_within(accepted)).await {
            Ok(connected) => connected,
            Err(_) => Err(SessionError::Timeout {
                phase: "connecting",
            }),
        }
    }
}

impl Irc {
    async fn connect_within(
        &self,
        Accepted {
            tcp, peer, tls, id, ..
        }: Accepted<'_>,
    ) -> Result<Connected<IrcSession>, SessionError<IrcError>> {
        let client: Box<dyn Io> = match (&self.acceptor, tls) {
            (Some(acceptor), true) => upstream::tls_from(acceptor, Box::new(tcp)).await?,
            (None, true) => return Err(SessionError::Protocol(IrcError::NoCertificate)),
            (_, false) => Box::new(tcp),
        };
        let up = &self.config.upstream;
        let tcp: Box<dyn Io> =
            Box::new(upstream::connect(&up.address, self.base.timeouts.connect).await?);
        let server: Box<dyn Io> = match up.tls {
            UpstreamTls::Plain => tcp,
            UpstreamTls::Tls => {
                let name = up
                    .server_name
                    .as_deref()
                    .unwrap_or_else(|| self.config.upstream_host());
                upstream::tls_to(&self.connector, name, tcp).await?
            }
        };
        Ok(Connected {
            client: Side::new(client, Peer::Client, Framer::default()),
            upstream: Side::new(server, Peer::Upstream, Framer::default()),
            hooks: IrcSession::new(self, id, peer),
        })
    }
}
