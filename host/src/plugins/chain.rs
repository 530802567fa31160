//! The chain: every event through the policy plugins in order, then the
//! observers, giving one [`Decision`].
//!
//! Rules: the first `block` or `drop` wins and ends the chain; a `rewrite`
//! changes the body the next plugin sees; tags accumulate and later
//! plugins see them. A failing plugin answers through its failure policy:
//! `fail-closed` blocks, `fail-open` is skipped. Observers then see the
//! event as attempted and the final verdict; they cannot change it, but a
//! `fail-closed` observer that fails (an archive that cannot persist)
//! stops delivery, so nothing is delivered unrecorded.
//!
//! `evaluate` takes `&self` and no lock: concurrent events each take their
//! own instance from each plugin's pool.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use serde::Serialize;

use super::engine::PluginEngine;
use super::instance::CallFailure;
use super::plugin::{LoadError, LoadedPlugin, Timed};
use crate::config::{FailurePolicy, PluginSpec};
use crate::event::{Action, Event, EventKind, FinalVerdict};

/// Which export a timing or failure refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Handle,
    Observe,
}

/// Time one plugin took on one event, and what came of it.
#[derive(Clone, Debug, Serialize)]
pub struct Timing {
    #[serde(serialize_with = "as_str")]
    pub plugin: Arc<str>,
    pub stage: Stage,
    #[serde(rename = "us", serialize_with = "as_micros")]
    pub took: Duration,
    /// The action, or the failure kind.
    pub outcome: &'static str,
}

impl Timing {
    fn new(plugin: &LoadedPlugin, stage: Stage, took: Duration, outcome: &'static str) -> Self {
        Timing {
            plugin: plugin.shared_name().clone(),
            stage,
            took,
            outcome,
        }
    }
}

fn as_str<S: serde::Serializer>(s: &Arc<str>, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s)
}

fn as_micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_nanos() as f64 / 1000.0 * 100.0).round() / 100.0)
}

/// A plugin failure the chain absorbed, with the policy applied.
#[derive(Clone, Debug)]
pub struct Failure {
    pub plugin: String,
    pub stage: Stage,
    pub failure: CallFailure,
    pub policy: FailurePolicy,
}

/// The chain's answer for one event.
#[derive(Clone, Debug)]
pub struct Decision {
    pub verdict: FinalVerdict,
    /// The event as attempted: the original body, with every tag added.
    /// Shared, so handing it on (to an adapter, or back into the chain)
    /// copies nothing.
    pub event: Arc<Event>,
    pub timings: Vec<Timing>,
    pub failures: Vec<Failure>,
    /// The chain generation that decided (see `live`).
    pub generation: u64,
}

impl Decision {
    /// The body to deliver, when the verdict is to deliver a message.
    pub fn delivered_body(&self) -> Option<&str> {
        match (&self.verdict.action, &self.event.kind) {
            (Action::Rewrite(body), _) => Some(body),
            (Action::Allow, EventKind::Message(m)) => Some(&m.body),
            _ => None,
        }
    }
}

/// Tag added when a plugin failed on an event, so the archive records it.
pub fn failure_tag(plugin: &str) -> String {
    format!("imgate:failed:{plugin}")
}

pub struct Chain {
    plugins: Vec<Arc<LoadedPlugin>>,
    has_observers: bool,
    /// Which load of the config this is (see `live`); 0 when not live.
    generation: u64,
}

impl Chain {
    pub fn new(plugins: Vec<Arc<LoadedPlugin>>) -> Self {
        Chain {
            has_observers: plugins.iter().any(|p| p.is_observer()),
            plugins,
            generation: 0,
        }
    }

    pub fn with_generation(mut self, generation: u64) -> Self {
        self.generation = generation;
        self
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Loads every plugin in `specs`, in order.
    ///
    /// # Errors
    /// Every plugin that failed to load, with its spec, so all problems are
    /// reported at once.
    pub fn load(
        engine: &PluginEngine,
        specs: &[PluginSpec],
    ) -> Result<Chain, Vec<(PluginSpec, LoadError)>> {
        let mut plugins = Vec::new();
        let mut errors = Vec::new();
        for spec in specs {
            match LoadedPlugin::load(engine, spec) {
                Ok(p) => plugins.push(Arc::new(p)),
                Err(e) => errors.push((spec.clone(), e)),
            }
        }
        if errors.is_empty() {
            Ok(Chain::new(plugins))
        } else {
            Err(errors)
        }
    }

    pub fn plugins(&self) -> &[Arc<LoadedPlugin>] {
        &self.plugins
    }

    /// Runs `event` (an `Event` or an `Arc<Event>`) through the chain.
    pub fn evaluate(&self, event: impl Into<Arc<Event>>) -> Decision {
        // Plugins see the event through a view holding a clone of this
        // `Arc`; the view is closed after each call, so the changes below
        // (`make_mut`) happen in place rather than copying the event.
        let mut event = event.into();
        let mut action = Action::Allow;
        let mut decided_by = None;
        let mut timings = Vec::with_capacity(self.plugins.len());
        let mut failures = Vec::new();
        // The body before the first rewrite; observers see the original.
        let mut attempted_body: Option<String> = None;

        for plugin in self.plugins.iter().filter(|p| p.is_policy()) {
            let Timed { result, took } = plugin.handle(&event);
            let verdict = match result {
                Ok(v) => v,
                Err(failure) => {
                    timings.push(Timing::new(plugin, Stage::Handle, took, failure.kind()));
                    add_tag(
                        &mut Arc::make_mut(&mut event).tags,
                        failure_tag(plugin.name()),
                    );
                    let policy = plugin.spec.failure;
                    failures.push(Failure {
                        plugin: plugin.name().to_owned(),
                        stage: Stage::Handle,
                        failure,
                        policy,
                    });
                    match policy {
                        FailurePolicy::FailOpen => {
                            plugin.metrics().stats.fail_open_skips.fetch_add(1, Relaxed);
                            continue;
                        }
                        FailurePolicy::FailClosed => {
                            action = Action::Block(format!(
                                "message could not be checked by policy `{}`",
                                plugin.name()
                            ));
                            decided_by = Some(plugin.decider().clone());
                            break;
                        }
                    }
                }
            };
            timings.push(Timing::new(
                plugin,
                Stage::Handle,
                took,
                verdict.action.kind(),
            ));
            if !verdict.tags.is_empty() {
                let tags = &mut Arc::make_mut(&mut event).tags;
                for tag in verdict.tags {
                    add_tag(tags, tag);
                }
            }
            match verdict.action {
                Action::Allow => {}
                Action::Rewrite(body) => {
                    if let EventKind::Message(m) = &mut Arc::make_mut(&mut event).kind {
                        let old = std::mem::replace(&mut m.body, body.clone());
                        attempted_body.get_or_insert(old);
                    }
                    action = Action::Rewrite(body);
                    decided_by = Some(plugin.decider().clone());
                }
                stop @ (Action::Block(_) | Action::Drop) => {
                    action = stop;
                    decided_by = Some(plugin.decider().clone());
                    break;
                }
            }
        }

        if let Some(body) = attempted_body
            && let EventKind::Message(m) = &mut Arc::make_mut(&mut event).kind
        {
            m.body = body;
        }
        let verdict = FinalVerdict {
            action,
            decided_by,
            tags: event.tags.clone(),
        };
        let verdict = if self.has_observers {
            Arc::unwrap_or_clone(self.observe(
                &event,
                Arc::new(verdict),
                &mut timings,
                &mut failures,
            ))
        } else {
            verdict
        };
        if event.tags != verdict.tags {
            Arc::make_mut(&mut event).tags.clone_from(&verdict.tags);
        }
        Decision {
            verdict,
            event,
            timings,
            failures,
            generation: self.generation,
        }
    }
}

impl Chain {
    /// Shows every observer the final verdict; a fail-closed observer that
    /// fails turns it into a block.
    fn observe(
        &self,
        event: &Arc<Event>,
        mut verdict: Arc<FinalVerdict>,
        timings: &mut Vec<Timing>,
        failures: &mut Vec<Failure>,
    ) -> Arc<FinalVerdict> {
        for plugin in self.plugins.iter().filter(|p| p.is_observer()) {
            let Timed { result, took } = plugin.observe(event, &verdict);
            let outcome = match &result {
                Ok(()) => "observed",
                Err(f) => f.kind(),
            };
            timings.push(Timing::new(plugin, Stage::Observe, took, outcome));
            if let Err(failure) = result {
                let policy = plugin.spec.failure;
                let v = Arc::make_mut(&mut verdict);
                add_tag(&mut v.tags, failure_tag(plugin.name()));
                failures.push(Failure {
                    plugin: plugin.name().to_owned(),
                    stage: Stage::Observe,
                    failure,
                    policy,
                });
                match policy {
                    FailurePolicy::FailOpen => {
                        plugin.metrics().stats.fail_open_skips.fetch_add(1, Relaxed);
                    }
                    FailurePolicy::FailClosed => {
                        v.action = Action::Block(format!(
                            "message could not be recorded by `{}`",
                            plugin.name()
                        ));
                        v.decided_by = Some(plugin.decider().clone());
                    }
                }
            }
        }
        verdict
    }
}

fn add_tag(tags: &mut Vec<String>, tag: String) {
    if !tags.contains(&tag) {
        tags.push(tag);
    }
}
