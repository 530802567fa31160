//! Typed calls to the host capabilities. On wasm they call the component's
//! imports; on native targets they call the [`crate::testing`] host, so
//! plugin logic runs under `cargo test`.
//!
//! A plugin's component imports only the interfaces it calls, and the
//! operator must grant each one.

macro_rules! host_call {
    ($wasm:expr, $native:expr) => {{
        #[cfg(target_arch = "wasm32")]
        {
            $wasm
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            $native
        }
    }};
}

/// Log lines in the host's structured log, tagged with the plugin's name.
pub mod log {
    use crate::Level;

    pub fn log(level: Level, message: &str) {
        host_call!(
            crate::bindings::host::log::log(level, message),
            crate::testing::with_host(|h| h.logs.push((level, message.to_owned())))
        )
    }
    pub fn trace(message: &str) {
        log(Level::Trace, message)
    }
    pub fn debug(message: &str) {
        log(Level::Debug, message)
    }
    pub fn info(message: &str) {
        log(Level::Info, message)
    }
    pub fn warn(message: &str) {
        log(Level::Warn, message)
    }
    pub fn error(message: &str) {
        log(Level::Error, message)
    }
}

/// Wall and monotonic time.
pub mod clock {
    /// Milliseconds since the Unix epoch.
    pub fn now_ms() -> u64 {
        host_call!(
            crate::bindings::host::clock::now_ms(),
            crate::testing::with_host(|h| h.now_ms)
        )
    }

    /// Nanoseconds on a monotonic clock shared by all instances.
    pub fn monotonic_ns() -> u64 {
        host_call!(
            crate::bindings::host::clock::monotonic_ns(),
            crate::testing::with_host(|h| h.now_ms.saturating_mul(1_000_000))
        )
    }
}

/// Read settings after `init` (the `config` capability). Most plugins only
/// need the [`crate::Config`] given to `init`.
pub mod settings {
    /// A setting as JSON text.
    pub fn get(key: &str) -> Option<String> {
        host_call!(
            crate::bindings::host::config::get(key),
            crate::testing::with_host(|h| h.config.get(key).map(|v| v.to_string()))
        )
    }

    /// A string setting, unquoted.
    pub fn get_string(key: &str) -> Option<String> {
        host_call!(
            crate::bindings::host::config::get_string(key),
            crate::testing::with_host(|h| h
                .config
                .get(key)
                .and_then(|v| v.as_str())
                .map(str::to_owned))
        )
    }
}

/// Key-value state private to the plugin, shared by all its instances.
pub mod kv {
    use crate::KvError;

    pub fn get(key: &str) -> Result<Option<Vec<u8>>, KvError> {
        host_call!(
            crate::bindings::host::kv::get(key),
            crate::testing::with_host(|h| Ok(h.kv_get(key)))
        )
    }

    /// Sets `key`; with `ttl_ms` it expires after that many milliseconds.
    pub fn set(key: &str, value: &[u8], ttl_ms: Option<u64>) -> Result<(), KvError> {
        host_call!(
            crate::bindings::host::kv::set(key, value, ttl_ms),
            crate::testing::with_host(|h| {
                h.kv_set(key, value.to_vec(), ttl_ms);
                Ok(())
            })
        )
    }

    pub fn delete(key: &str) -> Result<bool, KvError> {
        host_call!(
            crate::bindings::host::kv::delete(key),
            crate::testing::with_host(|h| Ok(h.kv.remove(key).is_some()))
        )
    }

    /// Atomically adds `delta` to a decimal counter (missing counts as 0).
    pub fn increment(key: &str, delta: i64) -> Result<i64, KvError> {
        host_call!(
            crate::bindings::host::kv::increment(key, delta),
            crate::testing::with_host(|h| h.kv_increment(key, delta))
        )
    }

    /// Sets `key` to `new` only if it holds `expected` (`None`: absent).
    pub fn compare_and_swap(
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, KvError> {
        host_call!(
            crate::bindings::host::kv::compare_and_swap(key, expected, new),
            crate::testing::with_host(|h| {
                if h.kv_get(key).as_deref() != expected {
                    return Ok(false);
                }
                h.kv_set(key, new.to_vec(), None);
                Ok(true)
            })
        )
    }
}

/// The compliance archive; `append` returns once the record is durable.
pub mod archive {
    use crate::Event;

    /// Archives the event being judged, as the host has it, with the
    /// chain's final verdict when called from `observe`. You choose what to
    /// archive and how to annotate it; the record itself is the host's.
    /// Returns the record's number.
    pub fn append(event: &Event<'_>, annotations: &[(String, String)]) -> Result<u64, String> {
        host_call!(
            match event.view() {
                Some(view) => crate::bindings::host::archive::append(view, annotations),
                None => Err("archive::append needs the event being judged".to_string()),
            },
            crate::testing::with_host(|h| {
                let record = event
                    .record()
                    .ok_or("archive::append needs the event being judged")?;
                h.archive.push(crate::testing::ArchivedRecord {
                    event: record.clone(),
                    verdict: h.observing.clone(),
                    annotations: annotations.to_vec(),
                });
                Ok(h.archive.len() as u64)
            })
        )
    }
}

/// Counters and histograms the plugin defines. Names are `[a-z_][a-z0-9_]*`.
pub mod metrics {
    pub fn counter_add(name: &str, delta: u64) {
        host_call!(
            crate::bindings::host::metrics::counter_add(name, delta),
            crate::testing::with_host(|h| *h.counters.entry(name.to_owned()).or_default() += delta)
        )
    }

    pub fn histogram_observe(name: &str, value: f64) {
        host_call!(
            crate::bindings::host::metrics::histogram_observe(name, value),
            crate::testing::with_host(|h| h
                .histograms
                .entry(name.to_owned())
                .or_default()
                .push(value))
        )
    }
}
