//! Messages already judged, across every session: a carbon copy (XEP-0280)
//! or a second delivery of a message the gateway has judged gets the same
//! verdict without being judged, archived or counted again.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::event::Action;

pub struct SeenMessages {
    inner: Mutex<Inner>,
    capacity: usize,
}

#[derive(Default)]
struct Inner {
    verdicts: HashMap<String, Action>,
    order: VecDeque<String>,
}

impl SeenMessages {
    /// Remembers the last `capacity` messages; older ones are forgotten
    /// (a carbon arrives within moments of its original).
    pub fn new(capacity: usize) -> Self {
        SeenMessages {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
        }
    }

    pub fn get(&self, key: &str) -> Option<Action> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.verdicts.get(key).cloned()
    }

    pub fn remember(&self, key: String, action: Action) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.verdicts.insert(key.clone(), action).is_none() {
            inner.order.push_back(key);
            if inner.order.len() > self.capacity
                && let Some(old) = inner.order.pop_front()
            {
                inner.verdicts.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_verdicts_up_to_capacity() {
        let seen = SeenMessages::new(2);
        seen.remember("a".into(), Action::Drop);
        seen.remember("b".into(), Action::Allow);
        assert_eq!(seen.get("a"), Some(Action::Drop));
        seen.remember("c".into(), Action::Allow);
        assert_eq!(seen.get("a"), None);
        assert_eq!(seen.get("c"), Some(Action::Allow));
    }
}
