//! A loaded plugin: its compiled component, linked once into an
//! `InstancePre`, the pool of ready instances, its health (crash-loop
//! backoff) and the checks on what it returns.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use wasmtime::component::InstancePre;

use super::engine::{CompileSource, PluginEngine, sha256_hex};
use super::inspect::{ImportKind, Inspection, Line, inspect};
use super::instance::{
    CallFailure, Exports, HostState, InstanceRecipe, PluginInstance, error_text,
};
use super::verdict::VerdictLimits;
use crate::capabilities::{PluginCapabilities, config::Settings, metrics::PluginMetrics};
use crate::config::PluginSpec;
use crate::contract::{
    CONTRACT_PACKAGE, CONTRACT_VERSIONS, handler, interest, lifecycle, observer, v0_1,
};
use crate::event::{Action, Decider, Event, FinalVerdict, Kind, KindSet, Verdict};
use crate::signing::{self, SignatureError, Verified};

/// Why a plugin could not be loaded. Each names the plugin's problem in
/// terms an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("sha256 is {actual}, but the config pins {expected}")]
    PinMismatch { expected: String, actual: String },
    #[error("{0}")]
    Signature(#[from] SignatureError),
    #[error("is not a valid component: {0}")]
    Compile(String),
    #[error(
        "imports `{import}` but is not granted `{capability}`; add \"{capability}\" to its grants to allow it"
    )]
    NotGranted { import: String, capability: String },
    #[error("imports `{0}`, which imgate does not provide")]
    UnknownImport(String),
    #[error("targets contract {found}, but this host implements imgate:policy@{host}")]
    IncompatibleContract { found: String, host: String },
    #[error("its `interest` export failed: {0}")]
    Interest(CallFailure),
    #[error("exports neither `handler` nor `observer` of imgate:policy; is it an imgate plugin?")]
    NoRole,
    #[error("does not export `lifecycle` (init) of imgate:policy")]
    NoLifecycle,
    #[error("cannot be linked: {0}")]
    Link(String),
    #[error("failed to start: {0}")]
    Init(CallFailure),
}

/// Crash-loop protection: after [`BACKOFF_AFTER`] consecutive failures the
/// plugin is not called for a while, doubling up to [`BACKOFF_MAX`]. Its
/// failure policy answers for it meanwhile.
pub const BACKOFF_AFTER: u32 = 3;
pub const BACKOFF_BASE: Duration = Duration::from_millis(100);
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Health {
    consecutive: AtomicU32,
    until_ns: AtomicU64,
}

impl Health {
    fn check(&self) -> Result<(), CallFailure> {
        let until = self.until_ns.load(Relaxed);
        if until == 0 {
            return Ok(());
        }
        let now = crate::capabilities::clock::monotonic_ns();
        if now < until {
            return Err(CallFailure::BackingOff {
                failures: self.consecutive.load(Relaxed),
                remaining: Duration::from_nanos(until - now),
            });
        }
        Ok(())
    }

    fn succeeded(&self) {
        if self.consecutive.load(Relaxed) != 0 {
            self.consecutive.store(0, Relaxed);
            self.until_ns.store(0, Relaxed);
        }
    }

    /// Returns the backoff started, if this failure started one.
    fn failed(&self) -> Option<Duration> {
        let n = self.consecutive.fetch_add(1, Relaxed) + 1;
        if n < BACKOFF_AFTER {
            return None;
        }
        let backoff = BACKOFF_BASE
            .saturating_mul(1 << (n - BACKOFF_AFTER).min(16))
            .min(BACKOFF_MAX);
        let until = crate::capabilities::clock::monotonic_ns() + backoff.as_nanos() as u64;
        self.until_ns.store(until, Relaxed);
        Some(backoff)
    }
}

/// A call's result and how long it took, pool and checks included.
pub struct Timed<T> {
    pub result: Result<T, CallFailure>,
    pub took: Duration,
    /// When it ended: the next call's start, so a chain reads the clock
    /// once per plugin.
    pub ended: Instant,
}

/// The entry of an `interest` list that is not a kind but asks the host to
/// judge each local recipient of a message (see `event::Scope`).
pub const EACH_RECIPIENT: &str = "each-recipient";

pub struct LoadedPlugin {
    pub spec: PluginSpec,
    pub sha256: String,
    /// The vendor signature that verified, if the component is signed.
    pub signed: Option<Verified>,
    pub inspection: Inspection,
    pub compiled_from: CompileSource,
    engine: wasmtime::Engine,
    pre: InstancePre<HostState>,
    /// The contract line the component targets.
    pub line: Line,
    exports: Exports,
    /// The kinds it is shown: its `interest`, and for a 0.1 plugin only
    /// those 0.1 names.
    wants: KindSet,
    /// Judges each local recipient of a message, not once for them all
    /// (`each-recipient` in its `interest`; every 0.1 plugin, written when
    /// every copy was judged).
    each_recipient: bool,
    /// Its `call-only-on-hit` promise, set by the first instance's `init`.
    gate: Option<crate::capabilities::matching::Gate>,
    caps: PluginCapabilities,
    pool: ArrayQueue<Box<PluginInstance>>,
    health: Health,
    limits: VerdictLimits,
    decider: Decider,
}

impl LoadedPlugin {
    /// Reads, verifies, compiles (or loads from cache), checks grants,
    /// links, and instantiates once to run `init`.
    ///
    /// # Errors
    /// See [`LoadError`]: each variant is one reason, named for the operator.
    pub fn load(engine: &PluginEngine, spec: &PluginSpec) -> Result<LoadedPlugin, LoadError> {
        let max = engine.runtime.max_plugin_mib << 20;
        let bytes = crate::util::files::read_regular(&spec.path, max).map_err(|source| {
            LoadError::Read {
                path: spec.path.display().to_string(),
                source,
            }
        })?;
        let sha256 = sha256_hex(&bytes);
        if let Some(pin) = &spec.sha256
            && *pin != sha256
        {
            return Err(LoadError::PinMismatch {
                expected: pin.clone(),
                actual: sha256,
            });
        }
        let binding = signing::Binding {
            name: spec.expected_signed_name(),
            explicit_name: spec.signed_name.is_some(),
            version: spec.version.as_ref(),
            min_version: spec.min_version.as_ref(),
        };
        let signed = signing::check(&engine.signing(), &spec.path, &sha256, Some(&binding))?;
        let (component, compiled_from) = engine
            .compile(&bytes, &sha256)
            .map_err(|e| LoadError::Compile(error_text(&e)))?;
        drop(bytes);
        let inspection = inspect(engine.engine(), &component);
        let line = check_imports(spec, &inspection)?;
        if !inspection.policy && !inspection.observer {
            return Err(LoadError::NoRole);
        }
        if !inspection.lifecycle {
            return Err(LoadError::NoLifecycle);
        }
        let link = |e: wasmtime::Error| LoadError::Link(error_text(&e));
        let pre = match engine.linker().instantiate_pre(&component) {
            Ok(pre) => pre,
            // Built against a later compatible contract: the functions this
            // host lacks are defined for this plugin alone as traps, so it
            // loads, and calling one is its failure (its policy answers).
            Err(_) if inspection.targets_newer_contract() => {
                let mut linker = engine.linker().clone();
                stub_newer_functions(&mut linker, engine.engine(), &component, line)
                    .map_err(link)?;
                tracing::warn!(
                    plugin = %spec.name,
                    built_for = ?inspection.contract_versions,
                    host = line.implemented(),
                    "plugin built against a newer contract: the functions this host lacks fail when called"
                );
                linker.instantiate_pre(&component).map_err(link)?
            }
            Err(e) => return Err(link(e)),
        };
        let exports = match line {
            Line::V0_1 => Exports::V0_1 {
                lifecycle: v0_1::lifecycle::GuestIndices::new(&pre).map_err(link)?,
                handler: inspection
                    .policy
                    .then(|| v0_1::handler::GuestIndices::new(&pre))
                    .transpose()
                    .map_err(link)?,
                observer: inspection
                    .observer
                    .then(|| v0_1::observer::GuestIndices::new(&pre))
                    .transpose()
                    .map_err(link)?,
            },
            Line::V0_2 => Exports::V0_2 {
                lifecycle: lifecycle::GuestIndices::new(&pre).map_err(link)?,
                handler: inspection
                    .policy
                    .then(|| handler::GuestIndices::new(&pre))
                    .transpose()
                    .map_err(link)?,
                observer: inspection
                    .observer
                    .then(|| observer::GuestIndices::new(&pre))
                    .transpose()
                    .map_err(link)?,
                interest: inspection
                    .interest
                    .then(|| interest::GuestIndices::new(&pre))
                    .transpose()
                    .map_err(link)?,
            },
        };
        let caps = PluginCapabilities::new(
            engine.shared(),
            &spec.name,
            spec.grants.clone(),
            Settings::new(spec.settings.clone()),
        );
        let mut plugin = LoadedPlugin {
            decider: Decider {
                plugin: spec.name.clone(),
                sha256: sha256.clone(),
            },
            spec: spec.clone(),
            sha256,
            signed,
            inspection,
            compiled_from,
            engine: engine.engine().clone(),
            pre,
            line,
            wants: match line {
                Line::V0_1 => KindSet::of(Kind::ALL.into_iter().filter(|k| k.in_v0_1())),
                Line::V0_2 => KindSet::ALL,
            },
            each_recipient: line == Line::V0_1,
            gate: None,
            exports,
            caps,
            pool: ArrayQueue::new(spec.pool.max(1)),
            health: Health::default(),
            limits: VerdictLimits::from(&engine.runtime),
        };
        let mut first = plugin.instantiate().map_err(LoadError::Init)?;
        if let Some(kinds) = first
            .interest(plugin.deadline().max(Duration::from_secs(1)))
            .map_err(LoadError::Interest)?
        {
            let (flags, kinds): (Vec<&str>, Vec<&str>) = kinds
                .iter()
                .map(String::as_str)
                .partition(|k| *k == EACH_RECIPIENT);
            plugin.each_recipient = !flags.is_empty();
            // A list of flags alone names no kind: every kind.
            if !kinds.is_empty() || flags.is_empty() {
                plugin.wants = plugin.wants.intersect(KindSet::named(kinds));
            }
        }
        plugin.gate = plugin.caps.matchers.as_ref().and_then(|m| m.gate());
        let _ = plugin.pool.push(Box::new(first));
        Ok(plugin)
    }

    /// Whether the plugin judges each local recipient of a message.
    pub fn each_recipient(&self) -> bool {
        self.each_recipient
    }

    /// Whether the plugin must be called for `event`: false when its
    /// `init` promised to allow every event its matcher finds nothing in
    /// (`call-only-on-hit`) and it finds nothing in this one.
    #[inline]
    pub fn called_for(&self, event: &Event) -> bool {
        self.gate.as_ref().is_none_or(|g| g.lets(event))
    }

    /// Whether the plugin is shown events of this kind.
    #[inline]
    pub fn wants(&self, kind: Kind) -> bool {
        self.wants.contains(kind)
    }

    /// Granted `bridge`: it may send into other networks, and is never
    /// shown a bridged copy.
    pub fn bridges(&self) -> bool {
        self.spec
            .grants
            .contains(crate::capabilities::Capability::Bridge)
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The name, shared cheaply (for per-event records such as timings).
    pub fn shared_name(&self) -> &Arc<str> {
        &self.caps.plugin
    }

    pub fn decider(&self) -> &Decider {
        &self.decider
    }

    pub fn is_policy(&self) -> bool {
        self.inspection.policy
    }

    pub fn is_observer(&self) -> bool {
        self.inspection.observer
    }

    pub fn metrics(&self) -> &PluginMetrics {
        &self.caps.metrics
    }

    fn deadline(&self) -> Duration {
        Duration::from_millis(self.spec.deadline_ms)
    }

    /// A fresh instance with `init` run; counted in the metrics.
    pub fn instantiate(&self) -> Result<PluginInstance, CallFailure> {
        self.caps.metrics.stats.instantiations.fetch_add(1, Relaxed);
        PluginInstance::create(&InstanceRecipe {
            engine: &self.engine,
            pre: &self.pre,
            caps: &self.caps,
            exports: &self.exports,
            memory_mib: self.spec.memory_mib,
            // init may parse config or warm a language runtime.
            init_budget: self.deadline().max(Duration::from_secs(1)),
        })
    }

    /// Runs `f` on a pooled (or fresh) instance, returning it to the pool
    /// unless the call poisoned it, and keeps health and counters. `f` gets
    /// the call's start, which is both its deadline's origin and its timing.
    fn with_instance<R>(
        &self,
        started: Instant,
        f: impl FnOnce(&mut PluginInstance, Instant) -> Result<R, CallFailure>,
    ) -> Timed<R> {
        let result = self.run_instance(f, started);
        let ended = Instant::now();
        let took = ended.saturating_duration_since(started);
        self.caps.metrics.stats.record_call(took);
        Timed {
            result,
            took,
            ended,
        }
    }

    fn run_instance<R>(
        &self,
        f: impl FnOnce(&mut PluginInstance, Instant) -> Result<R, CallFailure>,
        started: Instant,
    ) -> Result<R, CallFailure> {
        self.health.check()?;
        let (mut instance, started) = match self.pool.pop() {
            Some(i) => (i, started),
            // Making an instance has its own budget (init's): the call's
            // starts after it.
            None => (
                Box::new(self.instantiate().map_err(|f| self.failed(f))?),
                Instant::now(),
            ),
        };
        match f(&mut instance, started) {
            Ok(r) => {
                self.health.succeeded();
                let _ = self.pool.push(instance);
                Ok(r)
            }
            Err(failure) => {
                if !failure.poisons_instance() {
                    let _ = self.pool.push(instance);
                }
                Err(self.failed(failure))
            }
        }
    }

    fn failed(&self, failure: CallFailure) -> CallFailure {
        let stats = &self.caps.metrics.stats;
        match &failure {
            CallFailure::Timeout(_) => stats.timeouts.fetch_add(1, Relaxed),
            CallFailure::MemoryLimit(_) => stats.memory_exceeded.fetch_add(1, Relaxed),
            CallFailure::InvalidVerdict(_) => stats.invalid_verdicts.fetch_add(1, Relaxed),
            _ => stats.traps.fetch_add(1, Relaxed),
        };
        tracing::warn!(plugin = %self.spec.name, sha256 = %self.sha256, failure = %failure, "plugin call failed");
        if let Some(backoff) = self.health.failed() {
            tracing::error!(plugin = %self.spec.name, ?backoff, "plugin keeps failing; backing off");
        }
        failure
    }

    /// Asks the plugin for its verdict on `event`.
    ///
    /// # Errors
    /// The plugin is backing off, cannot be instantiated, traps, times out,
    /// exceeds its memory, or returns a verdict the host refuses.
    pub fn handle(&self, event: &Arc<Event>) -> Timed<Verdict> {
        self.handle_from(event, Instant::now())
    }

    /// [`Self::handle`], timed from `started` (the previous call's end).
    pub fn handle_from(&self, event: &Arc<Event>, started: Instant) -> Timed<Verdict> {
        let budget = self.deadline();
        let timed = self.with_instance(started, |i, started| {
            let v = i.handle(event, budget, started)?;
            self.limits
                .check(event, &v)
                .map_err(CallFailure::InvalidVerdict)?;
            Ok(v)
        });
        if let Ok(verdict) = &timed.result {
            let stats = &self.caps.metrics.stats;
            match verdict.action {
                Action::Allow => &stats.allow,
                Action::Block(_) => &stats.block,
                Action::Drop => &stats.drop,
                Action::Rewrite(_) => &stats.rewrite,
                Action::Hold(_) => &stats.hold,
            }
            .fetch_add(1, Relaxed);
        }
        timed
    }

    /// Shows the plugin the chain's final verdict.
    ///
    /// # Errors
    /// As [`Self::handle`], plus the observer's own reported error.
    pub fn observe(
        &self,
        event: &Arc<Event>,
        verdict: &Arc<FinalVerdict>,
    ) -> Timed<Vec<crate::event::bridge::Outgoing>> {
        let budget = self.deadline();
        self.with_instance(Instant::now(), |i, started| {
            i.observe(event, verdict, budget, started)
        })
    }

    /// Whether crash-loop backoff is keeping the plugin out right now.
    pub fn is_backing_off(&self) -> bool {
        self.health.check().is_err()
    }

    /// Instances ready in the pool.
    pub fn idle_instances(&self) -> usize {
        self.pool.len()
    }
}

/// Defines, in a linker for one plugin, a trapping stand-in for every
/// function the plugin imports from a later version of the contract that
/// this host does not define. They go into the host's own interfaces, so
/// the plugin's newer imports still link to them by semver.
fn stub_newer_functions(
    linker: &mut wasmtime::component::Linker<HostState>,
    engine: &wasmtime::Engine,
    component: &wasmtime::component::Component,
    line: Line,
) -> wasmtime::Result<()> {
    let host = line.implemented();
    use wasmtime::component::types::ComponentItem;
    for (name, item) in component.component_type().imports(engine) {
        let (Some(rest), ComponentItem::ComponentInstance(instance)) =
            (name.strip_prefix(CONTRACT_PACKAGE), item.ty)
        else {
            continue;
        };
        let iface = rest
            .trim_start_matches('/')
            .split('@')
            .next()
            .unwrap_or_default();
        let mut ours = linker.instance(&format!("{CONTRACT_PACKAGE}/{iface}@{host}"))?;
        for (function, item) in instance.exports(engine) {
            if !matches!(item.ty, ComponentItem::ComponentFunc(_)) {
                continue;
            }
            let missing = format!("{name}#{function}");
            // Refused (already defined) when the host has it: keep the host's.
            let _ = ours.func_new(function, move |_, _, _, _| {
                Err(wasmtime::format_err!(
                    "`{missing}` is not in this host's contract ({host})"
                ))
            });
        }
    }
    Ok(())
}

/// The load-time half of the grant check: every `imgate:policy` interface
/// the component imports must be granted, and nothing unknown may be
/// imported. The per-call half lives in each capability. Returns the
/// contract line the component targets.
fn check_imports(spec: &PluginSpec, inspection: &Inspection) -> Result<Line, LoadError> {
    if inspection.contract_versions.is_empty() {
        return Err(LoadError::NoRole);
    }
    let line = inspection
        .line()
        .map_err(|found| LoadError::IncompatibleContract {
            found,
            host: CONTRACT_VERSIONS.join(" and "),
        })?;
    for import in &inspection.imports {
        match &import.kind {
            ImportKind::Capability(cap) if !spec.grants.contains(*cap) => {
                return Err(LoadError::NotGranted {
                    import: import.name.clone(),
                    capability: cap.to_string(),
                });
            }
            ImportKind::Unknown => return Err(LoadError::UnknownImport(import.name.clone())),
            _ => {}
        }
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_after_repeated_failures_and_clears_on_success() {
        let h = Health::default();
        assert!(h.failed().is_none());
        assert!(h.failed().is_none());
        assert_eq!(h.failed(), Some(BACKOFF_BASE));
        assert!(matches!(
            h.check(),
            Err(CallFailure::BackingOff { failures: 3, .. })
        ));
        assert_eq!(h.failed(), Some(BACKOFF_BASE * 2));
        h.succeeded();
        assert!(h.check().is_ok());
    }

    #[test]
    fn backoff_is_capped() {
        let h = Health::default();
        let mut last = None;
        for _ in 0..40 {
            last = h.failed();
        }
        assert_eq!(last, Some(BACKOFF_MAX));
    }
}
