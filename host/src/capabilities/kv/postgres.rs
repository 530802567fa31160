//! kv on PostgreSQL, shared by every gateway on the database.
//!
//! Each write is one transaction that first locks the namespace's row in
//! `kv_usage` (created on first use), so increment, compare-and-swap and
//! the quota check are atomic across gateways. Expiry is the database's
//! clock, so gateways agree on it: a key past its TTL reads as absent at
//! once, and a sweep every `[store] kv_sweep_s` deletes it. kv is working
//! state, so its commits do not wait for the WAL to reach disk
//! (`synchronous_commit = off`): a database crash may forget the last
//! fraction of a second of counters, never half an operation.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Pool, Transaction};

use super::KvConfig;
use crate::contract::kv::KvError;
use crate::store::{Postgres, StoreError};

/// The database's clock, in milliseconds.
const NOW: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

impl From<StoreError> for KvError {
    fn from(e: StoreError) -> Self {
        KvError::Store(format!("the store failed: {e}"))
    }
}

impl From<tokio_postgres::Error> for KvError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::from(e).into()
    }
}

impl From<deadpool_postgres::PoolError> for KvError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::from(e).into()
    }
}

/// One plugin's namespace on PostgreSQL.
pub struct Shared {
    pg: Arc<Postgres>,
    namespace: String,
    limits: KvConfig,
}

/// A key as it is inside a write: its value, whether it is live, and the
/// bytes it counts against the quota (expired or not, until removed).
struct Current {
    value: Vec<u8>,
    expires_ms: Option<i64>,
    live: bool,
    footprint: i64,
}

impl Shared {
    pub fn new(pg: Arc<Postgres>, namespace: &str, limits: KvConfig) -> Self {
        Shared {
            pg,
            namespace: namespace.to_owned(),
            limits,
        }
    }

    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        super::check_sizes(&self.limits, key, None)?;
        self.pg.run(async {
            let row = self
                .pg
                .pool()
                .get()
                .await?
                .query_opt(
                    &format!(
                        "SELECT value FROM kv WHERE namespace = $1 AND key = $2 \
                         AND (expires_ms IS NULL OR expires_ms > {NOW})"
                    ),
                    &[&self.namespace, &key],
                )
                .await?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    pub fn set(&self, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> Result<(), KvError> {
        super::check_sizes(&self.limits, key, Some(&value))?;
        let ttl_ms = ttl.map(|t| i64::try_from(t.as_millis()).unwrap_or(i64::MAX / 2));
        self.write(key, move |_| {
            Ok((Change::Put(value, Expiry::In(ttl_ms)), ()))
        })
    }

    pub fn delete(&self, key: &str) -> Result<bool, KvError> {
        super::check_sizes(&self.limits, key, None)?;
        self.write(key, |current| {
            Ok((Change::Delete, current.is_some_and(|c| c.live)))
        })
    }

    pub fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        super::check_sizes(&self.limits, key, None)?;
        self.write(key, |current| {
            let live = current.filter(|c| c.live);
            let next = super::incremented(key, live.map(|c| c.value.as_slice()), delta)?;
            let expires = live.and_then(|c| c.expires_ms);
            Ok((
                Change::Put(next.to_string().into_bytes(), Expiry::At(expires)),
                next,
            ))
        })
    }

    pub fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Vec<u8>,
    ) -> Result<bool, KvError> {
        super::check_sizes(&self.limits, key, Some(&new))?;
        self.write(key, |current| {
            let live = current.filter(|c| c.live);
            if live.map(|c| c.value.as_slice()) != expected {
                return Ok((Change::Keep, false));
            }
            Ok((
                Change::Put(new, Expiry::At(live.and_then(|c| c.expires_ms))),
                true,
            ))
        })
    }

    /// One atomic write: `decide` sees the key as it is and says what it
    /// becomes, with a result.
    fn write<R: Send>(
        &self,
        key: &str,
        decide: impl FnOnce(Option<&Current>) -> Result<(Change, R), KvError> + Send,
    ) -> Result<R, KvError> {
        self.pg.run(async {
            let mut client = self.pg.pool().get().await?;
            let tx = client.transaction().await?;
            tx.batch_execute("SET LOCAL synchronous_commit = off").await?;
            let (mut keys, mut bytes) = lock_usage(&tx, &self.namespace).await?;
            let mut current = current(&tx, &self.namespace, key).await?;
            let (change, out) = decide(current.as_ref())?;
            match change {
                Change::Keep => return Ok(out),
                Change::Delete => {
                    if let Some(c) = &current {
                        tx.execute(
                            "DELETE FROM kv WHERE namespace = $1 AND key = $2",
                            &[&self.namespace, &key],
                        )
                        .await?;
                        keys -= 1;
                        bytes -= c.footprint;
                    }
                }
                Change::Put(value, expiry) => {
                    let new = (key.len() + value.len()) as i64;
                    let fits = |keys: i64, bytes: i64, current: &Option<Current>| {
                        let old = current.as_ref().map_or(0, |c| c.footprint);
                        keys + i64::from(current.is_none()) <= self.limits.max_keys as i64
                            && bytes - old + new <= self.limits.max_bytes as i64
                    };
                    if !fits(keys, bytes, &current) {
                        let (k, b) = sweep_in(&tx, &self.namespace).await?;
                        keys -= k;
                        bytes -= b;
                        current = current.filter(|c| c.live);
                        if !fits(keys, bytes, &current) {
                            return Err(KvError::QuotaExceeded(format!(
                                "namespace holds {keys} keys / {bytes} bytes; limits are {} keys / {} bytes",
                                self.limits.max_keys, self.limits.max_bytes
                            )));
                        }
                    }
                    let (ttl, at) = match expiry {
                        Expiry::In(ttl) => (ttl, None),
                        Expiry::At(at) => (None, at),
                    };
                    tx.execute(
                        &format!(
                            "INSERT INTO kv (namespace, key, value, expires_ms) VALUES ($1, $2, $3, \
                             CASE WHEN $4::bigint IS NOT NULL THEN {NOW} + $4::bigint ELSE $5::bigint END) \
                             ON CONFLICT (namespace, key) DO UPDATE \
                             SET value = EXCLUDED.value, expires_ms = EXCLUDED.expires_ms"
                        ),
                        &[&self.namespace, &key, &value, &ttl, &at],
                    )
                    .await?;
                    keys += i64::from(current.is_none());
                    bytes += new - current.as_ref().map_or(0, |c| c.footprint);
                }
            }
            tx.execute(
                "UPDATE kv_usage SET keys = $2, bytes = $3 WHERE namespace = $1",
                &[&self.namespace, &keys, &bytes],
            )
            .await?;
            tx.commit().await?;
            Ok(out)
        })
    }
}

/// When a written key expires: in a TTL from now, or when it did before.
enum Expiry {
    In(Option<i64>),
    At(Option<i64>),
}

/// What a write does to its key.
enum Change {
    Keep,
    Delete,
    Put(Vec<u8>, Expiry),
}

/// Locks the namespace's usage row (made on first use); its counts.
async fn lock_usage(tx: &Transaction<'_>, namespace: &str) -> Result<(i64, i64), KvError> {
    let row = tx
        .query_one(
            "INSERT INTO kv_usage (namespace, keys, bytes) VALUES ($1, 0, 0) \
             ON CONFLICT (namespace) DO UPDATE SET keys = kv_usage.keys \
             RETURNING keys, bytes",
            &[&namespace],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

async fn current(
    tx: &Transaction<'_>,
    namespace: &str,
    key: &str,
) -> Result<Option<Current>, KvError> {
    let row = tx
        .query_opt(
            &format!(
                "SELECT value, expires_ms, (expires_ms IS NULL OR expires_ms > {NOW}) \
                 FROM kv WHERE namespace = $1 AND key = $2"
            ),
            &[&namespace, &key],
        )
        .await?;
    Ok(row.map(|r| {
        let value: Vec<u8> = r.get(0);
        Current {
            footprint: (key.len() + value.len()) as i64,
            value,
            expires_ms: r.get(1),
            live: r.get(2),
        }
    }))
}

/// Deletes the namespace's expired keys (its usage row locked); returns
/// the keys and bytes freed.
async fn sweep_in(tx: &Transaction<'_>, namespace: &str) -> Result<(i64, i64), KvError> {
    let rows = tx
        .query(
            &format!(
                "DELETE FROM kv WHERE namespace = $1 AND expires_ms <= {NOW} \
                 RETURNING octet_length(key) + octet_length(value)"
            ),
            &[&namespace],
        )
        .await?;
    let bytes: i64 = rows.iter().map(|r| i64::from(r.get::<_, i32>(0))).sum();
    Ok((rows.len() as i64, bytes))
}

/// Sweeps every namespace's expired keys every `every`, for as long as
/// the store's runtime runs.
pub fn sweep_every(pg: &Postgres, every: Duration) {
    let pool = pg.pool().clone();
    pg.spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = sweep(&pool).await {
                tracing::warn!(error = %e, "kv sweep failed; expired keys still read as absent");
            }
        }
    });
}

async fn sweep(pool: &Pool) -> Result<(), KvError> {
    let mut client = pool.get().await?;
    let namespaces: Vec<String> = client
        .query(
            &format!("SELECT DISTINCT namespace FROM kv WHERE expires_ms <= {NOW}"),
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for namespace in namespaces {
        let tx = client.transaction().await?;
        tx.batch_execute("SET LOCAL synchronous_commit = off")
            .await?;
        lock_usage(&tx, &namespace).await?;
        let (keys, bytes) = sweep_in(&tx, &namespace).await?;
        tx.execute(
            "UPDATE kv_usage SET keys = keys - $2, bytes = bytes - $3 WHERE namespace = $1",
            &[&namespace, &keys, &bytes],
        )
        .await?;
        tx.commit().await?;
    }
    Ok(())
}
