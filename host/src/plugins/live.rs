//! The chain in force, replaced atomically by a reload while events are
//! in flight.
//!
//! A reload builds the new chain in full first: every component compiled
//! (or taken from the cache), signatures checked, linked, instantiated and
//! `init` run. Only then is it swapped in. Events already running finish
//! on the chain they started on, because each holds its own `Arc` to it. A
//! reload that fails leaves the old chain in force and says why. Plugin
//! state in `kv` and plugin metrics are keyed by plugin name, so they carry
//! over to the new version.
//!
//! Reading the current chain is an `ArcSwap` load: no lock on the hot path.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use super::RuntimeError;
use super::chain::{Chain, Decision};
use super::engine::PluginEngine;
use crate::archive::ArchiveConfig;
use crate::capabilities::kv::KvConfig;
use crate::config::{Config, RuntimeConfig};
use crate::event::{Event, FinalVerdict, Judge, Scope};
use crate::signing::SigningPolicy;

/// Settings the engine and shared capabilities were built with; a reload
/// cannot change them.
#[derive(Clone, PartialEq)]
struct Fixed {
    runtime: RuntimeConfig,
    kv: KvConfig,
    store: Option<crate::store::StoreConfig>,
    archive: Option<ArchiveConfig>,
}

impl Fixed {
    fn of(config: &Config) -> Self {
        Fixed {
            runtime: config.runtime.clone(),
            kv: config.kv.clone(),
            store: config.store.clone(),
            archive: config.archive.clone(),
        }
    }

    fn differs_from(&self, config: &Config) -> Option<&'static str> {
        if self.runtime != config.runtime {
            Some("runtime")
        } else if self.kv != config.kv {
            Some("kv")
        } else if self.store != config.store {
            Some("store")
        } else if self.archive != config.archive {
            Some("archive")
        } else {
            None
        }
    }
}

pub struct LiveChain {
    current: ArcSwap<Chain>,
    fixed: Fixed,
    /// Serialises reloads; never taken by `evaluate`.
    reloading: Mutex<()>,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl LiveChain {
    /// Puts `chain`, loaded from `config`, in force as generation 1.
    pub fn new(chain: Chain, config: &Config) -> Self {
        LiveChain {
            current: ArcSwap::from_pointee(chain.with_generation(1)),
            fixed: Fixed::of(config),
            reloading: Mutex::new(()),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    /// The chain in force now. Hold it for the length of one event.
    pub fn current(&self) -> Arc<Chain> {
        self.current.load_full()
    }

    /// Runs `event` through the chain in force; the decision names the
    /// generation that judged it.
    pub fn evaluate(&self, event: impl Into<Arc<Event>>) -> Decision {
        self.current.load().evaluate(event)
    }

    /// Builds a chain from `config` and swaps it in.
    ///
    /// # Errors
    /// See [`RuntimeError`]: every plugin problem is reported, and the
    /// running chain is left as it was.
    pub fn reload(&self, engine: &PluginEngine, config: &Config) -> Result<u64, RuntimeError> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        let result = self.build(engine, config).map(|chain| {
            let generation = self.current.load().generation() + 1;
            self.current
                .store(Arc::new(chain.with_generation(generation)));
            generation
        });
        let host = &engine.shared().metrics.host;
        match &result {
            // The error first, then the counts: a reader who sees a failed
            // reload counted also sees its error.
            Ok(generation) => {
                *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
                self.reloads_ok.fetch_add(1, Release);
                host.reloads_ok.fetch_add(1, Relaxed);
                tracing::info!(
                    generation,
                    plugins = config.plugins.len(),
                    "reloaded the chain"
                );
            }
            Err(e) => {
                *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                self.reloads_failed.fetch_add(1, Release);
                host.reloads_failed.fetch_add(1, Relaxed);
                tracing::error!(error = %e, "reload failed; the running chain is unchanged");
            }
        }
        result
    }

    fn build(&self, engine: &PluginEngine, config: &Config) -> Result<Chain, RuntimeError> {
        if let Some(section) = self.fixed.differs_from(config) {
            return Err(RuntimeError::NeedsRestart(section));
        }
        let policy = SigningPolicy::from_config(&config.signing).map_err(RuntimeError::Signing)?;
        let previous = engine.signing();
        engine.set_signing(policy);
        Chain::load(engine, &config.plugins)
            .map(|chain| chain.with_tags_after_block(config.tags_after_block()))
            .map_err(|errors| {
                engine.set_signing((*previous).clone());
                RuntimeError::Plugins(errors)
            })
    }

    /// Reloads that succeeded and that failed since start.
    pub fn reload_counts(&self) -> (u64, u64) {
        (
            self.reloads_ok.load(Acquire),
            self.reloads_failed.load(Acquire),
        )
    }

    /// Why the last reload failed, if it did.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Adapters judge through the chain in force. A chain call blocks (plugin
/// calls are bounded by their deadlines but may take milliseconds), so the
/// tokio worker hands its other tasks to another thread meanwhile (about
/// 20 ns when idle).
impl LiveChain {
    /// Runs `event` through the chain in force, off the async worker, and
    /// gives the whole decision (the event as attempted, timings).
    pub fn decide(&self, event: Event, scope: Scope) -> super::Decision {
        let chain = self.current();
        crate::util::blocking::wait_off_worker(|| chain.evaluate_in(event, scope))
    }
}

impl Judge for LiveChain {
    fn judge_in(&self, event: Event, scope: Scope) -> FinalVerdict {
        self.decide(event, scope).verdict
    }

    fn allows_everything(&self) -> bool {
        self.current.load().plugins().is_empty()
    }

    fn judges_each_recipient(&self) -> bool {
        self.current.load().judges_each_recipient()
    }
}
