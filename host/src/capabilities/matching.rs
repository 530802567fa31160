//! `match`: keyword lists, regexes, the DLP detectors and links, compiled
//! by the host (`imgate-match`) and run natively on a plugin's texts.
//! Config: none. Shared: each plugin's compiled matchers, by their rules,
//! so every instance after the first compiles nothing. Per instance: the
//! `matcher` handles in its resource table.
//!
//! The time a search takes is the plugin's: it runs on the calling thread,
//! inside the call's CPU deadline.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use imgate_match::{Hit, MAX_HITS, Matcher, Rule};
use wasmtime::component::{Resource, ResourceTable};

use super::{Capability, NotGranted};
use crate::contract::match_::{self as wit, Host, HostMatcher, Scope, TextHit as WitTextHit};
use crate::contract::matcher::MatcherRef;
use crate::contract::types::EventView;
use crate::contract::view::EventSlot;
use crate::event::Event;

/// Most distinct rule sets one plugin may compile.
pub const MAX_COMPILED: usize = 64;
/// Most host memory one plugin's matchers may hold, together: they live
/// outside its own memory cap, so they have one of their own.
pub const MAX_PLUGIN_BYTES: usize = 128 << 20;
/// Most matchers one instance holds at once.
pub const MAX_LIVE: usize = 256;

/// One plugin's compiled matchers, by their rules, and its promise to
/// allow every event without a hit (`call-only-on-hit`).
pub struct Compiled {
    by_rules: Mutex<ByRules>,
    gate: Mutex<Option<Gate>>,
    /// [`MAX_PLUGIN_BYTES`], but for tests.
    budget: usize,
}

impl Default for Compiled {
    fn default() -> Self {
        Compiled {
            by_rules: Mutex::default(),
            gate: Mutex::default(),
            budget: MAX_PLUGIN_BYTES,
        }
    }
}

#[derive(Default)]
struct ByRules {
    matchers: HashMap<Vec<Rule>, Arc<Matcher>>,
    /// What they hold, by [`Matcher::memory`].
    bytes: usize,
}

/// `call-only-on-hit`: the plugin is called only for events in which this
/// matcher finds something in this scope.
#[derive(Clone)]
pub struct Gate {
    matcher: Arc<Matcher>,
    scope: Scope,
}

impl Gate {
    /// Whether the plugin must be called for `event`.
    pub fn lets(&self, event: &Event) -> bool {
        texts(event, self.scope)
            .into_iter()
            .any(|(_, text)| self.matcher.is_match(text))
    }
}

impl Compiled {
    /// The gate the plugin's `init` set, if it set one.
    pub fn gate(&self) -> Option<Gate> {
        self.gate.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The matcher for `rules`: the one compiled before, or a new one
    /// within the plugin's limits (every matcher is kept, so the limits
    /// hold however many instances compile).
    fn get_or_compile(&self, rules: Vec<Rule>) -> Result<Arc<Matcher>, String> {
        let mut by_rules = self.by_rules.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = by_rules.matchers.get(&rules) {
            return Ok(m.clone());
        }
        if by_rules.matchers.len() >= MAX_COMPILED {
            return Err(format!(
                "more than {MAX_COMPILED} different rule sets compiled: compile once, in init"
            ));
        }
        let matcher = Arc::new(Matcher::compile(&rules).map_err(|e| e.to_string())?);
        let bytes = by_rules.bytes + matcher.memory();
        if bytes > self.budget {
            return Err(format!(
                "the plugin's matchers would hold {} MiB; at most {} MiB",
                bytes >> 20,
                self.budget >> 20
            ));
        }
        by_rules.bytes = bytes;
        by_rules.matchers.insert(rules, matcher.clone());
        Ok(matcher)
    }
}

/// The per-instance half.
pub struct MatchInstance {
    plugin: Arc<str>,
    compiled: Option<Arc<Compiled>>,
    live: usize,
}

impl MatchInstance {
    pub fn new(plugin: Arc<str>, compiled: Option<Arc<Compiled>>) -> Self {
        MatchInstance {
            plugin,
            compiled,
            live: 0,
        }
    }

    fn compiled(&self) -> wasmtime::Result<&Arc<Compiled>> {
        NotGranted::require(self.compiled.as_ref(), &self.plugin, Capability::Match)
    }
}

/// What the match calls reach: the instance's half, its resource table
/// (where matchers live) and the event in progress.
pub struct MatchCtx<'a> {
    pub matching: &'a mut MatchInstance,
    pub table: &'a mut ResourceTable,
    pub view: &'a EventSlot,
}

/// Projection type for the linker: `HostState` → [`MatchCtx`].
pub struct MatchData;

impl wasmtime::component::HasData for MatchData {
    type Data<'a> = MatchCtx<'a>;
}

fn rule(r: wit::Rule) -> Rule {
    match r {
        wit::Rule::Keywords(k) => Rule::Keywords {
            words: k.words,
            whole_word: k.whole_word,
            ignore_case: k.ignore_case,
        },
        wit::Rule::Regex(p) => Rule::Regex {
            pattern: p.regex,
            ignore_case: p.ignore_case,
        },
        wit::Rule::Detector(name) => Rule::Detector(name),
    }
}

fn hit(matcher: &Matcher, text: &str, h: Hit) -> wit::Hit {
    wit::Hit {
        rule: h.rule as u32,
        item: h.item as u32,
        kind: matcher.kind(h.rule).to_owned(),
        start: h.start as u32,
        end: h.end as u32,
        text: text[h.start..h.end].to_owned(),
        host: h.host,
    }
}

/// The event's texts in `scope`, with their roles.
fn texts(event: &Event, scope: Scope) -> Vec<(&'static str, &str)> {
    let body = event.body().map(|b| ("body", b));
    match (scope, body) {
        (Scope::Body, body) => body.into_iter().collect(),
        (Scope::BodyElseTexts, Some(body)) => vec![body],
        (Scope::BodyElseTexts | Scope::Texts, _) => event
            .texts()
            .into_iter()
            .map(|t| (t.role, t.value))
            .collect(),
    }
}

impl MatchCtx<'_> {
    fn matcher(&self, h: &Resource<MatcherRef>) -> wasmtime::Result<Arc<Matcher>> {
        self.matching.compiled()?;
        Ok(self.table.get(h)?.0.clone())
    }

    fn event(&self, h: &Resource<EventView>) -> wasmtime::Result<Arc<Event>> {
        Ok(self.view.get(h)?.event.clone())
    }
}

impl HostMatcher for MatchCtx<'_> {
    fn compile(
        &mut self,
        rules: Vec<wit::Rule>,
    ) -> wasmtime::Result<Result<Resource<MatcherRef>, String>> {
        let compiled = self.matching.compiled()?.clone();
        if self.matching.live >= MAX_LIVE {
            return Ok(Err(format!(
                "more than {MAX_LIVE} matchers held at once: compile once, in init"
            )));
        }
        let rules: Vec<Rule> = rules.into_iter().map(rule).collect();
        match compiled.get_or_compile(rules) {
            Ok(m) => {
                self.matching.live += 1;
                Ok(Ok(self.table.push(MatcherRef(m))?))
            }
            Err(e) => Ok(Err(e)),
        }
    }

    fn find(&mut self, h: Resource<MatcherRef>, text: String) -> wasmtime::Result<Vec<wit::Hit>> {
        let m = self.matcher(&h)?;
        Ok(m.find(&text)
            .into_iter()
            .map(|x| hit(&m, &text, x))
            .collect())
    }

    fn first(
        &mut self,
        h: Resource<MatcherRef>,
        text: String,
    ) -> wasmtime::Result<Option<wit::Hit>> {
        let m = self.matcher(&h)?;
        Ok(m.first(&text).map(|x| hit(&m, &text, x)))
    }

    fn find_in(
        &mut self,
        h: Resource<MatcherRef>,
        event: Resource<EventView>,
        scope: Scope,
    ) -> wasmtime::Result<Vec<WitTextHit>> {
        let m = self.matcher(&h)?;
        let event = self.event(&event)?;
        let mut out = Vec::new();
        for (role, text) in texts(&event, scope) {
            for x in m.find(text) {
                if out.len() >= MAX_HITS {
                    return Ok(out);
                }
                out.push(WitTextHit {
                    role: role.to_owned(),
                    hit: hit(&m, text, x),
                });
            }
        }
        Ok(out)
    }

    fn first_in(
        &mut self,
        h: Resource<MatcherRef>,
        event: Resource<EventView>,
        scope: Scope,
    ) -> wasmtime::Result<Option<WitTextHit>> {
        let m = self.matcher(&h)?;
        let event = self.event(&event)?;
        Ok(texts(&event, scope).into_iter().find_map(|(role, text)| {
            m.first(text).map(|x| WitTextHit {
                role: role.to_owned(),
                hit: hit(&m, text, x),
            })
        }))
    }

    fn call_only_on_hit(
        &mut self,
        h: Resource<MatcherRef>,
        scope: Scope,
    ) -> wasmtime::Result<Result<(), String>> {
        let matcher = self.matcher(&h)?;
        if self.view.current_event().is_some() {
            return Ok(Err("call-only-on-hit is a promise made in init".into()));
        }
        let compiled = self.matching.compiled()?;
        *compiled.gate.lock().unwrap_or_else(|p| p.into_inner()) = Some(Gate { matcher, scope });
        Ok(Ok(()))
    }

    fn drop(&mut self, h: Resource<MatcherRef>) -> wasmtime::Result<()> {
        self.table.delete(h)?;
        self.matching.live = self.matching.live.saturating_sub(1);
        Ok(())
    }
}

impl Host for MatchCtx<'_> {
    fn normalize_host(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        self.matching.compiled()?;
        Ok(imgate_match::normalize_host(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(n: usize, tag: usize) -> Vec<Rule> {
        vec![Rule::Keywords {
            words: (0..n).map(|i| format!("w{tag}x{i}")).collect(),
            whole_word: true,
            ignore_case: true,
        }]
    }

    #[test]
    fn the_same_rules_compile_once() {
        let c = Compiled::default();
        let a = c.get_or_compile(words(3, 0)).unwrap();
        let b = c.get_or_compile(words(3, 0)).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn a_plugin_cannot_compile_without_bound() {
        let c = Compiled::default();
        for tag in 0..MAX_COMPILED {
            c.get_or_compile(words(2, tag)).unwrap();
        }
        let Err(err) = c.get_or_compile(words(2, MAX_COMPILED)) else {
            panic!("a 65th rule set compiled")
        };
        assert!(err.contains("compile once"), "{err}");

        // Keyword lists, each within a matcher's limits, until the
        // plugin's memory budget (here 2 MiB) says no.
        let c = Compiled {
            budget: 2 << 20,
            ..Compiled::default()
        };
        let refused = (0..MAX_COMPILED)
            .map(|tag| c.get_or_compile(words(5_000, tag)))
            .find_map(Result::err)
            .expect("the budget holds");
        assert!(refused.contains("at most 2 MiB"), "{refused}");
        let held = c.by_rules.lock().unwrap().bytes;
        assert!(held > 0 && held <= 2 << 20, "{held}");
    }
}
