//! Builds a running plugin runtime from a config: shared capabilities,
//! engine, and the loaded chain.

use std::sync::Arc;

use crate::capabilities::SharedCapabilities;
use crate::capabilities::archive::ArchiveWriter;
use crate::capabilities::kv::KvStore;
use crate::capabilities::metrics::MetricsRegistry;
use crate::config::{Config, PluginSpec};
use crate::plugins::{Chain, LoadError, PluginEngine};
use crate::signing::SigningPolicy;

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the archive {path}: {source}")]
    Archive {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot start the plugin engine: {0:#}")]
    Engine(anyhow::Error),
    #[error("[signing]: {}", .0.join("; "))]
    Signing(Vec<String>),
    #[error("{}", describe_plugins(.0))]
    Plugins(Vec<(PluginSpec, LoadError)>),
}

fn describe_plugins(errors: &[(PluginSpec, LoadError)]) -> String {
    let lines: Vec<String> = errors
        .iter()
        .map(|(spec, e)| format!("{}: {e}", spec.location()))
        .collect();
    lines.join("\n")
}

pub struct Runtime {
    pub engine: PluginEngine,
    pub chain: Chain,
}

impl Runtime {
    /// The shared halves of every capability, from the config.
    ///
    /// # Errors
    /// The archive file cannot be opened.
    pub fn capabilities(config: &Config) -> Result<SharedCapabilities, StartError> {
        let metrics = Arc::new(MetricsRegistry::default());
        let archive = match &config.archive {
            Some(a) => Some(Arc::new(
                ArchiveWriter::open(a, metrics.host.clone()).map_err(|source| {
                    StartError::Archive {
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
        })
    }

    /// The engine, with the config's signing policy.
    ///
    /// # Errors
    /// The engine cannot start, or a trusted key is invalid.
    pub fn engine(config: &Config, shared: SharedCapabilities) -> Result<PluginEngine, StartError> {
        let policy = SigningPolicy::from_config(&config.signing).map_err(StartError::Signing)?;
        Ok(PluginEngine::new(&config.runtime, shared)
            .map_err(StartError::Engine)?
            .with_signing(policy))
    }

    /// Starts the engine and loads every plugin in the config.
    ///
    /// # Errors
    /// See [`StartError`]; plugin errors are all collected.
    pub fn start(config: &Config) -> Result<Runtime, StartError> {
        let shared = Self::capabilities(config)?;
        let engine = Self::engine(config, shared)?;
        let chain = Chain::load(&engine, &config.plugins).map_err(StartError::Plugins)?;
        Ok(Runtime { engine, chain })
    }
}
