//! `kv`: key-value storage, one private namespace per plugin, shared by all
//! of that plugin's instances. It holds working state such as rate-limit
//! buckets and disclaimer flags.
//!
//! Where it lives follows `[store]`: on PostgreSQL it is shared by every
//! gateway and survives restarts (`postgres`); otherwise it is in this
//! process's memory (`memory`). The semantics are the same: TTLs,
//! increment, compare-and-swap and quotas per namespace.

mod memory;
mod postgres;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{Capability, NotGranted};
use crate::contract::kv::{Host, KvError};
use crate::store::{Location, Postgres, StoreConfig, StoreError};

/// Operator limits, per plugin namespace (`[kv]` in the config file).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KvConfig {
    pub max_keys: usize,
    pub max_bytes: usize,
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
}

impl Default for KvConfig {
    fn default() -> Self {
        KvConfig {
            max_keys: 100_000,
            max_bytes: 64 << 20,
            max_key_bytes: 1024,
            max_value_bytes: 1 << 20,
        }
    }
}

/// One plugin's namespace, wherever it lives.
pub enum Namespace {
    Memory(memory::Memory),
    Postgres(postgres::Shared),
}

impl Namespace {
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        match self {
            Namespace::Memory(m) => m.get(key),
            Namespace::Postgres(p) => p.get(key),
        }
    }

    pub fn set(&self, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> Result<(), KvError> {
        match self {
            Namespace::Memory(m) => m.set(key, value, ttl),
            Namespace::Postgres(p) => p.set(key, value, ttl),
        }
    }

    pub fn delete(&self, key: &str) -> Result<bool, KvError> {
        match self {
            Namespace::Memory(m) => m.delete(key),
            Namespace::Postgres(p) => p.delete(key),
        }
    }

    pub fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        match self {
            Namespace::Memory(m) => m.increment(key, delta),
            Namespace::Postgres(p) => p.increment(key, delta),
        }
    }

    pub fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Vec<u8>,
    ) -> Result<bool, KvError> {
        match self {
            Namespace::Memory(m) => m.compare_and_swap(key, expected, new),
            Namespace::Postgres(p) => p.compare_and_swap(key, expected, new),
        }
    }
}

/// Checks a key and a value against the namespace's size limits.
pub(crate) fn check_sizes(
    limits: &KvConfig,
    key: &str,
    value: Option<&[u8]>,
) -> Result<(), KvError> {
    if key.len() > limits.max_key_bytes {
        return Err(KvError::TooLarge(format!(
            "key of {} bytes exceeds {} bytes",
            key.len(),
            limits.max_key_bytes
        )));
    }
    if let Some(value) = value
        && value.len() > limits.max_value_bytes
    {
        return Err(KvError::TooLarge(format!(
            "value of {} bytes exceeds {} bytes",
            value.len(),
            limits.max_value_bytes
        )));
    }
    Ok(())
}

/// `increment`'s arithmetic, the same on both backends: the counter a
/// live value holds (absent: 0) plus `delta`.
///
/// # Errors
/// The value is not a decimal counter, or the sum overflows.
pub(crate) fn incremented(key: &str, current: Option<&[u8]>, delta: i64) -> Result<i64, KvError> {
    let n = match current {
        None => 0,
        Some(value) => std::str::from_utf8(value)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or_else(|| {
                KvError::Store(format!("key `{key}` does not hold a decimal counter"))
            })?,
    };
    n.checked_add(delta)
        .ok_or_else(|| KvError::Store(format!("counter `{key}` would overflow")))
}

/// Every plugin's namespace. Shared by the whole host.
pub struct KvStore {
    limits: KvConfig,
    backend: Backend,
}

enum Backend {
    Memory(Mutex<std::collections::HashMap<String, Arc<Namespace>>>),
    Postgres(Arc<Postgres>),
}

impl Default for KvStore {
    fn default() -> Self {
        KvStore::new(KvConfig::default())
    }
}

impl KvStore {
    /// kv in this process's memory.
    pub fn new(limits: KvConfig) -> Self {
        KvStore {
            limits,
            backend: Backend::Memory(Mutex::default()),
        }
    }

    /// kv where `store` says: PostgreSQL (shared, with a sweep of expired
    /// keys every `kv_sweep_s`), else memory.
    ///
    /// # Errors
    /// PostgreSQL cannot be reached, or its schema is too new.
    pub fn open(limits: KvConfig, store: Option<&StoreConfig>) -> Result<Self, StoreError> {
        let Some(store) = store else {
            return Ok(KvStore::new(limits));
        };
        match store.location()? {
            Location::Sqlite(_) => Ok(KvStore::new(limits)),
            Location::Postgres(url) => {
                let pg = Postgres::shared(&url, store, true)?;
                postgres::sweep_every(&pg, Duration::from_secs(store.kv_sweep_s));
                Ok(KvStore {
                    limits,
                    backend: Backend::Postgres(pg),
                })
            }
        }
    }

    /// The namespace for `plugin`, created on first use. A reloaded plugin
    /// with the same name finds its state again.
    pub fn namespace(&self, plugin: &str) -> Arc<Namespace> {
        match &self.backend {
            Backend::Memory(all) => {
                let mut all = all.lock().unwrap_or_else(|p| p.into_inner());
                all.entry(plugin.to_owned())
                    .or_insert_with(|| {
                        Arc::new(Namespace::Memory(memory::Memory::new(self.limits.clone())))
                    })
                    .clone()
            }
            Backend::Postgres(pg) => Arc::new(Namespace::Postgres(postgres::Shared::new(
                pg.clone(),
                plugin,
                self.limits.clone(),
            ))),
        }
    }
}

pub struct KvInstance {
    plugin: Arc<str>,
    namespace: Option<Arc<Namespace>>,
    /// Time this call spent waiting for the store (not the plugin's CPU).
    pub waited: Duration,
}

impl KvInstance {
    pub fn new(plugin: Arc<str>, namespace: Option<Arc<Namespace>>) -> Self {
        KvInstance {
            plugin,
            namespace,
            waited: Duration::ZERO,
        }
    }

    /// Runs `op` on the granted namespace, timing the wait.
    fn with<R>(&mut self, op: impl FnOnce(&Namespace) -> R) -> wasmtime::Result<R> {
        let ns = NotGranted::require(self.namespace.as_deref(), &self.plugin, Capability::Kv)?;
        let started = Instant::now();
        let out = op(ns);
        if matches!(ns, Namespace::Postgres(_)) {
            self.waited += started.elapsed();
        }
        Ok(out)
    }
}

impl Host for KvInstance {
    fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, KvError>> {
        self.with(|ns| ns.get(&key))
    }

    fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> wasmtime::Result<Result<(), KvError>> {
        self.with(|ns| ns.set(&key, value, ttl_ms.map(Duration::from_millis)))
    }

    fn delete(&mut self, key: String) -> wasmtime::Result<Result<bool, KvError>> {
        self.with(|ns| ns.delete(&key))
    }

    fn increment(&mut self, key: String, delta: i64) -> wasmtime::Result<Result<i64, KvError>> {
        self.with(|ns| ns.increment(&key, delta))
    }

    fn compare_and_swap(
        &mut self,
        key: String,
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
    ) -> wasmtime::Result<Result<bool, KvError>> {
        self.with(|ns| ns.compare_and_swap(&key, expected.as_deref(), new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_private_per_plugin() {
        let store = KvStore::default();
        store.namespace("a").set("k", b"1".to_vec(), None).unwrap();
        assert_eq!(store.namespace("b").get("k").unwrap(), None);
        assert_eq!(store.namespace("a").get("k").unwrap(), Some(b"1".to_vec()));
    }

    #[test]
    fn ungranted_kv_is_refused() {
        let mut kv = KvInstance::new("p".into(), None);
        assert!(kv.get("k".into()).is_err());
    }
}
