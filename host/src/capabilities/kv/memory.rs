//! kv in the gateway's memory (no store, or SQLite): it lasts as long as
//! the process. Each namespace has its own lock, held only for one map
//! operation, so plugins never contend with each other. Expired keys are
//! dropped lazily on access and swept when a namespace reaches its quota,
//! so no background task is needed.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::KvConfig;
use crate::contract::kv::KvError;

struct Entry {
    value: Vec<u8>,
    expires: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|t| t > now)
    }
}

#[derive(Default)]
struct Map {
    entries: HashMap<String, Entry>,
    bytes: usize,
}

impl Map {
    fn get_live(&mut self, key: &str, now: Instant) -> Option<&Entry> {
        if self.entries.get(key).is_some_and(|e| !e.live(now)) {
            self.remove(key);
        }
        self.entries.get(key)
    }

    fn remove(&mut self, key: &str) -> bool {
        match self.entries.remove(key) {
            Some(e) => {
                self.bytes -= key.len() + e.value.len();
                true
            }
            None => false,
        }
    }

    fn sweep(&mut self, now: Instant) {
        let dead: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| !e.live(now))
            .map(|(k, _)| k.clone())
            .collect();
        for k in dead {
            self.remove(&k);
        }
    }
}

/// One plugin's namespace.
pub struct Memory {
    limits: KvConfig,
    map: Mutex<Map>,
}

impl Memory {
    pub fn new(limits: KvConfig) -> Self {
        Memory {
            limits,
            map: Mutex::new(Map::default()),
        }
    }

    // A poisoned lock means a panic mid-operation in this module; the map
    // itself stays consistent (every mutation is a single insert/remove),
    // so keep serving rather than fail the plugin forever.
    fn lock(&self) -> MutexGuard<'_, Map> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check_key(&self, key: &str) -> Result<(), KvError> {
        super::check_sizes(&self.limits, key, None)
    }

    fn check_value(&self, value: &[u8]) -> Result<(), KvError> {
        super::check_sizes(&self.limits, "", Some(value))
    }

    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.check_key(key)?;
        Ok(self
            .lock()
            .get_live(key, Instant::now())
            .map(|e| e.value.clone()))
    }

    pub fn set(&self, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> Result<(), KvError> {
        self.check_key(key)?;
        self.check_value(&value)?;
        let now = Instant::now();
        let mut map = self.lock();
        Self::put(
            &self.limits,
            &mut map,
            key,
            value,
            ttl.map(|t| now + t),
            now,
        )
    }

    fn put(
        limits: &KvConfig,
        map: &mut Map,
        key: &str,
        value: Vec<u8>,
        expires: Option<Instant>,
        now: Instant,
    ) -> Result<(), KvError> {
        let new = key.len() + value.len();
        if !Self::fits(limits, map, key, new) {
            map.sweep(now);
            if !Self::fits(limits, map, key, new) {
                return Err(KvError::QuotaExceeded(format!(
                    "namespace holds {} keys / {} bytes; limits are {} keys / {} bytes",
                    map.entries.len(),
                    map.bytes,
                    limits.max_keys,
                    limits.max_bytes
                )));
            }
        }
        map.bytes = map.bytes - Self::footprint(map, key) + new;
        map.entries.insert(key.to_owned(), Entry { value, expires });
        Ok(())
    }

    /// Bytes `key` and its value take now (0 when absent).
    fn footprint(map: &Map, key: &str) -> usize {
        map.entries
            .get(key)
            .map_or(0, |e| key.len() + e.value.len())
    }

    /// Whether storing `new` bytes under `key` stays within the quotas.
    fn fits(limits: &KvConfig, map: &Map, key: &str, new: usize) -> bool {
        let keys = map.entries.len() + usize::from(!map.entries.contains_key(key));
        keys <= limits.max_keys && map.bytes - Self::footprint(map, key) + new <= limits.max_bytes
    }

    pub fn delete(&self, key: &str) -> Result<bool, KvError> {
        self.check_key(key)?;
        Ok(self.lock().remove(key))
    }

    pub fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        self.check_key(key)?;
        let now = Instant::now();
        let mut map = self.lock();
        let live = map.get_live(key, now);
        let next = super::incremented(key, live.map(|e| e.value.as_slice()), delta)?;
        let expires = live.and_then(|e| e.expires);
        Self::put(
            &self.limits,
            &mut map,
            key,
            next.to_string().into_bytes(),
            expires,
            now,
        )?;
        Ok(next)
    }

    pub fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Vec<u8>,
    ) -> Result<bool, KvError> {
        self.check_key(key)?;
        self.check_value(&new)?;
        let now = Instant::now();
        let mut map = self.lock();
        let current = map.get_live(key, now);
        if current.map(|e| e.value.as_slice()) != expected {
            return Ok(false);
        }
        let expires = current.and_then(|e| e.expires);
        Self::put(&self.limits, &mut map, key, new, expires, now)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Memory {
        Memory::new(KvConfig {
            max_keys: 2,
            max_bytes: 64,
            max_key_bytes: 8,
            max_value_bytes: 32,
        })
    }

    #[test]
    fn set_get_delete_round_trip() {
        let ns = small();
        ns.set("a", b"1".to_vec(), None).unwrap();
        assert_eq!(ns.get("a").unwrap(), Some(b"1".to_vec()));
        assert!(ns.delete("a").unwrap());
        assert!(!ns.delete("a").unwrap());
        assert_eq!(ns.get("a").unwrap(), None);
    }

    #[test]
    fn quotas_and_sizes_are_enforced() {
        let ns = small();
        ns.set("a", vec![0; 4], None).unwrap();
        ns.set("b", vec![0; 4], None).unwrap();
        assert!(matches!(
            ns.set("c", vec![0; 4], None),
            Err(KvError::QuotaExceeded(_))
        ));
        // Overwriting an existing key is not a new key.
        ns.set("a", vec![1; 4], None).unwrap();
        assert!(matches!(
            ns.set("toolongkey", vec![], None),
            Err(KvError::TooLarge(_))
        ));
        assert!(matches!(
            ns.set("a", vec![0; 33], None),
            Err(KvError::TooLarge(_))
        ));
    }

    #[test]
    fn expired_keys_vanish_and_free_quota() {
        let ns = small();
        ns.set("a", b"x".to_vec(), Some(Duration::from_millis(1)))
            .unwrap();
        ns.set("b", b"x".to_vec(), None).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(ns.get("a").unwrap(), None);
        ns.set("c", b"x".to_vec(), None).unwrap();
    }

    #[test]
    fn increment_and_cas_are_atomic_per_namespace() {
        let ns = std::sync::Arc::new(Memory::new(KvConfig::default()));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let ns = ns.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        ns.increment("n", 1).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(ns.increment("n", 0).unwrap(), 4000);
        assert!(!ns.compare_and_swap("k", Some(b"x"), b"y".to_vec()).unwrap());
        assert!(ns.compare_and_swap("k", None, b"y".to_vec()).unwrap());
        assert!(ns.compare_and_swap("k", Some(b"y"), b"z".to_vec()).unwrap());
        assert_eq!(ns.get("k").unwrap(), Some(b"z".to_vec()));
        ns.set("s", b"abc".to_vec(), None).unwrap();
        assert!(matches!(ns.increment("s", 1), Err(KvError::Store(_))));
    }
}
