//! The checks every adapter's config section shares: listener addresses,
//! the upstream `host:port` and its transport, the connection cap and the
//! timeouts. Each adapter adds its own on top.

use std::net::SocketAddr;

/// The parts of an adapter section every network has.
pub struct CommonSection<'a> {
    pub listen: &'a Option<String>,
    pub listen_tls: &'a Option<String>,
    pub upstream_address: &'a str,
    /// The upstream hop is plain TCP.
    pub upstream_plain: bool,
    pub max_connections: usize,
    pub handshake_timeout_ms: u64,
    pub idle_timeout_s: u64,
    pub connect_timeout_ms: u64,
    pub drain_timeout_ms: u64,
}

/// An adapter's section of the operator's file.
pub trait AdapterSection {
    /// The settings every network has.
    fn common(&self) -> CommonSection<'_>;

    /// Problems with the settings only this network has.
    fn own_problems(&self) -> Vec<String>;

    /// Every problem with the section.
    fn problems(&self) -> Vec<String> {
        let mut out = self.common().problems();
        out.extend(self.own_problems());
        out
    }
}

impl CommonSection<'_> {
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (key, value) in [("listen", self.listen), ("listen_tls", self.listen_tls)] {
            if let Some(v) = value
                && v.parse::<SocketAddr>().is_err()
            {
                out.push(format!("{key} `{v}` is not an ip:port address"));
            }
        }
        if self.listen.is_none() && self.listen_tls.is_none() {
            out.push("set listen, listen_tls or both".into());
        }
        let address = self.upstream_address;
        if address
            .rsplit_once(':')
            .is_none_or(|(_, p)| p.parse::<u16>().is_err())
        {
            out.push(format!("upstream.address `{address}` must be host:port"));
        }
        // Staff messages must not cross a network in the clear: plain TCP
        // is for a server on the same machine (development, benchmarks).
        if self.upstream_plain && !is_loopback(address) {
            out.push(format!(
                "upstream.tls = \"plain\" is for loopback development only, and `{address}` is not loopback"
            ));
        }
        if self.max_connections == 0 {
            out.push("max_connections must be at least 1".into());
        }
        for (key, v) in [
            ("handshake_timeout_ms", self.handshake_timeout_ms),
            ("idle_timeout_s", self.idle_timeout_s),
            ("upstream.connect_timeout_ms", self.connect_timeout_ms),
        ] {
            if v == 0 {
                out.push(format!("{key} must be more than 0"));
            }
        }
        out
    }
}

/// `[<network>.upstream]`: the real server imgate stands in front of.
/// `T` is the network's ways of securing the hop; its `Default` is the
/// usual one.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream<T: Default> {
    /// `host:port` of the real server.
    pub address: String,
    #[serde(default)]
    pub tls: T,
    /// Trust these CAs (PEM) instead of the system's roots.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    /// The name the server's certificate must carry; by default the host
    /// the client asked for (XMPP) or the host part of `address` (IRC).
    #[serde(default)]
    pub server_name: Option<String>,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
}

// Defaults every adapter section shares (serde `default = "…"`).
pub fn default_max_connections() -> usize {
    10_000
}
pub fn default_handshake_timeout_ms() -> u64 {
    10_000
}
pub fn default_idle_timeout_s() -> u64 {
    900
}
pub fn default_drain_timeout_ms() -> u64 {
    5_000
}
pub fn default_connect_timeout_ms() -> u64 {
    10_000
}

/// The host part of `host:port`, without IPv6 brackets.
pub fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

pub fn is_loopback(address: &str) -> bool {
    let host = host_of(address);
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section<'a>(
        listen: &'a Option<String>,
        upstream: &'a str,
        plain: bool,
    ) -> CommonSection<'a> {
        CommonSection {
            listen,
            listen_tls: &None,
            upstream_address: upstream,
            upstream_plain: plain,
            max_connections: 10,
            handshake_timeout_ms: 1,
            idle_timeout_s: 1,
            connect_timeout_ms: 0,
            drain_timeout_ms: 0,
        }
    }

    #[test]
    fn every_common_problem_is_named() {
        let bad = Some("nowhere".to_string());
        let problems = section(&bad, "irc.example.net", false).problems();
        assert_eq!(
            problems,
            [
                "listen `nowhere` is not an ip:port address",
                "upstream.address `irc.example.net` must be host:port",
                "upstream.connect_timeout_ms must be more than 0",
            ]
        );
        assert!(section(&None, "x:1", false).problems()[0].contains("set listen"));
    }

    #[test]
    fn plain_upstream_only_to_loopback() {
        let listen = Some("127.0.0.1:6667".to_string());
        for ok in ["127.0.0.1:6667", "localhost:5222", "[::1]:6667"] {
            let p = section(&listen, ok, true).problems();
            assert!(!p.iter().any(|p| p.contains("plain")), "{ok}: {p:?}");
        }
        let p = section(&listen, "irc.example.net:6667", true).problems();
        assert!(p.iter().any(|p| p.contains("not loopback")), "{p:?}");
        assert_eq!(host_of("[::1]:6667"), "::1");
    }
}
