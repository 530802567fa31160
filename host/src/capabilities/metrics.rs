//! `metrics`: counters and histograms, both the host's own per-plugin
//! figures ([`PluginStats`]) and those a plugin defines through the WIT
//! `metrics` interface. Rendered in Prometheus text format.
//!
//! Host counters are atomics, so the hot path takes no lock. Plugin-defined
//! metrics take a per-plugin lock and are capped in number, so a plugin
//! cannot grow host memory by inventing names.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Capability, NotGranted};
use crate::contract::metrics::Host;

/// Most distinct metric names one plugin may define.
pub const MAX_PLUGIN_METRICS: usize = 64;
const MAX_NAME_BYTES: usize = 64;

/// Buckets for plugin-defined histograms (Prometheus' defaults).
const VALUE_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets for per-call latency, in seconds: 1 µs to 10 ms, the deadline.
const LATENCY_BUCKETS: [f64; 12] = [
    1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 5e-3, 1e-2,
];

const NANOS: f64 = 1e9;
const MILLIONTHS: f64 = 1e6;

/// A fixed-bucket histogram with atomic counts: two atomic adds per
/// observation (its bucket, the sum); the count is the buckets' total.
pub struct Histogram {
    bounds: &'static [f64],
    /// One per bound, then the overflow (`+Inf`) bucket.
    counts: Box<[AtomicU64]>,
    /// Sum in units of `1 / scale`, so it stays an atomic integer.
    sum: AtomicU64,
    scale: f64,
}

impl Histogram {
    /// Values summed to `1 / scale`: nanoseconds for call latencies (a
    /// no-op call is well under a microsecond), millionths otherwise.
    fn new(bounds: &'static [f64], scale: f64) -> Self {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            scale,
        }
    }

    pub fn observe(&self, value: f64) {
        if !value.is_finite() {
            return;
        }
        let i = self
            .bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Relaxed);
        self.sum
            .fetch_add((value.max(0.0) * self.scale) as u64, Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().map(|n| n.load(Relaxed)).sum()
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bound, n) in self.bounds.iter().zip(&self.counts) {
            cumulative += n.load(Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = cumulative + self.counts[self.bounds.len()].load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum.load(Relaxed) as f64 / self.scale;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// Buckets for durable archive appends, in seconds: 100 µs to 1 s.
const APPEND_BUCKETS: [f64; 13] = [
    1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0,
];

/// Host-wide figures that belong to no plugin.
pub struct HostStats {
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
    pub archive_appends: AtomicU64,
    pub archive_append_failures: AtomicU64,
    /// From queueing an append to its acknowledgement (durable).
    pub archive_append_seconds: Histogram,
}

impl Default for HostStats {
    fn default() -> Self {
        HostStats {
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            archive_appends: AtomicU64::new(0),
            archive_append_failures: AtomicU64::new(0),
            archive_append_seconds: Histogram::new(&APPEND_BUCKETS, NANOS),
        }
    }
}

impl crate::archive::AppendStats for HostStats {
    fn appended(&self, ok: bool, took: std::time::Duration) {
        if ok {
            self.archive_appends.fetch_add(1, Relaxed);
        } else {
            self.archive_append_failures.fetch_add(1, Relaxed);
        }
        self.archive_append_seconds.observe(took.as_secs_f64());
    }
}

/// The host's own figures for one plugin.
pub struct PluginStats {
    pub traps: AtomicU64,
    pub timeouts: AtomicU64,
    pub memory_exceeded: AtomicU64,
    pub invalid_verdicts: AtomicU64,
    pub fail_open_skips: AtomicU64,
    pub instantiations: AtomicU64,
    pub allow: AtomicU64,
    pub block: AtomicU64,
    pub drop: AtomicU64,
    pub rewrite: AtomicU64,
    pub hold: AtomicU64,
    pub latency: Histogram,
}

impl Default for PluginStats {
    fn default() -> Self {
        PluginStats {
            traps: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            memory_exceeded: AtomicU64::new(0),
            invalid_verdicts: AtomicU64::new(0),
            fail_open_skips: AtomicU64::new(0),
            instantiations: AtomicU64::new(0),
            allow: AtomicU64::new(0),
            block: AtomicU64::new(0),
            drop: AtomicU64::new(0),
            rewrite: AtomicU64::new(0),
            hold: AtomicU64::new(0),
            latency: Histogram::new(&LATENCY_BUCKETS, NANOS),
        }
    }
}

impl PluginStats {
    /// Counts a call and its latency (the call count is the histogram's:
    /// one atomic less on every call).
    pub fn record_call(&self, took: Duration) {
        self.latency.observe(took.as_secs_f64());
    }

    /// Calls into the plugin so far.
    pub fn calls(&self) -> u64 {
        self.latency.count()
    }
}

#[derive(Default)]
struct Custom {
    counters: BTreeMap<String, u64>,
    histograms: BTreeMap<String, Histogram>,
}

/// Everything measured about one plugin.
#[derive(Default)]
pub struct PluginMetrics {
    pub stats: PluginStats,
    custom: Mutex<Custom>,
}

fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
        && name.len() <= MAX_NAME_BYTES
}

impl PluginMetrics {
    fn custom(&self) -> std::sync::MutexGuard<'_, Custom> {
        self.custom.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds to a plugin-defined counter. Returns false when the name is
    /// invalid or the plugin already defined [`MAX_PLUGIN_METRICS`] names.
    pub fn counter_add(&self, name: &str, delta: u64) -> bool {
        let mut c = self.custom();
        let defined = c.counters.len() + c.histograms.len();
        match c.counters.get_mut(name) {
            Some(v) => *v = v.saturating_add(delta),
            None if valid_name(name) && defined < MAX_PLUGIN_METRICS => {
                c.counters.insert(name.to_owned(), delta);
            }
            None => return false,
        }
        true
    }

    /// Records into a plugin-defined histogram; same limits as counters.
    pub fn histogram_observe(&self, name: &str, value: f64) -> bool {
        let mut c = self.custom();
        let defined = c.counters.len() + c.histograms.len();
        if !c.histograms.contains_key(name) {
            if !valid_name(name) || defined >= MAX_PLUGIN_METRICS {
                return false;
            }
            c.histograms
                .insert(name.to_owned(), Histogram::new(&VALUE_BUCKETS, MILLIONTHS));
        }
        if let Some(h) = c.histograms.get(name) {
            h.observe(value);
        }
        true
    }

    pub fn counter(&self, name: &str) -> Option<u64> {
        self.custom().counters.get(name).copied()
    }
}

/// All plugins' metrics, shared by the host.
#[derive(Default)]
pub struct MetricsRegistry {
    plugins: Mutex<HashMap<String, Arc<PluginMetrics>>>,
    pub host: Arc<HostStats>,
}

impl MetricsRegistry {
    /// The metrics for `plugin`; a reloaded plugin keeps counting.
    pub fn plugin(&self, plugin: &str) -> Arc<PluginMetrics> {
        let mut all = self.plugins.lock().unwrap_or_else(|p| p.into_inner());
        all.entry(plugin.to_owned()).or_default().clone()
    }

    /// Prometheus text exposition of every plugin's metrics.
    pub fn render_prometheus(&self) -> String {
        let all: Vec<(String, Arc<PluginMetrics>)> = {
            let map = self.plugins.lock().unwrap_or_else(|p| p.into_inner());
            let mut v: Vec<_> = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        let mut out = String::new();
        let h = &self.host;
        for (name, help, value) in [
            (
                "imgate_reloads_total{result=\"ok\"}",
                "Chain reloads.",
                &h.reloads_ok,
            ),
            (
                "imgate_reloads_total{result=\"failed\"}",
                "",
                &h.reloads_failed,
            ),
            (
                "imgate_archive_appends_total{result=\"ok\"}",
                "Archive appends.",
                &h.archive_appends,
            ),
            (
                "imgate_archive_appends_total{result=\"failed\"}",
                "",
                &h.archive_append_failures,
            ),
        ] {
            let family = name.split('{').next().unwrap_or(name);
            if !help.is_empty() {
                let _ = writeln!(out, "# HELP {family} {help}\n# TYPE {family} counter");
            }
            let _ = writeln!(out, "{name} {}", value.load(Relaxed));
        }
        let name = "imgate_archive_append_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time until an archive append is durable.\n# TYPE {name} histogram"
        );
        h.archive_append_seconds.render(&mut out, name, "");
        type Counter = fn(&PluginStats) -> u64;
        let counters: [(&str, &str, Counter); 7] = [
            ("imgate_plugin_calls_total", "Calls into the plugin", |s| {
                s.latency.count()
            }),
            ("imgate_plugin_traps_total", "Calls that trapped", |s| {
                s.traps.load(Relaxed)
            }),
            (
                "imgate_plugin_timeouts_total",
                "Calls stopped by the deadline",
                |s| s.timeouts.load(Relaxed),
            ),
            (
                "imgate_plugin_memory_exceeded_total",
                "Calls stopped by the memory cap",
                |s| s.memory_exceeded.load(Relaxed),
            ),
            (
                "imgate_plugin_invalid_verdicts_total",
                "Verdicts refused by the host",
                |s| s.invalid_verdicts.load(Relaxed),
            ),
            (
                "imgate_plugin_fail_open_skips_total",
                "Failures skipped under fail-open",
                |s| s.fail_open_skips.load(Relaxed),
            ),
            (
                "imgate_plugin_instantiations_total",
                "Fresh instances created",
                |s| s.instantiations.load(Relaxed),
            ),
        ];
        for (name, help, get) in counters {
            let _ = writeln!(out, "# HELP {name} {help}.\n# TYPE {name} counter");
            for (plugin, m) in &all {
                let _ = writeln!(out, "{name}{{plugin=\"{plugin}\"}} {}", get(&m.stats));
            }
        }
        let name = "imgate_plugin_verdicts_total";
        let _ = writeln!(
            out,
            "# HELP {name} Verdicts returned, by action.\n# TYPE {name} counter"
        );
        for (plugin, m) in &all {
            let s = &m.stats;
            for (action, n) in [
                ("allow", &s.allow),
                ("block", &s.block),
                ("drop", &s.drop),
                ("rewrite", &s.rewrite),
                ("hold", &s.hold),
            ] {
                let _ = writeln!(
                    out,
                    "{name}{{plugin=\"{plugin}\",action=\"{action}\"}} {}",
                    n.load(Relaxed)
                );
            }
        }
        let name = "imgate_plugin_call_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time per plugin call.\n# TYPE {name} histogram"
        );
        for (plugin, m) in &all {
            m.stats
                .latency
                .render(&mut out, name, &format!("plugin=\"{plugin}\""));
        }
        for (plugin, m) in &all {
            let c = m.custom();
            for (metric, v) in &c.counters {
                let name = format!("imgate_custom_{metric}");
                let _ = writeln!(
                    out,
                    "# TYPE {name} counter\n{name}{{plugin=\"{plugin}\"}} {v}"
                );
            }
            for (metric, h) in &c.histograms {
                let name = format!("imgate_custom_{metric}");
                let _ = writeln!(out, "# TYPE {name} histogram");
                h.render(&mut out, &name, &format!("plugin=\"{plugin}\""));
            }
        }
        out
    }
}

pub struct MetricsInstance {
    plugin: Arc<str>,
    metrics: Option<Arc<PluginMetrics>>,
}

impl MetricsInstance {
    pub fn new(plugin: Arc<str>, metrics: Option<Arc<PluginMetrics>>) -> Self {
        MetricsInstance { plugin, metrics }
    }

    fn metrics(&self) -> wasmtime::Result<&PluginMetrics> {
        NotGranted::require(self.metrics.as_deref(), &self.plugin, Capability::Metrics)
    }
}

impl Host for MetricsInstance {
    fn counter_add(&mut self, name: String, delta: u64) -> wasmtime::Result<()> {
        if !self.metrics()?.counter_add(&name, delta) {
            tracing::debug!(plugin = %self.plugin, metric = %name, "metric refused: bad name or too many metrics");
        }
        Ok(())
    }

    fn histogram_observe(&mut self, name: String, value: f64) -> wasmtime::Result<()> {
        if !self.metrics()?.histogram_observe(&name, value) {
            tracing::debug!(plugin = %self.plugin, metric = %name, "metric refused: bad name or too many metrics");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_metrics_are_validated_and_capped() {
        let m = PluginMetrics::default();
        assert!(m.counter_add("hits", 2));
        assert!(m.counter_add("hits", 3));
        assert_eq!(m.counter("hits"), Some(5));
        assert!(!m.counter_add("Bad-Name", 1));
        assert!(!m.counter_add("", 1));
        for i in 1..MAX_PLUGIN_METRICS {
            assert!(m.histogram_observe(&format!("h{i}"), 0.2));
        }
        assert!(!m.counter_add("one_too_many", 1));
        assert!(m.counter_add("hits", 1), "existing names keep working");
    }

    #[test]
    fn host_figures_are_rendered() {
        let reg = MetricsRegistry::default();
        reg.host.reloads_ok.fetch_add(2, Relaxed);
        reg.host.archive_appends.fetch_add(1, Relaxed);
        reg.host.archive_append_seconds.observe(0.0003);
        let text = reg.render_prometheus();
        assert!(
            text.contains("imgate_reloads_total{result=\"ok\"} 2"),
            "{text}"
        );
        assert!(text.contains("imgate_reloads_total{result=\"failed\"} 0"));
        assert!(text.contains("imgate_archive_appends_total{result=\"ok\"} 1"));
        assert!(
            text.contains("imgate_archive_append_seconds_bucket{le=\"0.0005\"} 1"),
            "{text}"
        );
        assert!(text.contains("imgate_archive_append_seconds_count{} 1"));
    }

    #[test]
    fn prometheus_text_has_plugin_labels_and_buckets() {
        let reg = MetricsRegistry::default();
        let p = reg.plugin("dlp");
        p.stats.record_call(Duration::from_micros(3));
        p.stats.traps.fetch_add(1, Relaxed);
        p.counter_add("matches", 7);
        p.histogram_observe("score", 0.3);
        let text = reg.render_prometheus();
        assert!(
            text.contains("imgate_plugin_calls_total{plugin=\"dlp\"} 1"),
            "{text}"
        );
        assert!(text.contains("imgate_plugin_traps_total{plugin=\"dlp\"} 1"));
        assert!(
            text.contains("imgate_plugin_call_seconds_bucket{plugin=\"dlp\",le=\"0.000005\"} 1"),
            "{text}"
        );
        assert!(text.contains("imgate_custom_matches{plugin=\"dlp\"} 7"));
        assert!(text.contains("imgate_custom_score_bucket{plugin=\"dlp\",le=\"0.5\"} 1"));
    }
}
