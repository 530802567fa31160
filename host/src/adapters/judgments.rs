//! Messages already judged, across every session of one adapter: one
//! judgment per message per gateway.
//!
//! A message reaches several local sessions: an IRC channel's line or a
//! MUC's message reaches each local member, a carbon (XEP-0280) reaches
//! each of the user's other clients, and a message a local user sent comes
//! back to every local member of the room. The first session to meet it
//! has it judged; the others reuse that verdict rather than run the chain
//! (and archive, and count) again.
//!
//! How a message is recognised ([`Seen`]):
//! - by the network's own identity (XMPP: direction, sender, recipient and
//!   stanza id): one judgment for every session that meets it;
//! - by its content (sender, target and text) when the network gives no
//!   identity shared by every copy (IRC lines, MUC copies). The same text
//!   can be said twice, so each *occurrence* is judged once: a session
//!   takes the oldest occurrence it has not taken yet, and one that has
//!   taken them all meets a new message.
//!
//! Copies of one message reach their sessions at about the same time, so
//! the first session *claims* it; another that finds it claimed waits
//! (woken when the verdict is in, at most briefly) rather than judging it
//! twice. Keys are hashed with a per-process random key: a remote sender
//! cannot craft a message that collides with another one's verdict.

use std::collections::hash_map::{DefaultHasher, RandomState};
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::event::Action;
use crate::util::blocking::wait_off_worker;

/// How a message is known across sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// Only here: judge it.
    Alone,
    /// The network names it (the stem holds its identity): judged once,
    /// whichever session meets it first.
    Named(Stem),
    /// This session sent it; local members will receive copies with this
    /// stem, which take its verdict.
    Sent(Stem),
    /// A copy that other local sessions may receive too.
    Copy(Stem),
}

/// What identifies a message apart from its text: the hash of its parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Stem(u64);

/// What a session should do with a message.
#[derive(Debug, PartialEq)]
pub enum Claim {
    /// Judge it, then [`Judgments::decide`] the verdict.
    Mine,
    /// Already judged: apply this.
    Decided(Action),
}

/// How long a session waits for another one's verdict before judging the
/// message itself; a chain call is bounded by its plugins' deadlines.
const WAIT: Duration = Duration::from_secs(2);

/// How long a copy is expected after its message was judged. Copies come
/// within moments; a session that lags further judges its copy itself.
const FRESH: Duration = Duration::from_secs(60);

/// Occurrences of one text kept per key (someone repeating "ok").
const OCCURRENCES: usize = 8;

pub struct Judgments {
    hasher: RandomState,
    inner: Mutex<Inner>,
    /// Signalled whenever a verdict is decided.
    decided: Condvar,
    capacity: usize,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<u64, VecDeque<Occurrence>>,
    /// Keys in the order they were first met, to forget the oldest.
    order: VecDeque<u64>,
}

struct Occurrence {
    /// None while the claiming session judges it.
    action: Option<Action>,
    /// Sessions that have taken it (by [`Judgments::session_no`]).
    takers: Vec<u64>,
    at: Instant,
}

impl Judgments {
    /// Remembers the last `capacity` messages; older ones are forgotten.
    pub fn new(capacity: usize) -> Self {
        Judgments {
            hasher: RandomState::new(),
            inner: Mutex::new(Inner::default()),
            decided: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    /// The stem of a message known by `parts` (in order).
    pub fn stem(&self, parts: &[&str]) -> Stem {
        let mut h = self.hasher.build_hasher();
        for part in parts {
            part.hash(&mut h);
        }
        Stem(h.finish())
    }

    /// The stem of a message whose parts `write` hashes (parts compared
    /// loosely, such as IRC nicks, are hashed folded, not copied).
    pub fn stem_from(&self, write: impl FnOnce(&mut DefaultHasher)) -> Stem {
        let mut h = self.hasher.build_hasher();
        write(&mut h);
        Stem(h.finish())
    }

    /// The key of the message with this stem and text.
    pub fn key(&self, stem: Stem, text: &str) -> u64 {
        let mut h = self.hasher.build_hasher();
        stem.hash(&mut h);
        text.hash(&mut h);
        h.finish()
    }

    /// A session's number in the takers lists.
    pub fn session_no(&self, session_id: &str) -> u64 {
        self.hasher.hash_one(session_id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, inner: &mut Inner, key: u64, occurrence: Occurrence) {
        let occurrences = inner.entries.entry(key).or_default();
        if occurrences.is_empty() {
            inner.order.push_back(key);
        }
        if occurrences.len() == OCCURRENCES {
            occurrences.pop_front();
        }
        occurrences.push_back(occurrence);
        while inner.order.len() > self.capacity {
            if let Some(old) = inner.order.pop_front() {
                inner.entries.remove(&old);
            }
        }
    }

    /// The message `key` names, met by the session `taker`: once per
    /// message when `named`, else once per occurrence (see the module).
    pub fn claim(&self, key: u64, taker: u64, named: bool) -> Claim {
        let deadline = Instant::now() + WAIT;
        let mut inner = self.lock();
        loop {
            let now = Instant::now();
            let open = inner.entries.get_mut(&key).and_then(|occurrences| {
                occurrences.retain(|o| now.duration_since(o.at) < FRESH);
                occurrences
                    .iter_mut()
                    .find(|o| named || !o.takers.contains(&taker))
            });
            match open {
                Some(o) if o.action.is_some() => {
                    if !named {
                        o.takers.push(taker);
                    }
                    return Claim::Decided(o.action.clone().unwrap_or_default());
                }
                Some(_) => {}
                None => {
                    let occurrence = Occurrence {
                        action: None,
                        takers: if named { Vec::new() } else { vec![taker] },
                        at: now,
                    };
                    self.push(&mut inner, key, occurrence);
                    return Claim::Mine;
                }
            }
            let left = deadline.saturating_duration_since(now);
            if left.is_zero() {
                return Claim::Mine;
            }
            inner = wait_off_worker(|| {
                self.decided
                    .wait_timeout(inner, left)
                    .map_or_else(|p| p.into_inner().0, |(guard, _)| guard)
            });
        }
    }

    /// Records the verdict on `key` that its claimant reached, and wakes
    /// the sessions waiting for it.
    pub fn decide(&self, key: u64, action: Action) {
        let mut inner = self.lock();
        let pending = inner
            .entries
            .get_mut(&key)
            .and_then(|o| o.iter_mut().find(|o| o.action.is_none()));
        match pending {
            Some(o) => o.action = Some(action),
            // Forgotten meanwhile (or never claimed): remember it anew.
            None => self.push(
                &mut inner,
                key,
                Occurrence {
                    action: Some(action),
                    takers: Vec::new(),
                    at: Instant::now(),
                },
            ),
        }
        drop(inner);
        self.decided.notify_all();
    }

    /// A message a local session sent, and will reach local members as
    /// `key`: each of them takes `action` for its copy.
    pub fn sent(&self, key: u64, action: Action) {
        let mut inner = self.lock();
        let occurrence = Occurrence {
            action: Some(action),
            takers: Vec::new(),
            at: Instant::now(),
        };
        self.push(&mut inner, key, occurrence);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_named_message_is_judged_once_whoever_meets_it() {
        let seen = Judgments::new(2);
        let [a, b, c] = [1, 2, 3].map(|n| seen.key(Stem(n), "hi"));
        assert_eq!(seen.claim(a, 10, true), Claim::Mine);
        seen.decide(a, Action::Drop);
        assert_eq!(seen.claim(a, 10, true), Claim::Decided(Action::Drop));
        assert_eq!(seen.claim(a, 11, true), Claim::Decided(Action::Drop));
        assert_eq!(seen.claim(b, 10, true), Claim::Mine);
        assert_eq!(seen.claim(c, 10, true), Claim::Mine);
        assert_eq!(
            seen.claim(a, 10, true),
            Claim::Mine,
            "forgotten beyond capacity"
        );
    }

    #[test]
    fn each_occurrence_of_a_text_is_judged_once() {
        let seen = Judgments::new(16);
        let ok = seen.key(seen.stem(&["irc", "alice", "#deals"]), "ok");
        let (bob, carol) = (1, 2);
        // Bob meets "ok" first and has it judged; Carol takes that verdict.
        assert_eq!(seen.claim(ok, bob, false), Claim::Mine);
        seen.decide(ok, Action::Allow);
        assert_eq!(seen.claim(ok, carol, false), Claim::Decided(Action::Allow));
        // "ok" said again: a new message, judged again, once.
        assert_eq!(seen.claim(ok, carol, false), Claim::Mine);
        seen.decide(ok, Action::Block("twice".into()));
        assert_eq!(
            seen.claim(ok, bob, false),
            Claim::Decided(Action::Block("twice".into()))
        );
        assert_eq!(seen.claim(ok, bob, false), Claim::Mine);
    }

    #[test]
    fn copies_of_a_sent_message_take_its_verdict() {
        let seen = Judgments::new(16);
        let stem = seen.stem(&["irc", "alice", "#deals"]);
        seen.sent(seen.key(stem, "hello"), Action::Allow);
        let key = seen.key(stem, "hello");
        for member in 1..=20 {
            assert_eq!(
                seen.claim(key, member, false),
                Claim::Decided(Action::Allow)
            );
        }
        assert_eq!(seen.claim(key, 1, false), Claim::Mine, "a second hello");
        assert_ne!(key, seen.key(seen.stem(&["irc", "bob", "#deals"]), "hello"));
    }

    #[test]
    fn a_concurrent_claim_waits_for_the_verdict() {
        let seen = Arc::new(Judgments::new(16));
        assert_eq!(seen.claim(7, 1, false), Claim::Mine);
        let other = {
            let seen = seen.clone();
            std::thread::spawn(move || seen.claim(7, 2, false))
        };
        std::thread::sleep(Duration::from_millis(20));
        let at = Instant::now();
        seen.decide(7, Action::Block("no".into()));
        assert_eq!(
            other.join().unwrap(),
            Claim::Decided(Action::Block("no".into()))
        );
        // Woken by the verdict, not by polling or the 2 s limit.
        assert!(at.elapsed() < Duration::from_millis(500));
    }
}
