//! One live plugin instance: its store (host state, limits, deadline) and
//! the typed handles to its exports. An instance serves one event at a
//! time and is thrown away after any failure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{InstancePre, ResourceTable};
use wasmtime::{Engine, Store, Trap, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::limits::{Deadline, MemoryCap};
use super::wasi::WaitPastDeadline;
use crate::capabilities::{InstanceCapabilities, NotGranted, PluginCapabilities};
use crate::contract::view::{EventSlot, ViewData};
use crate::contract::{handler, interest, lifecycle, observer, v0_1};
use crate::event::bridge::Outgoing;
use crate::event::{Event, FinalVerdict, Verdict};

/// How often the engine's epoch advances; deadlines are checked at this
/// granularity and then refined against the clock.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// The data in every plugin store.
pub struct HostState {
    pub caps: InstanceCapabilities,
    wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub limiter: MemoryCap,
    pub deadline: Deadline,
    /// The event the current call is about.
    pub view: EventSlot,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl HostState {
    /// `wasi:io/poll` bounded by the time the call in progress has left.
    pub fn bounded_poll(&mut self) -> super::wasi::BoundedPoll<'_> {
        super::wasi::BoundedPoll {
            left: self.deadline.remaining(self.caps.host_waited()),
            table: &mut self.table,
            slept: &mut self.deadline.slept,
        }
    }
}

/// Why a call into a plugin did not produce a usable answer.
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
pub enum CallFailure {
    #[error("exceeded its {0:?} deadline")]
    Timeout(Duration),
    #[error("exceeded its memory cap of {0} MiB")]
    MemoryLimit(u64),
    #[error("trapped: {0}")]
    Trap(String),
    #[error("was denied a capability: {0}")]
    Denied(String),
    #[error("refused to initialise: {0}")]
    InitRefused(String),
    #[error("could not be instantiated: {0}")]
    Instantiate(String),
    #[error("returned an invalid verdict: {0}")]
    InvalidVerdict(String),
    #[error("observer reported an error: {0}")]
    ObserveFailed(String),
    #[error("is backing off for {remaining:?} after {failures} consecutive failures")]
    BackingOff { failures: u32, remaining: Duration },
}

impl CallFailure {
    /// Whether the instance that produced this failure must be discarded.
    /// A trap can leave guest state half-updated, so only answers that came
    /// back cleanly keep their instance.
    pub fn poisons_instance(&self) -> bool {
        !matches!(
            self,
            CallFailure::InvalidVerdict(_)
                | CallFailure::ObserveFailed(_)
                | CallFailure::BackingOff { .. }
        )
    }

    /// A short label for metrics and JSON output.
    pub fn kind(&self) -> &'static str {
        match self {
            CallFailure::Timeout(_) => "timeout",
            CallFailure::MemoryLimit(_) => "memory",
            CallFailure::Trap(_) => "trap",
            CallFailure::Denied(_) => "denied",
            CallFailure::InitRefused(_) => "init",
            CallFailure::Instantiate(_) => "instantiate",
            CallFailure::InvalidVerdict(_) => "invalid-verdict",
            CallFailure::ObserveFailed(_) => "observe-error",
            CallFailure::BackingOff { .. } => "backoff",
        }
    }
}

fn ticks(d: Duration) -> u64 {
    (d.as_nanos().div_ceil(EPOCH_TICK.as_nanos()) as u64).max(1)
}

/// Where a plugin's exports are, in the contract version it targets.
pub enum Exports {
    V0_1 {
        lifecycle: v0_1::lifecycle::GuestIndices,
        handler: Option<v0_1::handler::GuestIndices>,
        observer: Option<v0_1::observer::GuestIndices>,
    },
    V0_2 {
        lifecycle: lifecycle::GuestIndices,
        handler: Option<handler::GuestIndices>,
        observer: Option<observer::GuestIndices>,
        interest: Option<interest::GuestIndices>,
    },
}

/// A live instance's typed handles to its exports.
#[derive(Clone)]
enum Guests {
    V0_1 {
        handler: Option<v0_1::handler::Guest>,
        observer: Option<v0_1::observer::Guest>,
    },
    V0_2 {
        handler: Option<handler::Guest>,
        observer: Option<observer::Guest>,
        interest: Option<interest::Guest>,
    },
}

/// What one fresh instance needs, borrowed from its plugin.
pub struct InstanceRecipe<'a> {
    pub engine: &'a Engine,
    pub pre: &'a InstancePre<HostState>,
    pub caps: &'a PluginCapabilities,
    pub exports: &'a Exports,
    pub memory_mib: u64,
    pub init_budget: Duration,
}

/// A store set up as every plugin instance's is (deny-all WASI, memory
/// cap, deadline callback), for embedders and benchmarks that drive an
/// instance directly.
pub fn bare_store(engine: &Engine, caps: &PluginCapabilities, memory_mib: u64) -> Store<HostState> {
    let state = HostState {
        caps: caps.instance(),
        wasi: super::wasi::deny_all(&caps.plugin),
        table: ResourceTable::new(),
        limiter: MemoryCap::new((memory_mib as usize) << 20),
        deadline: Deadline::new(Duration::from_secs(1)),
        view: EventSlot::default(),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    store.epoch_deadline_callback(|ctx| {
        let s = ctx.data();
        Ok(match s.deadline.remaining(s.caps.host_waited()) {
            Some(left) => UpdateDeadline::Continue(ticks(left)),
            None => UpdateDeadline::Interrupt,
        })
    });
    store
}

pub struct PluginInstance {
    store: Store<HostState>,
    guests: Guests,
    memory_mib: u64,
}

impl PluginInstance {
    /// Instantiates and runs `init` with the plugin's settings.
    ///
    /// # Errors
    /// Instantiation fails (the pool is exhausted, a start function traps),
    /// `init` traps or runs past `init_budget`, or `init` returns an error.
    pub fn create(recipe: &InstanceRecipe<'_>) -> Result<PluginInstance, CallFailure> {
        let mut store = bare_store(recipe.engine, recipe.caps, recipe.memory_mib);
        store.set_epoch_deadline(ticks(recipe.init_budget));
        let mut instance = PluginInstance {
            store,
            guests: Guests::V0_2 {
                handler: None,
                observer: None,
                interest: None,
            },
            memory_mib: recipe.memory_mib,
        };
        let inst = match recipe.pre.instantiate(&mut instance.store) {
            Ok(i) => i,
            Err(e) => {
                return Err(match instance.classify(e, recipe.init_budget) {
                    CallFailure::Trap(msg) => CallFailure::Instantiate(msg),
                    other => other,
                });
            }
        };
        let store = &mut instance.store;
        let loaded: wasmtime::Result<_> = (|| {
            Ok(match recipe.exports {
                Exports::V0_1 {
                    lifecycle,
                    handler,
                    observer,
                } => {
                    let lifecycle = lifecycle.load(&mut *store, &inst)?;
                    let guests = Guests::V0_1 {
                        handler: handler
                            .as_ref()
                            .map(|i| i.load(&mut *store, &inst))
                            .transpose()?,
                        observer: observer
                            .as_ref()
                            .map(|i| i.load(&mut *store, &inst))
                            .transpose()?,
                    };
                    (Init::V0_1(lifecycle), guests)
                }
                Exports::V0_2 {
                    lifecycle,
                    handler,
                    observer,
                    interest,
                } => {
                    let lifecycle = lifecycle.load(&mut *store, &inst)?;
                    let guests = Guests::V0_2 {
                        handler: handler
                            .as_ref()
                            .map(|i| i.load(&mut *store, &inst))
                            .transpose()?,
                        observer: observer
                            .as_ref()
                            .map(|i| i.load(&mut *store, &inst))
                            .transpose()?,
                        interest: interest
                            .as_ref()
                            .map(|i| i.load(&mut *store, &inst))
                            .transpose()?,
                    };
                    (Init::V0_2(lifecycle), guests)
                }
            })
        })();
        let (init, guests) = loaded.map_err(|e| CallFailure::Instantiate(error_text(&e)))?;
        instance.guests = guests;
        instance.arm(recipe.init_budget, Instant::now());
        let settings = recipe.caps.settings.as_json();
        let result = match init {
            Init::V0_1(l) => l.call_init(&mut instance.store, settings),
            Init::V0_2(l) => l.call_init(&mut instance.store, settings),
        };
        match result {
            Ok(Ok(())) => Ok(instance),
            Ok(Err(msg)) => Err(CallFailure::InitRefused(msg)),
            Err(e) => Err(instance.classify(e, recipe.init_budget)),
        }
    }

    /// The kinds the plugin asked for through its `interest` export; `None`
    /// when it has none (it sees every kind).
    ///
    /// # Errors
    /// The guest traps or runs out of time.
    pub fn interest(&mut self, budget: Duration) -> Result<Option<Vec<String>>, CallFailure> {
        let Guests::V0_2 {
            interest: Some(interest),
            ..
        } = self.guests.clone()
        else {
            return Ok(None);
        };
        self.arm(budget, Instant::now());
        interest
            .call_kinds(&mut self.store)
            .map_err(|e| self.classify(e, budget))
    }

    /// Resets the per-call budget before entering the guest; the call's
    /// wall clock counts from `started`, its CPU clock from now.
    fn arm(&mut self, budget: Duration, started: Instant) {
        let data = self.store.data_mut();
        data.deadline = Deadline::starting(budget, started);
        data.caps.reset_waits();
        data.caps.bridge.take_sent();
        self.store.set_epoch_deadline(ticks(budget));
    }

    fn classify(&self, err: wasmtime::Error, budget: Duration) -> CallFailure {
        if self.store.data().limiter.refused {
            return CallFailure::MemoryLimit(self.memory_mib);
        }
        if let Some(denied) = err.downcast_ref::<NotGranted>() {
            return CallFailure::Denied(denied.to_string());
        }
        if err.downcast_ref::<WaitPastDeadline>().is_some() {
            return CallFailure::Timeout(budget);
        }
        match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => CallFailure::Timeout(budget),
            _ => CallFailure::Trap(error_text(&err)),
        }
    }

    /// # Errors
    /// The guest traps, runs out of time or memory, lacks the export, or
    /// writes a verdict the host refuses on the spot (a rewrite of
    /// encrypted content).
    pub fn handle(
        &mut self,
        event: &Arc<Event>,
        budget: Duration,
        started: Instant,
    ) -> Result<Verdict, CallFailure> {
        self.arm(budget, started);
        let view = self.store.data_mut().view.open(ViewData {
            event: event.clone(),
            verdict: None,
        });
        let result = match self.guests.clone() {
            Guests::V0_2 {
                handler: Some(handler),
                ..
            } => {
                let out = self.store.data_mut().view.open_out();
                handler.call_handle(&mut self.store, view, out).map(|()| {
                    let draft = self.store.data_mut().view.close().unwrap_or_default();
                    draft.finish().map_err(CallFailure::InvalidVerdict)
                })
            }
            Guests::V0_1 {
                handler: Some(handler),
                ..
            } => handler
                .call_handle(&mut self.store, view)
                .map(|v| Ok(Verdict::from(v))),
            _ => Err(wasmtime::format_err!("plugin has no `handler` export")),
        };
        self.store.data_mut().view.close();
        let mut verdict = result.map_err(|e| self.classify(e, budget))??;
        verdict.sent = self.store.data_mut().caps.bridge.take_sent();
        Ok(verdict)
    }

    /// Returns what the observer sent (`bridge`).
    ///
    /// # Errors
    /// As [`Self::handle`], plus the observer's own reported error.
    pub fn observe(
        &mut self,
        event: &Arc<Event>,
        verdict: &Arc<FinalVerdict>,
        budget: Duration,
        started: Instant,
    ) -> Result<Vec<Outgoing>, CallFailure> {
        self.arm(budget, started);
        let view = self.store.data_mut().view.open(ViewData {
            event: event.clone(),
            verdict: Some(verdict.clone()),
        });
        let result = match self.guests.clone() {
            Guests::V0_2 {
                observer: Some(observer),
                ..
            } => {
                let outcome = self.store.data().view.outcome();
                observer.call_observe(&mut self.store, view, outcome)
            }
            Guests::V0_1 {
                observer: Some(observer),
                ..
            } => observer.call_observe(
                &mut self.store,
                view,
                &v0_1::types::FinalVerdict::from(&**verdict),
            ),
            _ => Err(wasmtime::format_err!("plugin has no `observer` export")),
        };
        self.store.data_mut().view.close();
        match result {
            Ok(Ok(())) => Ok(self.store.data_mut().caps.bridge.take_sent()),
            Ok(Err(msg)) => Err(CallFailure::ObserveFailed(msg)),
            Err(e) => Err(self.classify(e, budget)),
        }
    }
}

/// A fresh instance's `init`, in its contract version.
enum Init {
    V0_1(v0_1::lifecycle::Guest),
    V0_2(lifecycle::Guest),
}

/// An error and its causes on one line.
pub fn error_text(err: &wasmtime::Error) -> String {
    let parts: Vec<String> = err.chain().map(|c| c.to_string()).collect();
    parts.join(": ")
}
