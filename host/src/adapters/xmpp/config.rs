//! `[xmpp]` and `[xmpp.upstream]`: where clients connect, with which
//! certificate, and which real server imgate stands in front of.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::adapters::section::{self, AdapterSection, CommonSection};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XmppConfig {
    /// Client listener offering STARTTLS (XMPP's usual port is 5222).
    #[serde(default = "default_listen")]
    pub listen: Option<String>,
    /// Client listener speaking TLS from the first byte (XEP-0368, often
    /// 5223). Optional.
    #[serde(default)]
    pub listen_tls: Option<String>,
    /// The certificate chain and key clients see (PEM). Clients must trust
    /// it for the domain they log in to.
    pub cert: PathBuf,
    pub key: PathBuf,
    pub upstream: UpstreamConfig,
    /// Connections open at once; more are refused.
    #[serde(default = "section::default_max_connections")]
    pub max_connections: usize,
    /// From accept until the upstream stream is up (TLS, headers): a peer
    /// that never speaks is closed after this.
    #[serde(default = "section::default_handshake_timeout_ms")]
    pub handshake_timeout_ms: u64,
    /// A session with no bytes from its client for this long is closed.
    /// Clients keep idle sessions alive with whitespace or XEP-0199 pings.
    #[serde(default = "section::default_idle_timeout_s")]
    pub idle_timeout_s: u64,
    /// The largest top-level element either side may send.
    #[serde(default = "default_max_stanza_bytes")]
    pub max_stanza_bytes: usize,
    #[serde(default = "default_max_depth")]
    pub max_depth: usize,
    /// On SIGTERM, how long sessions get to close before they are cut.
    #[serde(default = "section::default_drain_timeout_ms")]
    pub drain_timeout_ms: u64,
}

/// How imgate reaches the real server.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamTls {
    /// Plain TCP, then STARTTLS (the usual 5222).
    #[default]
    Starttls,
    /// TLS from the first byte (XEP-0368, usually 5223).
    Direct,
    /// No TLS at all: loopback development only.
    Plain,
}

pub type UpstreamConfig = section::Upstream<UpstreamTls>;

fn default_listen() -> Option<String> {
    Some("0.0.0.0:5222".into())
}
fn default_max_stanza_bytes() -> usize {
    256 << 10
}
fn default_max_depth() -> usize {
    32
}

impl XmppConfig {
    /// Resolves relative paths against the config file's directory.
    pub fn resolve(mut self, base: &Path) -> Self {
        self.cert = base.join(&self.cert);
        self.key = base.join(&self.key);
        self.upstream.ca_file = self.upstream.ca_file.map(|f| base.join(f));
        self
    }
}

impl AdapterSection for XmppConfig {
    fn common(&self) -> CommonSection<'_> {
        CommonSection {
            listen: &self.listen,
            listen_tls: &self.listen_tls,
            upstream_address: &self.upstream.address,
            upstream_plain: self.upstream.tls == UpstreamTls::Plain,
            max_connections: self.max_connections,
            handshake_timeout_ms: self.handshake_timeout_ms,
            idle_timeout_s: self.idle_timeout_s,
            connect_timeout_ms: self.upstream.connect_timeout_ms,
            drain_timeout_ms: self.drain_timeout_ms,
        }
    }

    fn own_problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.max_stanza_bytes < 10_000 {
            out.push("max_stanza_bytes must be at least 10000 (RFC 6120 §13.12)".into());
        }
        if !(4..=256).contains(&self.max_depth) {
            out.push("max_depth must be between 4 and 256".into());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> XmppConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn defaults_and_plaintext_only_on_loopback() {
        let c = parse("cert='c.pem'\nkey='k.pem'\n[upstream]\naddress='xmpp.corp.example:5222'\n");
        assert_eq!(c.listen.as_deref(), Some("0.0.0.0:5222"));
        assert_eq!(c.upstream.tls, UpstreamTls::Starttls);
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        let c = parse(
            "cert='c.pem'\nkey='k.pem'\n[upstream]\naddress='xmpp.corp.example:5222'\ntls='plain'\n",
        );
        assert!(c.problems()[0].contains("loopback"), "{:?}", c.problems());
        let c =
            parse("cert='c.pem'\nkey='k.pem'\n[upstream]\naddress='127.0.0.1:5222'\ntls='plain'\n");
        assert!(c.problems().is_empty());
        let c = parse("cert='c.pem'\nkey='k.pem'\nlisten='nowhere'\n[upstream]\naddress='x'\n");
        assert_eq!(c.problems().len(), 2, "{:?}", c.problems());
    }
}
