//! What crossed each adapter: connections, events, verdicts and bytes.
//! Plain atomic counters, read by the admin API and the metrics page.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde_json::json;

#[derive(Debug, Default)]
pub struct AdapterStats {
    pub network: &'static str,
    pub connections_active: AtomicU64,
    pub connections_total: AtomicU64,
    /// Turned away at the connection cap.
    pub connections_refused: AtomicU64,
    /// Ended by an error (protocol, TLS, timeout, upstream).
    pub connection_errors: AtomicU64,
    pub events: AtomicU64,
    pub allowed: AtomicU64,
    pub blocked: AtomicU64,
    pub dropped: AtomicU64,
    pub rewritten: AtomicU64,
    pub held: AtomicU64,
    /// Events that took the verdict another session's copy of the same
    /// message got, rather than being judged again.
    pub verdicts_reused: AtomicU64,
    /// Bytes read from clients and from upstream servers.
    pub bytes_from_clients: AtomicU64,
    pub bytes_from_upstream: AtomicU64,
}

impl AdapterStats {
    pub fn new(network: &'static str) -> Self {
        AdapterStats {
            network,
            ..Default::default()
        }
    }

    pub fn count_action(&self, kind: &str) {
        match kind {
            "block" => &self.blocked,
            "drop" => &self.dropped,
            "rewrite" => &self.rewritten,
            "hold" => &self.held,
            _ => &self.allowed,
        }
        .fetch_add(1, Relaxed);
    }

    /// The admin API's summary.
    pub fn summary(&self) -> serde_json::Value {
        json!({
            "connections": {
                "active": self.connections_active.load(Relaxed),
                "total": self.connections_total.load(Relaxed),
                "refused": self.connections_refused.load(Relaxed),
                "errors": self.connection_errors.load(Relaxed),
            },
            "events": self.events.load(Relaxed),
            "verdicts": {
                "allow": self.allowed.load(Relaxed),
                "block": self.blocked.load(Relaxed),
                "drop": self.dropped.load(Relaxed),
                "rewrite": self.rewritten.load(Relaxed),
                "hold": self.held.load(Relaxed),
            },
            "verdicts_reused": self.verdicts_reused.load(Relaxed),
            "bytes": {
                "from_clients": self.bytes_from_clients.load(Relaxed),
                "from_upstream": self.bytes_from_upstream.load(Relaxed),
            },
        })
    }
}

/// Prometheus text for every adapter.
pub fn render_prometheus(adapters: &[std::sync::Arc<AdapterStats>]) -> String {
    let mut out = String::new();
    type Get = fn(&AdapterStats) -> &AtomicU64;
    let families: [(&str, &str, &str, &str, Get); 13] = [
        (
            "imgate_adapter_connections",
            "gauge",
            "Connections open now.",
            "",
            |s| &s.connections_active,
        ),
        (
            "imgate_adapter_connections_total",
            "counter",
            "Connections accepted.",
            "",
            |s| &s.connections_total,
        ),
        (
            "imgate_adapter_connections_refused_total",
            "counter",
            "Connections refused at the cap.",
            "",
            |s| &s.connections_refused,
        ),
        (
            "imgate_adapter_connection_errors_total",
            "counter",
            "Connections ended by an error.",
            "",
            |s| &s.connection_errors,
        ),
        (
            "imgate_adapter_events_total",
            "counter",
            "Events met (judged, or given the verdict of a copy).",
            "",
            |s| &s.events,
        ),
        (
            "imgate_adapter_verdicts_total",
            "counter",
            "Final verdicts applied, by action.",
            "action=\"allow\"",
            |s| &s.allowed,
        ),
        (
            "imgate_adapter_verdicts_total",
            "",
            "",
            "action=\"block\"",
            |s| &s.blocked,
        ),
        (
            "imgate_adapter_verdicts_total",
            "",
            "",
            "action=\"drop\"",
            |s| &s.dropped,
        ),
        (
            "imgate_adapter_verdicts_total",
            "",
            "",
            "action=\"rewrite\"",
            |s| &s.rewritten,
        ),
        (
            "imgate_adapter_verdicts_total",
            "",
            "",
            "action=\"hold\"",
            |s| &s.held,
        ),
        (
            "imgate_adapter_verdicts_reused_total",
            "counter",
            "Events that took the verdict of another local copy of the same message.",
            "",
            |s| &s.verdicts_reused,
        ),
        (
            "imgate_adapter_bytes_total",
            "counter",
            "Bytes read, by side.",
            "side=\"client\"",
            |s| &s.bytes_from_clients,
        ),
        (
            "imgate_adapter_bytes_total",
            "",
            "",
            "side=\"upstream\"",
            |s| &s.bytes_from_upstream,
        ),
    ];
    for (name, kind, help, label, get) in families {
        if !kind.is_empty() {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        }
        for a in adapters {
            let sep = if label.is_empty() { "" } else { "," };
            let _ = writeln!(
                out,
                "{name}{{network=\"{}\"{sep}{label}}} {}",
                a.network,
                get(a).load(Relaxed)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn renders_each_family_once_per_adapter() {
        let a = Arc::new(AdapterStats::new("xmpp"));
        a.count_action("block");
        a.bytes_from_clients.fetch_add(10, Relaxed);
        let text = render_prometheus(std::slice::from_ref(&a));
        assert!(
            text.contains("imgate_adapter_verdicts_total{network=\"xmpp\",action=\"block\"} 1"),
            "{text}"
        );
        assert!(text.contains("imgate_adapter_bytes_total{network=\"xmpp\",side=\"client\"} 10"));
        assert_eq!(
            text.matches("# TYPE imgate_adapter_verdicts_total").count(),
            1
        );
        assert_eq!(a.summary()["verdicts"]["block"], 1);
    }
}
