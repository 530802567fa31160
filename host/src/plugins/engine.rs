//! The one `Engine` per process, the `Linker` filled once with WASI
//! (deny-all) and every capability, the compiled-artifact cache, and the
//! epoch ticker that enforces deadlines.
//!
//! Costs: compiling a component takes milliseconds (Rust) to seconds
//! (Python, JavaScript); loading it from the cache is a file read plus a
//! hash check. Instantiation from an `InstancePre` in the pooling allocator
//! with copy-on-write memory images is tens of microseconds.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::instance::{EPOCH_TICK, HostState};
use crate::capabilities::SharedCapabilities;
use crate::capabilities::archive::{ArchiveCtx, ArchiveData};
use crate::capabilities::bridge::{BridgeCtx, BridgeData};
use crate::capabilities::matching::{MatchCtx, MatchData};
use crate::config::RuntimeConfig;
use crate::contract as wit;
use crate::signing::SigningPolicy;

/// Adds one contract version's interfaces to a linker: each capability
/// projected from the store's state, as both versions' traits are
/// implemented on the same per-instance halves.
macro_rules! link_contract {
    ($linker:expr, $c:path) => {{
        use $c as c;
        c::types::add_to_linker::<_, HasSelf<HostState>>(&mut $linker, |s| s)?;
        c::log::add_to_linker::<_, HasSelf<_>>(&mut $linker, |s: &mut HostState| &mut s.caps.log)?;
        c::clock::add_to_linker::<_, HasSelf<_>>(&mut $linker, |s: &mut HostState| {
            &mut s.caps.clock
        })?;
        c::config::add_to_linker::<_, HasSelf<_>>(&mut $linker, |s: &mut HostState| {
            &mut s.caps.config
        })?;
        c::kv::add_to_linker::<_, HasSelf<_>>(&mut $linker, |s: &mut HostState| &mut s.caps.kv)?;
        c::archive::add_to_linker::<_, ArchiveData>(&mut $linker, |s: &mut HostState| {
            ArchiveCtx {
                archive: &mut s.caps.archive,
                view: &s.view,
            }
        })?;
        c::metrics::add_to_linker::<_, HasSelf<_>>(&mut $linker, |s: &mut HostState| {
            &mut s.caps.metrics
        })?;
    }};
}

/// Hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    crate::util::hex::encode(&Sha256::digest(bytes))
}

/// Where a compiled component came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompileSource {
    Compiled,
    Cache,
}

/// The plugin runtime's shared machinery. Build one per process.
pub struct PluginEngine {
    engine: Engine,
    linker: Linker<HostState>,
    pub(crate) shared: SharedCapabilities,
    pub(crate) runtime: RuntimeConfig,
    // Read at load only; a reload may replace it.
    signing: std::sync::RwLock<Arc<SigningPolicy>>,
    cache_key: String,
    _ticker: EpochTicker,
}

impl PluginEngine {
    /// # Errors
    /// The engine configuration is rejected (e.g. the pool cannot reserve
    /// its address space) or linking the host interfaces fails.
    pub fn new(runtime: &RuntimeConfig, shared: SharedCapabilities) -> wasmtime::Result<Self> {
        let mut pool = PoolingAllocationConfig::default();
        let n = runtime.max_instances;
        // Per component instance: a Rust plugin has 3 core instances (main,
        // shim, fixups), 1 memory and 2 tables. Language runtimes link more
        // modules into one memory: componentize-js 4 core instances,
        // componentize-py 14. Room for 16 each keeps `max_instances` true
        // for every language (slots are address space until used).
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(16))
            .total_memories(n)
            .total_tables(n.saturating_mul(4))
            .max_memory_size((runtime.max_plugin_memory_mib as usize) << 20);
        let mut config = wasmtime::Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .parallel_compilation(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        super::wasi::link_bounded_poll(&mut linker, HostState::bounded_poll)?;
        link_contract!(linker, wit);
        link_contract!(linker, wit::v0_1);
        // Since 0.2.1; 0.1 has no bridge.
        wit::bridge::add_to_linker::<_, BridgeData>(&mut linker, |s: &mut HostState| BridgeCtx {
            bridge: &mut s.caps.bridge,
            table: &mut s.table,
            view: &s.view,
        })?;
        // Since 0.2.2.
        wit::match_::add_to_linker::<_, MatchData>(&mut linker, |s: &mut HostState| MatchCtx {
            matching: &mut s.caps.matching,
            table: &mut s.table,
            view: &s.view,
        })?;

        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let cache_key = format!("{:016x}", h.finish());

        Ok(PluginEngine {
            _ticker: EpochTicker::start(engine.clone())?,
            engine,
            linker,
            shared,
            runtime: runtime.clone(),
            signing: Default::default(),
            cache_key,
        })
    }

    /// Sets which plugin signatures are trusted and whether they are
    /// required; applies to plugins loaded from now on.
    pub fn with_signing(self, policy: SigningPolicy) -> Self {
        self.set_signing(policy);
        self
    }

    pub fn set_signing(&self, policy: SigningPolicy) {
        *self.signing.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(policy);
    }

    pub fn signing(&self) -> Arc<SigningPolicy> {
        self.signing
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn linker(&self) -> &Linker<HostState> {
        &self.linker
    }

    pub fn shared(&self) -> &SharedCapabilities {
        &self.shared
    }

    fn cache_path(&self, sha256: &str) -> Option<PathBuf> {
        let dir = &self.runtime.cache_dir;
        (!dir.as_os_str().is_empty())
            .then(|| dir.join(format!("{sha256}-{}.cwasm", self.cache_key)))
    }

    /// Compiles `bytes` (whose hash is `sha256`), or loads the artifact a
    /// previous run cached for this hash and this engine.
    ///
    /// # Errors
    /// The bytes are not a valid component. Cache problems are logged and
    /// fall back to compiling.
    pub fn compile(
        &self,
        bytes: &[u8],
        sha256: &str,
    ) -> wasmtime::Result<(Component, CompileSource)> {
        let cache = self.cache_path(sha256);
        if let Some(component) = cache.as_deref().and_then(|p| self.load_cached(p)) {
            return Ok((component, CompileSource::Cache));
        }
        let component = Component::new(&self.engine, bytes)?;
        if let Some(path) = &cache
            && let Err(e) = store_cached(path, &component)
        {
            tracing::warn!(path = %path.display(), error = %e, "could not write compiled-artifact cache");
        }
        Ok((component, CompileSource::Compiled))
    }

    fn load_cached(&self, path: &Path) -> Option<Component> {
        let bytes = std::fs::read(path).ok()?;
        let expected = std::fs::read_to_string(checksum_path(path)).ok()?;
        if sha256_hex(&bytes) != expected.trim() {
            tracing::warn!(path = %path.display(), "cached artifact does not match its checksum; recompiling");
            return None;
        }
        // SAFETY: the artifact was written by `store_cached` from a
        // component this engine compiled, and its checksum matches, so it
        // is not truncated or altered since. The cache directory must be
        // writable only by the imgate user (see docs/operators.md).
        match unsafe { Component::deserialize(&self.engine, &bytes) } {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cached artifact unusable; recompiling");
                None
            }
        }
    }
}

fn checksum_path(path: &Path) -> PathBuf {
    path.with_extension("cwasm.sha256")
}

fn store_cached(path: &Path, component: &Component) -> wasmtime::Result<()> {
    let bytes = component.serialize()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Write then rename, so a crash never leaves a half-written artifact
    // under the final name; the temp name is unique per writer, since
    // plugins load in parallel (and processes may share a cache).
    static WRITER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITER.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    std::fs::write(&tmp, &bytes)?;
    let tmp_sum = tmp.with_extension("sum");
    std::fs::write(&tmp_sum, sha256_hex(&bytes))?;
    std::fs::rename(&tmp_sum, checksum_path(path))?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Advances the engine's epoch every [`EPOCH_TICK`]; stops when dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("imgate-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })?;
        Ok(EpochTicker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_a_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
