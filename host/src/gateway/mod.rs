//! The long-running gateway process (`imgate run`): it wires the parts
//! together — adapters to the chain in force (as their [`Judge`]), the
//! admin API, the reload triggers and the archive's schedule — and stops
//! them all when told to.
//!
//! Owns: the assembly and the process's lifetime. Must not touch: any
//! network's wire format or a plugin's calls; it only connects parts.
//! Shutdown is a parameter: the caller owns the signals.
//!
//! - `admin`: the admin HTTP API.
//! - `console`: the compliance officers' web console.
//! - `http`: the accept loop both listeners share.
//! - `bridge`: what plugins send into other networks, judged there and
//!   delivered by relay identities.
//! - `review`: messages held for review, recorded and ruled on.
//! - `triggers`: SIGHUP, the file watch, the scheduled purge.

mod admin;
pub(crate) mod bridge;
mod console;
mod http;
mod review;
mod triggers;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

pub use admin::AdminServer;
pub(crate) use admin::read_token;
use review::{HoldingJudge, ReviewDesk};

use crate::adapters::irc::IrcAdapter;
use crate::adapters::matrix::MatrixAdapter;
use crate::adapters::relay::RelayStatus;
use crate::adapters::xmpp::XmppAdapter;
use crate::adapters::{AdapterError, AdapterStats};
use crate::archive::Store;
use crate::config::{Config, ConfigError};
use crate::event::Judge;
use crate::plugins::{LiveChain, PluginEngine, Runtime, RuntimeError};

/// Why the gateway could not start, or a reload was refused.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Adapter(#[from] AdapterError),
    #[error("[admin] {0}")]
    Admin(#[from] admin::AdminError),
    #[error("[archive] {0}")]
    Archive(crate::archive::ArchiveError),
    #[error("[console] {0}")]
    Console(#[from] console::ConsoleError),
}

/// Everything a reload needs, shared by its triggers.
pub struct Gateway {
    pub engine: PluginEngine,
    pub live: Arc<LiveChain>,
    /// Where held messages are recorded and ruled on.
    pub desk: Arc<ReviewDesk>,
    /// Every adapter's counters, for the admin API and metrics.
    adapters: Mutex<Vec<Arc<AdapterStats>>>,
    /// The relay identities, for `/connections`.
    relays: Mutex<Vec<Arc<RelayStatus>>>,
    bridge: std::sync::OnceLock<Arc<bridge::service::BridgeStats>>,
    /// The shared store, when it is PostgreSQL: `/readyz` follows it.
    postgres: Option<Arc<crate::store::Postgres>>,
    pub config_path: PathBuf,
    config: Config,
}

impl Gateway {
    /// Loads the config and starts the runtime.
    ///
    /// # Errors
    /// The config has problems or a plugin cannot load (all are listed).
    pub fn start(config_path: &Path) -> Result<Gateway, GatewayError> {
        let config = Config::load(config_path)?;
        let Runtime { engine, chain } = Runtime::start(&config)?;
        let store = match (&config.archive, &config.store) {
            (Some(_), Some(store)) => Some(Store::connect(store).map_err(GatewayError::Archive)?),
            _ => None,
        };
        let postgres = match &config.store {
            Some(s) => match s.location().map_err(|e| GatewayError::Archive(e.into()))? {
                crate::store::Location::Postgres(url) => Some(
                    crate::store::Postgres::shared(&url, s, false)
                        .map_err(|e| GatewayError::Archive(e.into()))?,
                ),
                crate::store::Location::Sqlite(_) => None,
            },
            None => None,
        };
        Ok(Gateway {
            desk: Arc::new(ReviewDesk::new(store, Arc::default())),
            live: Arc::new(LiveChain::new(chain, &config)),
            adapters: Default::default(),
            relays: Default::default(),
            bridge: Default::default(),
            postgres,
            engine,
            config_path: config_path.to_owned(),
            config,
        })
    }

    pub fn register_adapter(&self, stats: Arc<AdapterStats>) {
        self.adapters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(stats);
    }

    /// A snapshot of the adapters' counters.
    pub fn adapter_stats(&self) -> Vec<Arc<AdapterStats>> {
        self.adapters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The relay identities' states.
    pub fn relays(&self) -> Vec<Arc<RelayStatus>> {
        self.relays
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// `imgate_store_up` for `/metrics`, when the store is shared.
    pub fn store_metrics(&self) -> String {
        match &self.postgres {
            Some(pg) => format!(
                "# HELP imgate_store_up Whether the shared store answered its last probe.\n\
                 # TYPE imgate_store_up gauge\nimgate_store_up {}\n",
                u8::from(pg.healthy())
            ),
            None => String::new(),
        }
    }

    /// Why the gateway cannot serve as it should now, if it cannot: the
    /// shared store does not answer (appends fail, kv calls error).
    pub fn not_ready(&self) -> Option<String> {
        let pg = self.postgres.as_ref()?;
        (!pg.healthy()).then(|| format!("the store {} does not answer", pg.url()))
    }

    pub fn bridge_stats(&self) -> Option<&Arc<bridge::service::BridgeStats>> {
        self.bridge.get()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Re-reads the config file and reloads the chain; `trigger` says who
    /// asked, for the log. Returns the new chain's generation.
    ///
    /// # Errors
    /// The new config or chain is bad; the old chain stays in force.
    pub fn reload(&self, trigger: &str) -> Result<u64, GatewayError> {
        tracing::info!(trigger, "reload requested");
        let config = Config::load(&self.config_path)?;
        // The relays are logged in once, at start.
        if config.bridge != self.config.bridge {
            let e = RuntimeError::NeedsRestart("bridge");
            tracing::error!(error = %e, "reload failed; the running chain is unchanged");
            return Err(e.into());
        }
        Ok(self.live.reload(&self.engine, &config)?)
    }

    /// Files whose change triggers a reload: the config and every plugin
    /// component with its signature, as the current config names them.
    fn watched_files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.config_path.clone()];
        if let Ok(config) = Config::load(&self.config_path) {
            for p in &config.plugins {
                files.push(crate::signing::signature_path(&p.path));
                files.push(p.path.clone());
            }
        }
        files
    }
}

/// Runs the gateway until `shutdown` completes, then stops every part and
/// drains the sessions.
///
/// # Errors
/// Startup fails: the config, a plugin, an adapter or the admin listener.
pub async fn run(
    config_path: &Path,
    shutdown: impl Future<Output = ()>,
) -> Result<(), GatewayError> {
    // Before the first listener: each session holds two sockets.
    let open_files = crate::util::open_files::raise_to_hard();
    let gateway = Arc::new(Gateway::start(config_path)?);
    let (stop, stopping) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let bridge_slot = Arc::new(std::sync::OnceLock::new());
    let judge: Arc<dyn Judge> = Arc::new(HoldingJudge {
        live: gateway.live.clone(),
        desk: gateway.desk.clone(),
        bridge: bridge_slot.clone(),
    });
    let reviews = gateway.desk.reviews().clone();

    if let Some(admin) = gateway.config().admin.clone() {
        let server = AdminServer::bind(&admin, gateway.clone()).await?;
        tracing::info!(listen = %server.local_addr(), tls = server.is_tls(), "admin API listening");
        tasks.spawn(server.serve(stopping.clone()));
    }
    if let (Some(console), Some(store)) = (
        gateway.config().console.clone(),
        gateway.config().store.clone(),
    ) {
        let server = console::ConsoleServer::bind(&console, &store, gateway.desk.clone()).await?;
        tracing::info!(listen = %server.local_addr(), tls = server.is_tls(), "console listening");
        tasks.spawn(server.serve(stopping.clone()));
    }
    if let Some(xmpp) = gateway.config().xmpp.clone() {
        let adapter = XmppAdapter::start(&xmpp, judge.clone(), reviews.clone()).await?;
        for (address, direct_tls) in adapter.local_addrs() {
            tracing::info!(listen = %address, direct_tls, upstream = %xmpp.upstream.address, "XMPP listening");
        }
        gateway.register_adapter(adapter.stats());
        tasks.spawn(adapter.serve(stopping.clone()));
    }
    if let Some(irc) = gateway.config().irc.clone() {
        let adapter = IrcAdapter::start(&irc, judge.clone(), reviews.clone()).await?;
        for (address, tls) in adapter.local_addrs() {
            tracing::info!(listen = %address, tls, upstream = %irc.upstream.address, "IRC listening");
        }
        gateway.register_adapter(adapter.stats());
        tasks.spawn(adapter.serve(stopping.clone()));
    }
    if let Some(matrix) = gateway.config().matrix.clone() {
        let adapter = MatrixAdapter::start(&matrix, judge.clone(), reviews.clone()).await?;
        for (address, tls) in adapter.local_addrs() {
            tracing::info!(listen = %address, tls, upstream = %matrix.upstream.address, "Matrix listening");
        }
        gateway.register_adapter(adapter.stats());
        tasks.spawn(adapter.serve(stopping.clone()));
    }
    start_bridge(&gateway, &judge, &bridge_slot, &stopping, &mut tasks)?;
    if let (Some(archive), Some(store)) = (
        gateway.config().archive.clone(),
        gateway.config().store.clone(),
    ) && let Some(every) = archive.purge_interval_s
        && (archive.retention_days.is_some() || !archive.retention.is_empty())
    {
        tasks.spawn(triggers::purge_on_schedule(
            archive,
            store,
            Duration::from_secs(every.max(1)),
            stopping.clone(),
        ));
    }
    #[cfg(unix)]
    tasks.spawn(triggers::reload_on_sighup(
        gateway.clone(),
        stopping.clone(),
    ));
    let reload = gateway.config().reload.clone();
    if reload.watch {
        tasks.spawn(triggers::watch_files(
            gateway.clone(),
            Duration::from_millis(reload.debounce_ms),
            stopping.clone(),
        ));
    }
    tracing::info!(
        plugins = gateway.live.current().plugins().len(),
        open_files = open_files.map_or_else(|| "unlimited".to_owned(), |n| n.to_string()),
        sessions_at_most = open_files.map(crate::util::open_files::sessions_within),
        instance = crate::event::process_tag(),
        "imgate running; SIGHUP reloads, SIGTERM stops"
    );
    shutdown.await;
    tracing::info!("shutting down");
    let _ = stop.send(true);
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Logs the relay identities in and starts the bridge between the judge
/// and them. Plugins granted `bridge` learn which networks they can reach;
/// without `[bridge]`, none.
fn start_bridge(
    gateway: &Arc<Gateway>,
    judge: &Arc<dyn Judge>,
    slot: &std::sync::OnceLock<bridge::service::Bridge>,
    stopping: &watch::Receiver<bool>,
    tasks: &mut tokio::task::JoinSet<()>,
) -> Result<(), GatewayError> {
    let config = gateway.config();
    let map = Arc::new(match (&config.archive, &config.store) {
        (Some(_), Some(store)) => bridge::IdMap::Archive(Mutex::new(
            Store::open_for_bridge(store).map_err(GatewayError::Archive)?,
        )),
        _ => bridge::IdMap::memory(),
    });
    let bridges = &gateway.engine.shared().bridges;
    let Some(section) = &config.bridge else {
        bridges.connect(Vec::new(), map);
        return Ok(());
    };
    if config.archive.is_none() {
        tracing::warn!(
            "[bridge] without an [archive]: the id map is in memory, so an edit made after a restart will not find its message"
        );
    }
    let timing = crate::adapters::relay::Timing {
        send_timeout: Duration::from_millis(section.send_timeout_ms),
        backoff: section.backoff(),
    };
    let mut relays: Vec<Arc<dyn crate::event::bridge::Relay>> = Vec::new();
    let mut keep = |(handle, task): (
        crate::adapters::relay::RelayHandle,
        tokio::task::JoinHandle<()>,
    )| {
        gateway
            .relays
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(handle.status().clone());
        tasks.spawn(async move {
            let _ = task.await;
        });
        relays.push(Arc::new(handle));
    };
    if let (Some(relay), Some(xmpp)) = (&section.xmpp, &config.xmpp) {
        keep(crate::adapters::xmpp::relay::start(
            relay,
            &section.xmpp_format,
            xmpp,
            judge.clone(),
            timing,
            stopping.clone(),
        )?);
    }
    if let (Some(relay), Some(irc)) = (&section.irc, &config.irc) {
        keep(crate::adapters::irc::relay::start(
            relay,
            &section.irc_format,
            irc,
            judge.clone(),
            timing,
            stopping.clone(),
        )?);
    }
    if let (Some(relay), Some(matrix)) = (&section.matrix, &config.matrix) {
        keep(crate::adapters::matrix::relay::start(
            relay,
            &section.matrix_format,
            matrix,
            judge.clone(),
            timing,
            stopping.clone(),
        )?);
    }
    bridges.connect(section.networks(), map.clone());
    let (service, task) =
        bridge::service::start(gateway.live.clone(), relays, map, stopping.clone());
    let _ = gateway.bridge.set(service.stats.clone());
    let _ = slot.set(service);
    tasks.spawn(async move {
        let _ = task.await;
    });
    Ok(())
}
