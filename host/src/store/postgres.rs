//! PostgreSQL for the store: a pool of `tokio-postgres` connections driven
//! by a small runtime of its own, so the synchronous parts of the host (the
//! archive's writer thread, a plugin's kv call) can use it from any thread.
//!
//! Every operation is bounded by `[store] timeout_ms`. A prober asks the
//! database `SELECT 1` every second, so `/readyz` knows when it is down;
//! connections broken by an outage are dropped and remade on demand, so
//! service resumes when the database returns, without a restart.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio::runtime::{Handle, Runtime};

use super::{StoreConfig, StoreError};

/// The schema versions this build knows, oldest first; each applied once,
/// in a transaction, under an advisory lock so two gateways starting
/// together do not both apply it.
const MIGRATIONS: &[&str] = &[
    include_str!("postgres_v1.sql"),
    include_str!("postgres_v2.sql"),
];

/// Advisory-lock keys (any constants unique to imgate).
const MIGRATE_LOCK: i64 = 0x696d_6761_7465_0001;
/// Held for the length of an append's transaction: the chain's head.
pub const CHAIN_LOCK: i64 = 0x696d_6761_7465_0002;

/// A pool to one PostgreSQL database, shared by every part of the process
/// that opens the same URL.
pub struct Postgres {
    runtime: Option<Runtime>,
    handle: Handle,
    pool: Pool,
    timeout: Duration,
    healthy: Arc<AtomicBool>,
    url: String,
}

/// Pools in use, by URL, so the archive writer, the review desk, the
/// bridge's id map and kv share connections.
static SHARED: Mutex<Vec<(String, Weak<Postgres>)>> = Mutex::new(Vec::new());

impl Postgres {
    /// The pool for `url`, made on first use; its schema is brought up to
    /// date when `migrate`, else only checked.
    ///
    /// # Errors
    /// The URL is not a PostgreSQL URL, the database cannot be reached, or
    /// its schema is newer than this build knows.
    pub fn shared(
        url: &str,
        config: &StoreConfig,
        migrate: bool,
    ) -> Result<Arc<Postgres>, StoreError> {
        let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        shared.retain(|(_, w)| w.strong_count() > 0);
        if let Some(pg) = shared
            .iter()
            .find(|(u, _)| u == url)
            .and_then(|(_, w)| w.upgrade())
        {
            return Ok(pg);
        }
        let pg = Arc::new(Postgres::connect(url, config)?);
        pg.run(pg.schema(migrate))?;
        shared.push((url.to_owned(), Arc::downgrade(&pg)));
        Ok(pg)
    }

    fn connect(url: &str, config: &StoreConfig) -> Result<Postgres, StoreError> {
        let pg_config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| StoreError::Url(format!("{}: {e}", redact(url))))?;
        let mut pg_config = pg_config;
        if pg_config.get_connect_timeout().is_none() {
            pg_config.connect_timeout(config.timeout());
        }
        if pg_config.get_application_name().is_none() {
            pg_config.application_name("imgate");
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("imgate-store")
            .enable_all()
            .build()
            .map_err(StoreError::Thread)?;
        let manager = Manager::from_config(
            pg_config,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(config.timeout()))
            .create_timeout(Some(config.timeout()))
            .recycle_timeout(Some(config.timeout()))
            .build()
            .map_err(|e| StoreError::Postgres(e.to_string()))?;
        let healthy = Arc::new(AtomicBool::new(true));
        runtime.spawn(probe(pool.clone(), healthy.clone(), config.timeout()));
        Ok(Postgres {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            pool,
            timeout: config.timeout(),
            healthy,
            url: redact(url),
        })
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The URL without its password, for messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether the database answered the last probe.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Runs `op` on the store's runtime and waits for it, from any thread,
    /// for at most `[store] timeout_ms`. Call it through
    /// `util::blocking::wait_off_worker` from async code.
    ///
    /// # Errors
    /// `op`'s own, or a timeout.
    pub fn run<T: Send, E: From<StoreError> + Send>(
        &self,
        op: impl Future<Output = Result<T, E>> + Send,
    ) -> Result<T, E> {
        let timeout = self.timeout;
        let bounded = async move {
            match tokio::time::timeout(timeout, op).await {
                Ok(result) => result,
                Err(_) => Err(E::from(StoreError::Timeout(timeout))),
            }
        };
        match Handle::try_current() {
            // A plain thread: wait here.
            Err(_) => self.handle.block_on(bounded),
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| self.handle.block_on(bounded))
            }
            // A single-threaded runtime cannot wait in place: a helper thread.
            Ok(_) => std::thread::scope(|s| {
                s.spawn(|| self.handle.block_on(bounded))
                    .join()
                    .unwrap_or_else(|_| {
                        Err(E::from(StoreError::Postgres(
                            "store thread panicked".into(),
                        )))
                    })
            }),
        }
    }

    /// Runs `task` on the store's runtime until it ends or the pool is
    /// dropped (background work: the kv sweep).
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.handle.spawn(task);
    }

    /// Checks, or with `migrate` brings up to date, the schema version.
    async fn schema(&self, migrate: bool) -> Result<(), StoreError> {
        let known = MIGRATIONS.len() as i64;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        if migrate {
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])
                .await?;
            tx.batch_execute("CREATE TABLE IF NOT EXISTS imgate_schema (version BIGINT NOT NULL)")
                .await?;
        }
        let found: i64 = match tx
            .query_one("SELECT coalesce(max(version), 0) FROM imgate_schema", &[])
            .await
        {
            Ok(row) => row.get(0),
            Err(e) if !migrate => {
                return Err(StoreError::Postgres(format!(
                    "{} is not an imgate store (no schema table: {})",
                    self.url,
                    describe(&e)
                )));
            }
            Err(e) => return Err(e.into()),
        };
        if found > known {
            return Err(StoreError::SchemaTooNew { found, known });
        }
        if !migrate {
            return Ok(());
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            tx.batch_execute(sql).await?;
            tracing::info!(version = i + 1, store = %self.url, "store schema migrated");
        }
        if found < known {
            tx.execute("DELETE FROM imgate_schema", &[]).await?;
            tx.execute("INSERT INTO imgate_schema (version) VALUES ($1)", &[&known])
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Dropping a runtime may not block inside another one.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

async fn probe(pool: Pool, healthy: Arc<AtomicBool>, timeout: Duration) {
    loop {
        let ok = tokio::time::timeout(timeout, async {
            let client = pool.get().await.ok()?;
            client.simple_query("SELECT 1").await.ok()
        })
        .await
        .ok()
        .flatten()
        .is_some();
        if healthy.swap(ok, Ordering::Relaxed) != ok {
            if ok {
                tracing::info!("the store answers again");
            } else {
                tracing::error!(
                    "the store does not answer: archive appends and kv calls fail until it does"
                );
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// A PostgreSQL error with the server's message and detail, which its
/// `Display` leaves out.
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{}: {detail}", db.message()),
            None => db.message().to_owned(),
        },
        None => {
            let mut out = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                out = format!("{out}: {s}");
                source = s.source();
            }
            out
        }
    }
}

/// `url` with any password replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some(x) => x,
        None => return url.to_owned(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}
