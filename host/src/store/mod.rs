//! Where the gateway keeps what must outlive it or be shared with other
//! gateways: the archive (records, purges, holds, held messages, the
//! bridge's id maps) and, on PostgreSQL, the plugins' kv.
//!
//! Owns: the `[store]` section, choosing a backend from its URL, and the
//! PostgreSQL connection pool with its schema migrations. Must not touch:
//! what the tables mean; `archive` and `capabilities::kv` own their SQL.
//!
//! - SQLite (`sqlite:///path`, or `[archive] path`): one file, the
//!   embedded default; kv stays in the gateway's memory.
//! - PostgreSQL (`postgres://…`): shared by any number of gateways; one
//!   hash chain, one kv, one id map.
//!
//! - `postgres`: the pool, run from synchronous code, its health, and
//!   the versioned schema.

pub mod postgres;

use std::path::PathBuf;

use serde::Deserialize;

pub use postgres::Postgres;

/// `[store]` in the config file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite:///var/lib/imgate/archive.db` or `postgres://user@host/db`.
    pub url: String,
    /// Connections each gateway keeps to PostgreSQL at most.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// How long one store operation may take (connecting included)
    /// before it fails; a database that does not answer is down.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Seconds between sweeps of expired kv keys (PostgreSQL).
    #[serde(default = "default_sweep_s")]
    pub kv_sweep_s: u64,
}

fn default_pool_size() -> usize {
    16
}

fn default_timeout_ms() -> u64 {
    2_000
}

fn default_sweep_s() -> u64 {
    60
}

impl StoreConfig {
    /// A store at `url` with every other setting at its default.
    pub fn at(url: impl Into<String>) -> StoreConfig {
        StoreConfig {
            url: url.into(),
            pool_size: default_pool_size(),
            timeout_ms: default_timeout_ms(),
            kv_sweep_s: default_sweep_s(),
        }
    }

    /// The SQLite file an `[archive] path` names.
    pub fn sqlite(path: &std::path::Path) -> StoreConfig {
        StoreConfig::at(format!("sqlite://{}", path.display()))
    }

    /// Which backend, and where.
    ///
    /// # Errors
    /// The URL names neither backend, or a relative SQLite path.
    pub fn location(&self) -> Result<Location, StoreError> {
        Location::parse(&self.url)
    }

    /// What is wrong with the section beyond its types.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Err(e) = self.location() {
            out.push(e.to_string());
        }
        if self.pool_size == 0 {
            out.push("pool_size must be at least 1".into());
        }
        if self.timeout_ms == 0 {
            out.push("timeout_ms must be at least 1".into());
        }
        if self.kv_sweep_s == 0 {
            out.push("kv_sweep_s must be at least 1".into());
        }
        out
    }

    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.timeout_ms)
    }
}

/// A backend and where it is.
#[derive(Clone, Debug, PartialEq)]
pub enum Location {
    Sqlite(PathBuf),
    /// The connection URL as given (`postgres://` or `postgresql://`).
    Postgres(String),
}

impl Location {
    /// Parses a store URL; a bare path is a SQLite file.
    ///
    /// # Errors
    /// An unknown scheme.
    pub fn parse(url: &str) -> Result<Location, StoreError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(StoreError::Url(format!(
                    "`{url}` names no file: write sqlite:///absolute/path.db"
                )));
            }
            return Ok(Location::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Location::Postgres(url.to_owned()));
        }
        match url.split_once("://") {
            Some((scheme, _)) => Err(StoreError::Url(format!(
                "unknown store `{scheme}://`: use sqlite:///path or postgres://…"
            ))),
            None => Ok(Location::Sqlite(PathBuf::from(url))),
        }
    }

    /// The location for messages: a SQLite path, or the PostgreSQL URL
    /// without its password.
    pub fn describe(&self) -> String {
        match self {
            Location::Sqlite(p) => p.display().to_string(),
            Location::Postgres(url) => postgres::redact(url),
        }
    }
}

/// Why the store could not be reached or used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("[store] url: {0}")]
    Url(String),
    #[error("PostgreSQL: {0}")]
    Postgres(String),
    #[error("the store did not answer within {0:?}")]
    Timeout(std::time::Duration),
    #[error(
        "the store's schema is version {found}, newer than this imgate knows ({known}): upgrade imgate before pointing it at this store"
    )]
    SchemaTooNew { found: i64, known: i64 },
    #[error("cannot start the store's I/O thread: {0}")]
    Thread(std::io::Error),
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Postgres(postgres::describe(&e))
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        use deadpool_postgres::PoolError;
        match e {
            PoolError::Backend(e) => e.into(),
            PoolError::Timeout(_) => {
                StoreError::Postgres("no connection could be made in time".into())
            }
            other => StoreError::Postgres(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_backend() {
        assert_eq!(
            Location::parse("sqlite:///var/a.db").unwrap(),
            Location::Sqlite("/var/a.db".into())
        );
        assert_eq!(
            Location::parse("postgresql://u:secret@h/db")
                .unwrap()
                .describe(),
            "postgresql://u:***@h/db"
        );
        assert!(Location::parse("mysql://h/db").is_err());
        assert!(Location::parse("sqlite://").is_err());
        let mut c = StoreConfig::at("postgres://h/db");
        c.pool_size = 0;
        assert_eq!(c.problems(), vec!["pool_size must be at least 1"]);
    }
}
