//! The chain: every event through the policy plugins in order, then the
//! observers, giving one [`Decision`].
//!
//! Rules: the first `block` or `drop` wins and decides; a `rewrite`
//! changes the body the next plugin sees; tags accumulate and later
//! plugins see them. A failing plugin answers through its failure policy:
//! `fail-closed` blocks, `fail-open` is skipped. With `tags_after_block`
//! the plugins after a block still run for their tags only (their actions
//! are ignored), so the record of a blocked message says everything the
//! chain found — that a walled message also held a card number.
//!
//! Observers then see the event as attempted and the final verdict; they
//! cannot change it, except that a `fail-closed` observer that fails (an
//! archive that cannot persist) stops delivery, so nothing is delivered
//! unrecorded. Those that can veto run first; if one vetoes, those that
//! had already seen the verdict are shown the one that stands, and only
//! then do the others see it: no observer's last word is a verdict that
//! did not stand.
//!
//! `evaluate` takes `&self` and no lock: concurrent events each take their
//! own instance from each plugin's pool.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::engine::PluginEngine;
use super::instance::CallFailure;
use super::plugin::{LoadError, LoadedPlugin, Timed};
use crate::config::{FailurePolicy, PluginSpec};
use crate::event::bridge::{ORIGIN, Outgoing};
use crate::event::{Action, Event, EventKind, FinalVerdict, Scope};

/// Which export a timing or failure refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Handle,
    /// A policy plugin after a block, run for its tags only.
    AfterBlock,
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

/// One event's timings; a short chain's fit inline (no allocation).
pub type Timings = smallvec::SmallVec<[Timing; 4]>;

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
    pub timings: Timings,
    pub failures: Vec<Failure>,
    /// The chain generation that decided (see `live`).
    pub generation: u64,
    /// What plugins sent into other networks (`bridge`), one per ticket;
    /// empty when the event is stopped: a message not delivered is not
    /// bridged either.
    pub sent: Vec<Outgoing>,
}

impl Decision {
    /// The text to deliver (a message's body, a subject), when the
    /// verdict is to deliver it.
    pub fn delivered_body(&self) -> Option<&str> {
        match &self.verdict.action {
            Action::Rewrite(body) => Some(body),
            Action::Allow => self.event.body(),
            _ => None,
        }
    }
}

/// Tag the plugins after a block see while they run for their tags only.
pub const AFTER_BLOCK_TAG: &str = "imgate:after-block";

/// Tag added when a plugin failed on an event, so the archive records it.
pub fn failure_tag(plugin: &str) -> String {
    format!("imgate:failed:{plugin}")
}

pub struct Chain {
    plugins: Vec<Arc<LoadedPlugin>>,
    has_observers: bool,
    /// Some plugin judges each recipient of a message.
    each_recipient: bool,
    /// Some plugin may send into other networks (`bridge`).
    has_bridges: bool,
    /// Some plugin sees only some networks or directions.
    scoped: bool,
    /// After a block or drop, run the rest for their tags.
    tags_after_block: bool,
    /// Which load of the config this is (see `live`); 0 when not live.
    generation: u64,
}

impl Chain {
    pub fn new(plugins: Vec<Arc<LoadedPlugin>>) -> Self {
        Chain {
            has_observers: plugins.iter().any(|p| p.is_observer()),
            each_recipient: plugins.iter().any(|p| p.each_recipient()),
            has_bridges: plugins.iter().any(|p| p.bridges()),
            scoped: plugins
                .iter()
                .any(|p| !p.spec.networks.is_empty() || !p.spec.directions.is_empty()),
            plugins,
            tags_after_block: false,
            generation: 0,
        }
    }

    /// Whether the plugins after a block or drop still run, for their tags
    /// only (`[chain] tags_after_block`).
    pub fn with_tags_after_block(mut self, on: bool) -> Self {
        self.tags_after_block = on;
        self
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

    /// Whether some plugin may send into other networks.
    pub fn has_bridges(&self) -> bool {
        self.has_bridges
    }

    /// Whether some plugin judges each recipient of a message.
    pub fn judges_each_recipient(&self) -> bool {
        self.each_recipient
    }

    /// Runs `event` (an `Event` or an `Arc<Event>`) through the chain.
    pub fn evaluate(&self, event: impl Into<Arc<Event>>) -> Decision {
        self.evaluate_in(event, Scope::All)
    }

    /// Runs `event` through the plugins of `scope`. A recipient's copy
    /// (`Scope::Recipient`) is shown to the observers only when its
    /// judgment stops it: the message itself was recorded once, by the
    /// judgment every copy shares.
    pub fn evaluate_in(&self, event: impl Into<Arc<Event>>, scope: Scope) -> Decision {
        // Plugins see the event through a view holding a clone of this
        // `Arc`; the view is closed after each call, so the changes below
        // (`make_mut`) happen in place rather than copying the event.
        let mut event = event.into();
        let mut action = Action::Allow;
        let mut decided_by = None;
        let mut timings = Timings::new();
        let mut failures = Vec::new();
        // The body before the first rewrite; observers see the original.
        let mut attempted_body: Option<String> = None;
        // The attachments before the first removal, and those removed.
        let mut attempted: Option<Vec<crate::event::Attachment>> = None;
        let mut removed: Vec<String> = Vec::new();
        let mut sent = Vec::new();
        // A bridged copy is never shown to a bridge: no loops.
        let copy = self.has_bridges && is_copy(&event);

        let kind = event.kind.kind();
        // Only when some plugin is scoped (an adapter's name is static, so
        // this copies nothing then either).
        let place = self
            .scoped
            .then(|| (event.network.clone(), event.direction));
        // Each call starts when the one before it ended: one clock read
        // per plugin.
        let mut clock = Instant::now();
        let mut policy = self
            .plugins
            .iter()
            .filter(|p| p.is_policy() && p.wants(kind) && in_scope(p, scope))
            .filter(|p| !(copy && p.bridges()))
            .filter(|p| place.as_ref().is_none_or(|(n, d)| p.spec.applies_to(n, *d)));
        for plugin in policy.by_ref() {
            if !plugin.called_for(&event) {
                continue;
            }
            let Timed {
                result,
                took,
                ended,
            } = plugin.handle_from(&event, clock);
            clock = ended;
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
            keep_sent(&mut sent, verdict.sent);
            annotate(&mut event, verdict.tags, verdict.attributes);
            if !verdict.remove_attachments.is_empty() && !verdict.action.stops() {
                let text = remove_attachments(
                    Arc::make_mut(&mut event),
                    &verdict.remove_attachments,
                    &mut removed,
                    (&mut attempted, &mut attempted_body),
                );
                if let (Action::Allow, Some(text)) = (&verdict.action, text) {
                    // The content changed: what is delivered is a rewrite.
                    action = Action::Rewrite(text);
                    decided_by = Some(plugin.decider().clone());
                }
            }
            match verdict.action {
                Action::Allow => {}
                Action::Rewrite(body) => {
                    if let Some(text) = Arc::make_mut(&mut event).body_mut() {
                        let old = std::mem::replace(text, body.clone());
                        attempted_body.get_or_insert(old);
                    }
                    action = Action::Rewrite(body);
                    decided_by = Some(plugin.decider().clone());
                }
                stop @ (Action::Block(_) | Action::Drop | Action::Hold(_)) => {
                    action = stop;
                    decided_by = Some(plugin.decider().clone());
                    break;
                }
            }
        }

        if self.tags_after_block && action.stops() {
            // The plugins can tell (`has-tag`), and skip what only matters
            // for delivery (a disclaimer); the tag itself is not kept.
            Arc::make_mut(&mut event)
                .tags
                .push(AFTER_BLOCK_TAG.to_owned());
            for plugin in policy {
                if plugin.called_for(&event) {
                    tags_only(plugin, &mut event, &mut timings, &mut failures);
                }
            }
            Arc::make_mut(&mut event)
                .tags
                .retain(|t| t != AFTER_BLOCK_TAG);
        }

        if let Some(body) = attempted_body
            && let Some(text) = Arc::make_mut(&mut event).body_mut()
        {
            *text = body;
        }
        if let Some(attachments) = attempted
            && let EventKind::Message(m) = &mut Arc::make_mut(&mut event).kind
        {
            m.attachments = attachments;
        }
        if action.stops() {
            // Nothing is delivered, so nothing was taken out of it.
            removed.clear();
        }
        let verdict = FinalVerdict {
            action,
            decided_by,
            tags: event.tags.clone(),
            removed_attachments: removed,
        };
        let verdict = if self.has_observers && (scope != Scope::Recipient || verdict.action.stops())
        {
            Arc::unwrap_or_clone(self.observe(
                &event,
                Arc::new(verdict),
                copy,
                &mut timings,
                &mut failures,
                &mut sent,
            ))
        } else {
            verdict
        };
        if event.tags != verdict.tags {
            Arc::make_mut(&mut event).tags.clone_from(&verdict.tags);
        }
        if verdict.action.stops() && !sent.is_empty() {
            tracing::debug!(event = %event.id, discarded = sent.len(), "event stopped: nothing it sent is bridged");
            sent.clear();
        }
        Decision {
            verdict,
            event,
            timings,
            failures,
            generation: self.generation,
            sent,
        }
    }
}

/// A copy a bridge made: it carries its origin.
fn is_copy(event: &Event) -> bool {
    event.attributes.iter().any(|(k, _)| k == ORIGIN)
}

/// Adds what one call sent, once per ticket: two bridges that send the
/// same message to the same room make one copy.
fn keep_sent(sent: &mut Vec<Outgoing>, new: Vec<Outgoing>) {
    for outgoing in new {
        if !sent.iter().any(|s| s.ticket == outgoing.ticket) {
            sent.push(outgoing);
        }
    }
}

fn in_scope(plugin: &LoadedPlugin, scope: Scope) -> bool {
    match scope {
        Scope::All => true,
        Scope::Shared => !plugin.each_recipient(),
        Scope::Recipient => plugin.each_recipient(),
    }
}

/// A policy plugin after a block: its tags count, its action does not,
/// and its failure changes nothing but a tag.
fn tags_only(
    plugin: &LoadedPlugin,
    event: &mut Arc<Event>,
    timings: &mut Timings,
    failures: &mut Vec<Failure>,
) {
    let Timed { result, took, .. } = plugin.handle(event);
    match result {
        Ok(verdict) => {
            timings.push(Timing::new(
                plugin,
                Stage::AfterBlock,
                took,
                verdict.action.kind(),
            ));
            annotate(event, verdict.tags, verdict.attributes);
        }
        Err(failure) => {
            timings.push(Timing::new(plugin, Stage::AfterBlock, took, failure.kind()));
            add_tag(&mut Arc::make_mut(event).tags, failure_tag(plugin.name()));
            failures.push(Failure {
                plugin: plugin.name().to_owned(),
                stage: Stage::AfterBlock,
                failure,
                policy: plugin.spec.failure,
            });
        }
    }
}

impl Chain {
    /// Shows every observer the final verdict. The observers that can veto
    /// (`fail-closed`) go first, and a failure of one turns the verdict
    /// into a block; those of them that had seen the verdict before it
    /// changed see the one that stands; then the rest see it.
    fn observe(
        &self,
        event: &Arc<Event>,
        mut verdict: Arc<FinalVerdict>,
        copy: bool,
        timings: &mut Timings,
        failures: &mut Vec<Failure>,
        sent: &mut Vec<Outgoing>,
    ) -> Arc<FinalVerdict> {
        let kind = event.kind.kind();
        let observers = || {
            self.plugins
                .iter()
                .filter(move |p| p.is_observer() && p.wants(kind) && !(copy && p.bridges()))
                .filter(move |p| !self.scoped || p.spec.applies_to(&event.network, event.direction))
        };
        let can_veto = |p: &&Arc<LoadedPlugin>| p.spec.failure == FailurePolicy::FailClosed;
        let mut saw = Vec::new();
        for plugin in observers().filter(can_veto) {
            if self.show(plugin, event, &mut verdict, timings, failures, sent) {
                saw.push((plugin, verdict.clone()));
            }
        }
        for (plugin, seen) in saw {
            if seen.action != verdict.action {
                self.show(plugin, event, &mut verdict, timings, failures, sent);
            }
        }
        for plugin in observers().filter(|p| !can_veto(p)) {
            self.show(plugin, event, &mut verdict, timings, failures, sent);
        }
        verdict
    }

    /// Shows one observer the verdict; applies its failure policy if it
    /// fails. Returns whether it observed.
    fn show(
        &self,
        plugin: &LoadedPlugin,
        event: &Arc<Event>,
        verdict: &mut Arc<FinalVerdict>,
        timings: &mut Timings,
        failures: &mut Vec<Failure>,
        sent: &mut Vec<Outgoing>,
    ) -> bool {
        let Timed { result, took, .. } = plugin.observe(event, verdict);
        let outcome = match &result {
            Ok(_) => "observed",
            Err(f) => f.kind(),
        };
        timings.push(Timing::new(plugin, Stage::Observe, took, outcome));
        let failure = match result {
            Ok(new) => {
                keep_sent(sent, new);
                return true;
            }
            Err(failure) => failure,
        };
        let policy = plugin.spec.failure;
        let v = Arc::make_mut(verdict);
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
        false
    }
}

/// Takes the attachments `urls` out of the message, and their URLs out of
/// its text (later plugins judge what will be delivered); remembers the
/// attachments and the body as attempted (once, for observers) and the
/// URLs removed. Returns the text as it now is.
fn remove_attachments(
    event: &mut Event,
    urls: &[String],
    removed: &mut Vec<String>,
    (attempted, attempted_body): (
        &mut Option<Vec<crate::event::Attachment>>,
        &mut Option<String>,
    ),
) -> Option<String> {
    let EventKind::Message(m) = &mut event.kind else {
        return None;
    };
    attempted.get_or_insert_with(|| m.attachments.clone());
    m.attachments.retain(|a| !urls.contains(&a.url));
    for url in urls {
        if !removed.contains(url) {
            removed.push(url.clone());
        }
        if m.body.contains(url.as_str()) {
            attempted_body.get_or_insert_with(|| m.body.clone());
            m.body = m.body.replace(url.as_str(), "").trim().to_owned();
        }
    }
    Some(m.body.clone())
}

/// Adds a plugin's tags and attributes to the event, touching (and so
/// copying) it only when there are some.
fn annotate(event: &mut Arc<Event>, tags: Vec<String>, attributes: Vec<(String, String)>) {
    if tags.is_empty() && attributes.is_empty() {
        return;
    }
    let event = Arc::make_mut(event);
    for tag in tags {
        add_tag(&mut event.tags, tag);
    }
    for (key, value) in attributes {
        match event.attributes.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = value,
            None => event.attributes.push((key, value)),
        }
    }
}

fn add_tag(tags: &mut Vec<String>, tag: String) {
    if !tags.contains(&tag) {
        tags.push(tag);
    }
}
