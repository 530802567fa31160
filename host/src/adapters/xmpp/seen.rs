//! Messages already judged, across every session: a carbon copy (XEP-0280)
//! or a second delivery of a message the gateway has judged gets the same
//! verdict without being judged, archived or counted again.
//!
//! The original and its carbon reach two sessions at about the same time,
//! so a session first *claims* a message; another session that finds it
//! claimed waits (woken the moment the verdict is in, at most briefly)
//! rather than judging it twice.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::events::message_key;
use crate::event::Action;
use crate::util::blocking::wait_off_worker;

enum Entry {
    Pending,
    Decided(Action),
}

/// What a session should do with a message.
#[derive(Debug, PartialEq)]
pub enum Claim {
    /// Judge it, then [`SeenMessages::remember`] the verdict.
    Mine,
    /// Already judged: apply this.
    Decided(Action),
}

pub struct SeenMessages {
    inner: Mutex<Inner>,
    /// Signalled whenever a verdict is remembered.
    decided: Condvar,
    capacity: usize,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    order: VecDeque<String>,
}

/// How long a session waits for another one's verdict before judging the
/// message itself; a chain call is bounded by its plugins' deadlines.
const WAIT: Duration = Duration::from_secs(2);

impl SeenMessages {
    /// Remembers the last `capacity` messages; older ones are forgotten
    /// (a carbon arrives within moments of its original).
    pub fn new(capacity: usize) -> Self {
        SeenMessages {
            inner: Mutex::new(Inner::default()),
            decided: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn insert(&self, inner: &mut Inner, key: &str, entry: Entry) {
        if inner.entries.insert(key.to_owned(), entry).is_none() {
            inner.order.push_back(key.to_owned());
            if inner.order.len() > self.capacity
                && let Some(old) = inner.order.pop_front()
            {
                inner.entries.remove(&old);
            }
        }
    }

    pub fn claim(&self, key: &str) -> Claim {
        let deadline = Instant::now() + WAIT;
        let mut inner = self.lock();
        loop {
            match inner.entries.get(key) {
                None => {
                    self.insert(&mut inner, key, Entry::Pending);
                    return Claim::Mine;
                }
                Some(Entry::Decided(action)) => return Claim::Decided(action.clone()),
                Some(Entry::Pending) => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
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

    /// Records the verdict for `key` (claimed or not) and wakes the
    /// sessions waiting for it.
    pub fn remember(&self, key: &str, action: Action) {
        let mut inner = self.lock();
        self.insert(&mut inner, key, Entry::Decided(action));
        drop(inner);
        self.decided.notify_all();
    }

    /// The verdict for the message `key` names: another session's, or
    /// `judge`'s, remembered for the others. No key: just `judge`.
    pub fn judge_once(&self, key: Option<&str>, judge: impl FnOnce() -> Action) -> Action {
        let Some(key) = key else {
            return judge();
        };
        if let Claim::Decided(action) = self.claim(key) {
            return action;
        }
        let action = judge();
        self.remember(key, action.clone());
        // The server's carbon of a rewritten message carries the new body:
        // it is the same message.
        if let (Action::Rewrite(body), Some((stem, _))) = (&action, key.rsplit_once('|')) {
            self.remember(&message_key(stem, body), action.clone());
        }
        action
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_first_claim_judges_and_later_ones_reuse_the_verdict() {
        let seen = SeenMessages::new(2);
        assert_eq!(seen.claim("a"), Claim::Mine);
        seen.remember("a", Action::Drop);
        assert_eq!(seen.claim("a"), Claim::Decided(Action::Drop));
        assert_eq!(seen.claim("b"), Claim::Mine);
        assert_eq!(seen.claim("c"), Claim::Mine);
        assert_eq!(seen.claim("a"), Claim::Mine, "forgotten beyond capacity");
    }

    #[test]
    fn a_concurrent_claim_waits_for_the_verdict() {
        let seen = Arc::new(SeenMessages::new(16));
        assert_eq!(seen.claim("k"), Claim::Mine);
        let other = {
            let seen = seen.clone();
            std::thread::spawn(move || seen.claim("k"))
        };
        std::thread::sleep(Duration::from_millis(20));
        let at = Instant::now();
        seen.remember("k", Action::Block("no".into()));
        assert_eq!(
            other.join().unwrap(),
            Claim::Decided(Action::Block("no".into()))
        );
        // Woken by the verdict, not by polling or the 2 s limit.
        assert!(at.elapsed() < Duration::from_millis(500));
    }

    #[test]
    fn judge_once_judges_each_message_once() {
        let seen = SeenMessages::new(16);
        let mut calls = 0;
        let key = message_key("out|a|b|1", "hi");
        let first = seen.judge_once(Some(&key), || {
            calls += 1;
            Action::Rewrite("HI".into())
        });
        let again = seen.judge_once(Some(&key), || {
            calls += 1;
            Action::Allow
        });
        // The carbon with the rewritten body is the same message.
        let carbon = seen.judge_once(Some(&message_key("out|a|b|1", "HI")), || {
            calls += 1;
            Action::Allow
        });
        assert_eq!(calls, 1);
        assert_eq!(first, again);
        assert_eq!(carbon, first);
        assert_eq!(seen.judge_once(None, || Action::Drop), Action::Drop);
    }
}
