//! What the Matrix adapter remembers, each within a bound: whose an access
//! token is, and the verdict on each transaction a client sent.
//!
//! Tokens are kept by their SHA-256, never as they are.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::adapters::Judged;
use crate::adapters::review::Door;
use crate::event::{Action, Session};

/// A map that forgets its oldest entry past `capacity`.
pub struct Bounded<K, V> {
    inner: Mutex<(HashMap<K, V>, VecDeque<K>)>,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V: Clone> Bounded<K, V> {
    pub fn new(capacity: usize) -> Self {
        Bounded {
            inner: Mutex::default(),
            capacity: capacity.max(1),
        }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.0.get(key).cloned()
    }

    /// Keeps `value` under `key`, unless something already is: returns
    /// what is kept.
    pub fn keep(&self, key: K, value: V) -> V {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (map, order) = &mut *inner;
        if let Some(v) = map.get(&key) {
            return v.clone();
        }
        while map.len() >= self.capacity {
            let Some(oldest) = order.pop_front() else {
                break;
            };
            map.remove(&oldest);
        }
        order.push_back(key.clone());
        map.insert(key, value.clone());
        value
    }

    pub fn forget(&self, key: &K) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (map, order) = &mut *inner;
        if map.remove(key).is_some() {
            order.retain(|k| k != key);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).0.len()
    }
}

/// A signed-in user's session, with its door for reviewers' rulings
/// (closed when the token is forgotten).
pub struct Known {
    pub session: Arc<Session>,
    pub _door: Door,
}

/// What a token is known as.
#[derive(Clone)]
pub enum Owner {
    /// Its user's session.
    Known(Arc<Known>),
    /// The session-start was refused: every request with it is.
    Refused(String),
}

/// The key of an access token, or of a transaction (token and path).
pub type Key = [u8; 32];

pub fn key_of(parts: &[&str]) -> Key {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    h.finalize().into()
}

/// The verdict on a transaction, as a retry is answered.
#[derive(Clone, Debug)]
pub struct Decided {
    pub action: Action,
    pub removed_attachments: Vec<String>,
}

impl From<&Judged> for Decided {
    fn from(j: &Judged) -> Self {
        Decided {
            action: j.action.clone(),
            removed_attachments: j.removed_attachments.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_is_forgotten_past_the_bound_and_the_first_value_stays() {
        let b = Bounded::new(2);
        assert_eq!(b.keep(1, "a"), "a");
        assert_eq!(b.keep(1, "b"), "a");
        b.keep(2, "c");
        b.keep(3, "d");
        assert_eq!((b.get(&1), b.get(&3), b.len()), (None, Some("d"), 2));
        b.forget(&3);
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn keys_do_not_run_parts_together() {
        assert_ne!(key_of(&["ab", "c"]), key_of(&["a", "bc"]));
    }
}
