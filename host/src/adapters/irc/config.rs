//! `[irc]` and `[irc.upstream]`: where IRC clients connect and which real
//! server imgate stands in front of.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::adapters::section::{self, AdapterSection, CommonSection, host_of};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IrcConfig {
    /// Plain client listener (IRC's 6667). Optional.
    #[serde(default)]
    pub listen: Option<String>,
    /// TLS client listener (6697). Optional; needs `cert` and `key`.
    #[serde(default)]
    pub listen_tls: Option<String>,
    #[serde(default)]
    pub cert: Option<PathBuf>,
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// The prefix of the gateway's own NOTICEs (a block's reason).
    #[serde(default = "default_server_name")]
    pub server_name: String,
    pub upstream: UpstreamConfig,
    #[serde(default = "section::default_max_connections")]
    pub max_connections: usize,
    /// From accept until the upstream connection is up (TLS included).
    #[serde(default = "section::default_handshake_timeout_ms")]
    pub handshake_timeout_ms: u64,
    /// A session with no bytes from its client for this long is closed
    /// (clients answer the server's PINGs, so a live one never is).
    #[serde(default = "section::default_idle_timeout_s")]
    pub idle_timeout_s: u64,
    /// Lines a client may send per second on average, after a burst of
    /// `flood_burst`; beyond that the session is closed with an ERROR.
    /// 0 turns the check off.
    #[serde(default = "default_flood_rate")]
    pub flood_lines_per_s: u32,
    #[serde(default = "default_flood_burst")]
    pub flood_burst: u32,
    #[serde(default = "section::default_drain_timeout_ms")]
    pub drain_timeout_ms: u64,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamTls {
    #[default]
    Tls,
    Plain,
}

pub type UpstreamConfig = section::Upstream<UpstreamTls>;

fn default_server_name() -> String {
    "imgate".into()
}
fn default_flood_rate() -> u32 {
    20
}
fn default_flood_burst() -> u32 {
    100
}

impl IrcConfig {
    pub fn resolve(mut self, base: &Path) -> Self {
        self.cert = self.cert.map(|c| base.join(c));
        self.key = self.key.map(|k| base.join(k));
        self.upstream.ca_file = self.upstream.ca_file.map(|f| base.join(f));
        self
    }

    /// The host part of the upstream address, for TLS.
    pub fn upstream_host(&self) -> &str {
        host_of(&self.upstream.address)
    }
}

impl AdapterSection for IrcConfig {
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
        if self.listen_tls.is_some() && (self.cert.is_none() || self.key.is_none()) {
            out.push("listen_tls needs cert and key".into());
        }
        if self.server_name.is_empty() || self.server_name.contains([' ', ':']) {
            out.push("server_name must be one word".into());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_problems() {
        let c: IrcConfig = toml::from_str(
            "listen = '127.0.0.1:6667'\n[upstream]\naddress = 'irc.corp.example:6697'\n",
        )
        .unwrap();
        assert_eq!(c.upstream.tls, UpstreamTls::Tls);
        assert_eq!(c.upstream_host(), "irc.corp.example");
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        let c: IrcConfig =
            toml::from_str("listen_tls = '127.0.0.1:6697'\n[upstream]\naddress = 'x'\n").unwrap();
        assert_eq!(c.problems().len(), 2, "{:?}", c.problems());
    }
}
