//! Contract 0.1's capability imports, answered by the same per-instance
//! halves as 0.2's: each call converts its few types and delegates, so a
//! 0.1 plugin's grants, limits and archive records are exactly a 0.2
//! plugin's.

use wasmtime::component::Resource;

use super::archive::ArchiveCtx;
use super::clock::ClockInstance;
use super::config::ConfigInstance;
use super::kv::KvInstance;
use super::log::LogInstance;
use super::metrics::MetricsInstance;
use crate::contract::v0_1::{archive, clock, config, kv, log, metrics};
use crate::contract::view::EventView;
use crate::contract::{self as v0_2};

impl log::Host for LogInstance {
    fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            log::Level::Trace => v0_2::log::Level::Trace,
            log::Level::Debug => v0_2::log::Level::Debug,
            log::Level::Info => v0_2::log::Level::Info,
            log::Level::Warn => v0_2::log::Level::Warn,
            log::Level::Error => v0_2::log::Level::Error,
        };
        v0_2::log::Host::log(self, level, message)
    }
}

impl clock::Host for ClockInstance {
    fn now_ms(&mut self) -> wasmtime::Result<u64> {
        v0_2::clock::Host::now_ms(self)
    }

    fn monotonic_ns(&mut self) -> wasmtime::Result<u64> {
        v0_2::clock::Host::monotonic_ns(self)
    }
}

impl config::Host for ConfigInstance {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        v0_2::config::Host::get(self, key)
    }

    fn get_string(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        v0_2::config::Host::get_string(self, key)
    }

    fn all(&mut self) -> wasmtime::Result<String> {
        v0_2::config::Host::all(self)
    }
}

fn kv_error(e: v0_2::kv::KvError) -> kv::KvError {
    match e {
        v0_2::kv::KvError::QuotaExceeded(m) => kv::KvError::QuotaExceeded(m),
        v0_2::kv::KvError::TooLarge(m) => kv::KvError::TooLarge(m),
        v0_2::kv::KvError::Store(m) => kv::KvError::Store(m),
    }
}

impl kv::Host for KvInstance {
    fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, kv::KvError>> {
        Ok(v0_2::kv::Host::get(self, key)?.map_err(kv_error))
    }

    fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> wasmtime::Result<Result<(), kv::KvError>> {
        Ok(v0_2::kv::Host::set(self, key, value, ttl_ms)?.map_err(kv_error))
    }

    fn delete(&mut self, key: String) -> wasmtime::Result<Result<bool, kv::KvError>> {
        Ok(v0_2::kv::Host::delete(self, key)?.map_err(kv_error))
    }

    fn increment(&mut self, key: String, delta: i64) -> wasmtime::Result<Result<i64, kv::KvError>> {
        Ok(v0_2::kv::Host::increment(self, key, delta)?.map_err(kv_error))
    }

    fn compare_and_swap(
        &mut self,
        key: String,
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
    ) -> wasmtime::Result<Result<bool, kv::KvError>> {
        Ok(v0_2::kv::Host::compare_and_swap(self, key, expected, new)?.map_err(kv_error))
    }
}

impl archive::Host for ArchiveCtx<'_> {
    fn append(
        &mut self,
        event: Resource<EventView>,
        annotations: Vec<(String, String)>,
    ) -> wasmtime::Result<Result<u64, String>> {
        v0_2::archive::Host::append(self, event, annotations)
    }
}

impl metrics::Host for MetricsInstance {
    fn counter_add(&mut self, name: String, delta: u64) -> wasmtime::Result<()> {
        v0_2::metrics::Host::counter_add(self, name, delta)
    }

    fn histogram_observe(&mut self, name: String, value: f64) -> wasmtime::Result<()> {
        v0_2::metrics::Host::histogram_observe(self, name, value)
    }
}
