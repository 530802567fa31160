//! Host capabilities: the host-side implementations of the WIT imports.
//!
//! Each capability is one module with three lifetimes kept apart, after
//! Spin's factors:
//! - **config**: what the operator wrote (`*Config`, serde);
//! - **shared**: built and validated once per host (`KvStore`, `ArchiveWriter`,
//!   `MetricsRegistry`);
//! - **per instance**: the small struct a plugin's store holds, which
//!   implements the generated `Host` trait and checks the grant on every call.
//!
//! A plugin's imports are its permission request; [`Grants`] is the
//! operator's answer, checked when the plugin loads (`plugins::LoadedPlugin`)
//! and again on every call.
//!
//! Owns: the host side of `log`, `clock`, `config`, `kv`, `archive`,
//! `metrics`, `bridge` and `match`. Must not touch: adapters or the gateway — a capability
//! serves plugins the same on every network.

pub mod archive;
pub mod bridge;
pub mod clock;
pub mod config;
pub mod kv;
pub mod log;
pub mod matching;
pub mod metrics;
mod v0_1;

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::contract::CONTRACT_PACKAGE;

/// One grantable host interface of `imgate:policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    Log,
    Clock,
    Config,
    Kv,
    Archive,
    Metrics,
    Bridge,
    Match,
}

impl Capability {
    pub const ALL: [Capability; 8] = [
        Capability::Log,
        Capability::Clock,
        Capability::Config,
        Capability::Kv,
        Capability::Archive,
        Capability::Metrics,
        Capability::Bridge,
        Capability::Match,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Capability::Log => "log",
            Capability::Clock => "clock",
            Capability::Config => "config",
            Capability::Kv => "kv",
            Capability::Archive => "archive",
            Capability::Metrics => "metrics",
            Capability::Bridge => "bridge",
            Capability::Match => "match",
        }
    }

    /// Maps a component import name such as `imgate:policy/kv@0.1.0` to its
    /// capability. `None` for names outside the package or for `types`,
    /// which carries no behaviour and needs no grant.
    pub fn from_import(import: &str) -> Option<Result<Capability, String>> {
        let rest = import.strip_prefix(CONTRACT_PACKAGE)?.strip_prefix('/')?;
        let iface = rest.split('@').next().unwrap_or(rest);
        if iface == "types" {
            return None;
        }
        Some(iface.parse())
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Capability {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl FromStr for Capability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Capability::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                let known: Vec<_> = Capability::ALL.iter().map(|c| c.name()).collect();
                format!("unknown capability `{s}` (known: {})", known.join(", "))
            })
    }
}

/// The set of capabilities the operator granted one plugin.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grants(BTreeSet<Capability>);

impl Grants {
    pub fn new(caps: impl IntoIterator<Item = Capability>) -> Self {
        Grants(caps.into_iter().collect())
    }
    pub fn contains(&self, cap: Capability) -> bool {
        self.0.contains(&cap)
    }
    pub fn iter(&self) -> impl Iterator<Item = Capability> + '_ {
        self.0.iter().copied()
    }
}

/// Raised (as a trap) when a plugin calls a capability it was not granted.
/// Load-time checks make this unreachable for well-formed components; it
/// guards against a linker shared between plugins.
#[derive(Debug, thiserror::Error)]
#[error("plugin `{plugin}` called capability `{capability}` which it was not granted")]
pub struct NotGranted {
    pub plugin: Arc<str>,
    pub capability: Capability,
}

impl NotGranted {
    /// The per-call grant check: `Ok` when granted, else this error (a
    /// trap for the calling plugin).
    pub fn check(granted: bool, plugin: &Arc<str>, capability: Capability) -> wasmtime::Result<()> {
        Self::require(granted.then_some(&()), plugin, capability).map(|_| ())
    }

    /// The per-call grant check for capabilities whose per-instance state
    /// exists only when granted.
    pub fn require<'a, T: ?Sized>(
        state: Option<&'a T>,
        plugin: &Arc<str>,
        capability: Capability,
    ) -> wasmtime::Result<&'a T> {
        state.ok_or_else(|| {
            NotGranted {
                plugin: plugin.clone(),
                capability,
            }
            .into()
        })
    }
}

/// The shared halves of every capability, built once per host.
#[derive(Clone, Default)]
pub struct SharedCapabilities {
    pub kv: Arc<kv::KvStore>,
    pub archive: Option<Arc<crate::archive::ArchiveWriter>>,
    pub metrics: Arc<metrics::MetricsRegistry>,
    pub bridges: Arc<bridge::Bridges>,
}

/// The per-instance halves, held in each plugin instance's store.
pub struct InstanceCapabilities {
    pub log: log::LogInstance,
    pub clock: clock::ClockInstance,
    pub config: config::ConfigInstance,
    pub kv: kv::KvInstance,
    pub archive: archive::ArchiveInstance,
    pub metrics: metrics::MetricsInstance,
    pub bridge: bridge::BridgeInstance,
    pub matching: matching::MatchInstance,
}

impl InstanceCapabilities {
    /// Time the call in progress spent waiting for the host's stores (an
    /// archive append's fsync, a kv round trip), which is not the
    /// plugin's to pay for.
    pub fn host_waited(&self) -> std::time::Duration {
        self.archive.waited + self.kv.waited
    }

    /// A new call: nothing waited yet.
    pub fn reset_waits(&mut self) {
        self.archive.waited = std::time::Duration::ZERO;
        self.kv.waited = std::time::Duration::ZERO;
    }
}

/// What one plugin's instances share: its name, grants and per-plugin
/// handles into the shared capabilities. Built once when the plugin loads.
pub struct PluginCapabilities {
    pub plugin: Arc<str>,
    pub grants: Grants,
    pub settings: Arc<config::Settings>,
    pub kv: Option<Arc<kv::Namespace>>,
    pub archive: Option<Arc<crate::archive::ArchiveWriter>>,
    pub metrics: Arc<metrics::PluginMetrics>,
    pub bridges: Option<Arc<bridge::Bridges>>,
    /// The plugin's compiled matchers, when granted `match`.
    pub matchers: Option<Arc<matching::Compiled>>,
}

impl PluginCapabilities {
    pub fn new(
        shared: &SharedCapabilities,
        plugin: &str,
        grants: Grants,
        settings: config::Settings,
    ) -> Self {
        let plugin: Arc<str> = Arc::from(plugin);
        PluginCapabilities {
            kv: grants
                .contains(Capability::Kv)
                .then(|| shared.kv.namespace(&plugin)),
            archive: if grants.contains(Capability::Archive) {
                shared.archive.clone()
            } else {
                None
            },
            metrics: shared.metrics.plugin(&plugin),
            bridges: grants
                .contains(Capability::Bridge)
                .then(|| shared.bridges.clone()),
            matchers: grants
                .contains(Capability::Match)
                .then(|| Arc::new(matching::Compiled::default())),
            settings: Arc::new(settings),
            grants,
            plugin,
        }
    }

    /// The per-instance state for one fresh instance.
    pub fn instance(&self) -> InstanceCapabilities {
        let granted = |c| self.grants.contains(c);
        let plugin = self.plugin.clone();
        InstanceCapabilities {
            log: log::LogInstance::new(plugin.clone(), granted(Capability::Log)),
            clock: clock::ClockInstance::new(plugin.clone(), granted(Capability::Clock)),
            config: config::ConfigInstance::new(
                plugin.clone(),
                granted(Capability::Config).then(|| self.settings.clone()),
            ),
            kv: kv::KvInstance::new(plugin.clone(), self.kv.clone()),
            archive: archive::ArchiveInstance::new(plugin.clone(), self.archive.clone()),
            metrics: metrics::MetricsInstance::new(
                plugin.clone(),
                granted(Capability::Metrics).then(|| self.metrics.clone()),
            ),
            bridge: bridge::BridgeInstance::new(plugin.clone(), self.bridges.clone()),
            matching: matching::MatchInstance::new(plugin, self.matchers.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_names_map_to_capabilities() {
        assert_eq!(
            Capability::from_import("imgate:policy/kv@0.1.0"),
            Some(Ok(Capability::Kv))
        );
        assert_eq!(Capability::from_import("imgate:policy/types@0.1.0"), None);
        assert_eq!(Capability::from_import("wasi:cli/environment@0.2.0"), None);
        assert_eq!(
            Capability::from_import("imgate:policy/bridge@0.2.1"),
            Some(Ok(Capability::Bridge))
        );
        assert!(matches!(
            Capability::from_import("imgate:policy/files@0.2.1"),
            Some(Err(_))
        ));
    }

    #[test]
    fn unknown_capability_names_the_known_ones() {
        let err = "files".parse::<Capability>().unwrap_err();
        assert!(err.contains("`files`") && err.contains("kv"), "{err}");
    }
}
