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
//!
//! The table is fixed (65,536 slots by default): copies come
//! within moments of each other, and a copy that comes after its message
//! was forgotten is judged again, which costs a chain run but is never
//! wrong.

use std::collections::hash_map::{DefaultHasher, RandomState};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use smallvec::SmallVec;

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

/// Independent parts of the table, so sessions rarely wait for each other.
const SHARDS: usize = 16;

/// Slots a key may take in its bucket.
const WAYS: usize = 4;

/// The table: a fixed array of slots per shard, each holding one message
/// (its key) and the verdicts of its occurrences. A key may sit in any of
/// the [`WAYS`] slots of its bucket; a new one takes the bucket's least
/// recently used slot, so the message forgotten is the oldest of four,
/// and its late copies are judged again: never wrong, only an extra
/// judgment. Fixed, so there is no map to grow and no queue of keys to
/// forget.
pub struct Judgments {
    hasher: RandomState,
    shards: Box<[Shard]>,
    slots_per_shard: usize,
}

struct Shard {
    slots: Mutex<Slots>,
    /// Signalled whenever a verdict is decided.
    decided: Condvar,
}

/// The slots of a shard: the keys and use times of a bucket in one cache
/// line, the verdicts apart, so a lookup (a miss, for a new message)
/// reads one line and then only its own slot's verdicts.
struct Slots {
    buckets: Box<[Bucket]>,
    occurrences: Box<[SmallVec<[Occurrence; 1]>]>,
    base: Instant,
}

#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct Bucket {
    keys: [u64; WAYS],
    /// Milliseconds since `base` (plus one) of the last use; 0 is empty.
    used: [u64; WAYS],
}

struct Occurrence {
    /// None while the claiming session judges it.
    action: Option<Action>,
    /// Sessions that have taken it (by [`Judgments::session_no`]).
    takers: SmallVec<[u64; 2]>,
    at: Instant,
}

impl Judgments {
    /// Remembers about the last `slots` messages (as many as there are
    /// slots, less where two keys meet in one).
    pub fn new(slots: usize) -> Self {
        let slots_per_shard = slots.div_ceil(SHARDS * WAYS).max(1) * WAYS;
        Judgments {
            hasher: RandomState::new(),
            shards: (0..SHARDS)
                .map(|_| Shard {
                    slots: Mutex::new(Slots {
                        buckets: vec![Bucket::default(); slots_per_shard / WAYS].into(),
                        occurrences: (0..slots_per_shard).map(|_| SmallVec::new()).collect(),
                        base: Instant::now(),
                    }),
                    decided: Condvar::new(),
                })
                .collect(),
            slots_per_shard,
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

    /// The shard (by the top bits) and the first slot of the key's bucket
    /// in it (by the low ones).
    fn place(&self, key: u64) -> (&Shard, usize) {
        let shard = &self.shards[(key >> 60) as usize % SHARDS];
        let buckets = self.slots_per_shard / WAYS;
        (shard, key as usize % buckets * WAYS)
    }

    /// The message `key` names, met by the session `taker`: once per
    /// message when `named`, else once per occurrence (see the module).
    pub fn claim(&self, key: u64, taker: u64, named: bool) -> Claim {
        let (shard, at) = self.place(key);
        let mut deadline = None;
        let mut slots = shard.lock();
        loop {
            let now = Instant::now();
            let slot = slots.of(at, key, now);
            slot.retain(|o| now.duration_since(o.at) < FRESH);
            let open = slot
                .iter_mut()
                .find(|o| named || !o.takers.contains(&taker));
            match open {
                Some(Occurrence {
                    action: Some(action),
                    takers,
                    ..
                }) => {
                    if !named {
                        takers.push(taker);
                    }
                    return Claim::Decided(action.clone());
                }
                Some(_) => {}
                None => {
                    let mut occurrence = Occurrence {
                        action: None,
                        takers: SmallVec::new(),
                        at: now,
                    };
                    if !named {
                        occurrence.takers.push(taker);
                    }
                    add(slot, occurrence);
                    return Claim::Mine;
                }
            }
            let deadline = *deadline.get_or_insert(now + WAIT);
            let left = deadline.saturating_duration_since(now);
            if left.is_zero() {
                return Claim::Mine;
            }
            slots = wait_off_worker(|| {
                shard
                    .decided
                    .wait_timeout(slots, left)
                    .map_or_else(|p| p.into_inner().0, |(guard, _)| guard)
            });
        }
    }

    /// Records the verdict on `key` that its claimant reached, and wakes
    /// the sessions waiting for it.
    pub fn decide(&self, key: u64, action: Action) {
        let (shard, at) = self.place(key);
        let mut slots = shard.lock();
        let slot = slots.of(at, key, Instant::now());
        match slot.iter_mut().find(|o| o.action.is_none()) {
            Some(o) => o.action = Some(action),
            // Forgotten meanwhile: remember it anew.
            None => add(slot, Occurrence::decided(action)),
        }
        drop(slots);
        shard.decided.notify_all();
    }

    /// A message a local session sent, and will reach local members as
    /// `key`: each of them takes `action` for its copy.
    pub fn sent(&self, key: u64, action: Action) {
        let (shard, at) = self.place(key);
        let mut slots = shard.lock();
        add(
            slots.of(at, key, Instant::now()),
            Occurrence::decided(action),
        );
    }
}

impl Occurrence {
    fn decided(action: Action) -> Self {
        Occurrence {
            action: Some(action),
            takers: SmallVec::new(),
            at: Instant::now(),
        }
    }
}

impl Shard {
    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Slots {
    /// The occurrences of `key` in the bucket starting at `at`: where it
    /// is, or else the least recently used slot's, its message forgotten.
    fn of(&mut self, at: usize, key: u64, now: Instant) -> &mut SmallVec<[Occurrence; 1]> {
        let stamp = now.saturating_duration_since(self.base).as_millis() as u64 + 1;
        let bucket = &mut self.buckets[at / WAYS];
        let way = (0..WAYS)
            .find(|&w| bucket.used[w] != 0 && bucket.keys[w] == key)
            .unwrap_or_else(|| {
                let oldest = (0..WAYS).min_by_key(|&w| bucket.used[w]).unwrap_or(0);
                bucket.keys[oldest] = key;
                self.occurrences[at + oldest].clear();
                oldest
            });
        bucket.used[way] = stamp;
        &mut self.occurrences[at + way]
    }
}

fn add(occurrences: &mut SmallVec<[Occurrence; 1]>, occurrence: Occurrence) {
    if occurrences.len() == OCCURRENCES {
        occurrences.remove(0);
    }
    occurrences.push(occurrence);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_named_message_is_judged_once_whoever_meets_it() {
        let seen = Judgments::new(16);
        let a = seen.key(Stem(1), "hi");
        assert_eq!(seen.claim(a, 10, true), Claim::Mine);
        seen.decide(a, Action::Drop);
        assert_eq!(seen.claim(a, 10, true), Claim::Decided(Action::Drop));
        assert_eq!(seen.claim(a, 11, true), Claim::Decided(Action::Drop));
        for n in 2..1000 {
            let key = seen.key(Stem(n), "hi");
            assert_eq!(seen.claim(key, 10, true), Claim::Mine);
            seen.decide(key, Action::Allow);
        }
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
