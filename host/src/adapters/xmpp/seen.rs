//! Messages already judged, across every session: a carbon copy (XEP-0280)
//! or a second delivery of a message the gateway has judged gets the same
//! verdict without being judged, archived or counted again.
//!
//! The original and its carbon reach two sessions at about the same time,
//! so a session first *claims* a message; another session that finds it
//! claimed waits (briefly) for the verdict rather than judging it twice.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::event::Action;

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
        loop {
            {
                let mut inner = self.lock();
                match inner.entries.get(key) {
                    None => {
                        self.insert(&mut inner, key, Entry::Pending);
                        return Claim::Mine;
                    }
                    Some(Entry::Decided(action)) => return Claim::Decided(action.clone()),
                    Some(Entry::Pending) if Instant::now() > deadline => return Claim::Mine,
                    Some(Entry::Pending) => {}
                }
            }
            crate::capabilities::wait_off_worker(|| std::thread::sleep(Duration::from_millis(1)));
        }
    }

    /// Records the verdict for `key` (claimed or not).
    pub fn remember(&self, key: &str, action: Action) {
        let mut inner = self.lock();
        self.insert(&mut inner, key, Entry::Decided(action));
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
        seen.remember("k", Action::Block("no".into()));
        assert_eq!(
            other.join().unwrap(),
            Claim::Decided(Action::Block("no".into()))
        );
    }
}
