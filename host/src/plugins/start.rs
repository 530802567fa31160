//! Builds a running plugin runtime from a config: shared capabilities,
//! engine, and the loaded chain.

use std::sync::Arc;

use super::{Chain, PluginEngine, RuntimeError};
use crate::archive::ArchiveWriter;
use crate::capabilities::SharedCapabilities;
use crate::capabilities::kv::KvStore;
use crate::capabilities::metrics::MetricsRegistry;
use crate::config::Config;
use crate::signing::SigningPolicy;

pub struct Runtime {
    pub engine: PluginEngine,
    pub chain: Chain,
}

impl Runtime {
    /// The shared halves of every capability, from the config.
    ///
    /// # Errors
    /// The archive file cannot be opened.
    pub fn capabilities(config: &Config) -> Result<SharedCapabilities, RuntimeError> {
        let metrics = Arc::new(MetricsRegistry::default());
        let store = config.store.as_ref();
        let failed = |source| RuntimeError::Archive {
            path: store
                .and_then(|s| s.location().ok())
                .map_or_else(|| "[store]".into(), |l| l.describe()),
            source,
        };
        let archive = match (&config.archive, store) {
            (Some(a), Some(store)) => Some(Arc::new(
                ArchiveWriter::open(a, store, metrics.host.clone()).map_err(failed)?,
            )),
            _ => None,
        };
        let kv = KvStore::open(config.kv.clone(), store).map_err(|e| failed(e.into()))?;
        Ok(SharedCapabilities {
            kv: Arc::new(kv),
            archive,
            metrics,
            bridges: Arc::default(),
        })
    }

    /// The engine, with the config's signing policy.
    ///
    /// # Errors
    /// The engine cannot start, or a trusted key is invalid.
    pub fn engine(
        config: &Config,
        shared: SharedCapabilities,
    ) -> Result<PluginEngine, RuntimeError> {
        let policy = SigningPolicy::from_config(&config.signing).map_err(RuntimeError::Signing)?;
        Ok(PluginEngine::new(&config.runtime, shared)
            .map_err(RuntimeError::Engine)?
            .with_signing(policy))
    }

    /// Starts the engine and loads every plugin in the config.
    ///
    /// # Errors
    /// See [`RuntimeError`]; plugin errors are all collected.
    pub fn start(config: &Config) -> Result<Runtime, RuntimeError> {
        let shared = Self::capabilities(config)?;
        let engine = Self::engine(config, shared)?;
        let chain = Chain::load(&engine, &config.plugins)
            .map_err(RuntimeError::Plugins)?
            .with_tags_after_block(config.tags_after_block());
        Ok(Runtime { engine, chain })
    }
}
