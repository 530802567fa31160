//! `[matrix]` and `[matrix.upstream]`: where Matrix clients connect and
//! which homeserver imgate stands in front of.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::adapters::section::{self, AdapterSection, CommonSection, host_of};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixConfig {
    /// Plain HTTP listener, for loopback development only. Optional.
    #[serde(default)]
    pub listen: Option<String>,
    /// HTTPS listener for clients; needs `cert` and `key`.
    #[serde(default)]
    pub listen_tls: Option<String>,
    #[serde(default)]
    pub cert: Option<PathBuf>,
    #[serde(default)]
    pub key: Option<PathBuf>,
    pub upstream: UpstreamConfig,
    #[serde(default = "section::default_max_connections")]
    pub max_connections: usize,
    /// A client must send a request's headers within this long, and the
    /// body of a request imgate judges (JSON, at most `max_json_bytes`)
    /// within this long again.
    #[serde(default = "default_header_timeout_ms")]
    pub header_timeout_ms: u64,
    /// From accept until TLS is up, and for each connect upstream.
    #[serde(default = "section::default_handshake_timeout_ms")]
    pub handshake_timeout_ms: u64,
    /// A connection with no request in flight for this long is closed.
    #[serde(default = "section::default_idle_timeout_s")]
    pub idle_timeout_s: u64,
    #[serde(default = "section::default_drain_timeout_ms")]
    pub drain_timeout_ms: u64,
    /// The largest JSON body of a request imgate judges (Synapse's own
    /// limit for an event is 64 KiB).
    #[serde(default = "default_max_json_bytes")]
    pub max_json_bytes: usize,
    /// How deeply a judged JSON body may nest.
    #[serde(default = "default_max_json_depth")]
    pub max_json_depth: usize,
    /// Access tokens whose owner is remembered (one `/whoami` each).
    #[serde(default = "default_tokens")]
    pub remembered_tokens: usize,
    /// Transactions whose verdict is remembered, so a client's retry is
    /// answered the same way without being judged again.
    #[serde(default = "default_transactions")]
    pub remembered_transactions: usize,
    /// Delivered events whose verdict is remembered, by event id, so each
    /// is judged once however many clients sync it.
    #[serde(default = "default_events")]
    pub remembered_events: usize,
    /// The largest answer to a `/sync` or history request imgate judges;
    /// a larger one is refused rather than shown unjudged.
    #[serde(default = "default_max_listing_bytes")]
    pub max_listing_bytes: usize,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamTls {
    /// HTTPS to the homeserver.
    #[default]
    Tls,
    /// Plain HTTP, for a homeserver on the same machine.
    Plain,
}

pub type UpstreamConfig = section::Upstream<UpstreamTls>;

fn default_header_timeout_ms() -> u64 {
    10_000
}
fn default_max_json_bytes() -> usize {
    1 << 20
}
fn default_max_json_depth() -> usize {
    32
}
fn default_tokens() -> usize {
    100_000
}
fn default_transactions() -> usize {
    65_536
}
fn default_events() -> usize {
    262_144
}
fn default_max_listing_bytes() -> usize {
    64 << 20
}

impl MatrixConfig {
    pub fn resolve(mut self, base: &Path) -> Self {
        self.cert = self.cert.map(|c| base.join(c));
        self.key = self.key.map(|k| base.join(k));
        self.upstream.ca_file = self.upstream.ca_file.map(|f| base.join(f));
        self
    }

    /// The name the homeserver's certificate must carry.
    pub fn upstream_name(&self) -> &str {
        self.upstream
            .server_name
            .as_deref()
            .unwrap_or_else(|| host_of(&self.upstream.address))
    }
}

impl AdapterSection for MatrixConfig {
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
        if let Some(listen) = &self.listen
            && !section::is_loopback(listen)
        {
            out.push(format!(
                "listen `{listen}` is plain HTTP, for loopback only: access tokens must not cross a network in the clear (use listen_tls)"
            ));
        }
        for (key, v) in [
            ("header_timeout_ms", self.header_timeout_ms as usize),
            ("max_json_bytes", self.max_json_bytes),
            ("max_json_depth", self.max_json_depth),
            ("remembered_tokens", self.remembered_tokens),
            ("remembered_transactions", self.remembered_transactions),
            ("remembered_events", self.remembered_events),
            ("max_listing_bytes", self.max_listing_bytes),
        ] {
            if v == 0 {
                out.push(format!("{key} must be more than 0"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_problems() {
        let c: MatrixConfig = toml::from_str(
            "listen_tls = '0.0.0.0:8448'\ncert = 'c'\nkey = 'k'\n[upstream]\naddress = 'matrix.corp.example:443'\n",
        )
        .unwrap();
        assert_eq!(c.upstream.tls, UpstreamTls::Tls);
        assert_eq!(c.upstream_name(), "matrix.corp.example");
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        let bad: MatrixConfig = toml::from_str(
            "listen = '0.0.0.0:8008'\nlisten_tls = '0.0.0.0:8448'\nmax_json_depth = 0\n[upstream]\naddress = 'matrix.corp.example:8008'\ntls = 'plain'\n",
        )
        .unwrap();
        let p = bad.problems().join("\n");
        for expected in [
            "listen_tls needs cert and key",
            "for loopback only",
            "max_json_depth must be more than 0",
            "not loopback",
        ] {
            assert!(p.contains(expected), "{expected}: {p}");
        }
    }
}
