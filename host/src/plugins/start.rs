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
        let archive = match &config.archive {
            Some(a) => Some(Arc::new(
                ArchiveWriter::open(a, metrics.host.clone()).map_err(|source| {
                    RuntimeError::Archive {
                        path: a.path.display().to_string(),
                        source,
                    }
                })?,
            )),
            None => None,
        };
        Ok(SharedCapabilities {
            kv: Arc::new(KvStore::new(config.kv.clone())),
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
