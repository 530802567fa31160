//! The long-running gateway process (`imgate run`): the chain in force,
//! and what changes it while traffic flows — SIGHUP, a debounced watch on
//! the config file and plugin files, and the admin API.
//!
//! Shutdown is a parameter: every task `select!`s on the same watch
//! channel, and `run` returns once they have stopped.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::config::Config;
use crate::plugins::{LiveChain, PluginEngine};
use crate::runtime::Runtime;

/// Everything a reload needs, shared by its triggers.
pub struct Gateway {
    pub engine: PluginEngine,
    pub live: Arc<LiveChain>,
    /// Every adapter's counters, for the admin API and metrics.
    pub adapters: std::sync::Mutex<Vec<Arc<crate::adapters::AdapterStats>>>,
    pub config_path: PathBuf,
    config: Config,
}

impl Gateway {
    /// Loads the config and starts the runtime.
    ///
    /// # Errors
    /// The config has problems or a plugin cannot load (all are listed).
    pub fn start(config_path: &Path) -> anyhow::Result<Gateway> {
        let config = Config::load(config_path).map_err(|e| anyhow::anyhow!("{e}"))?;
        let Runtime { engine, chain } =
            Runtime::start(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Gateway {
            live: Arc::new(LiveChain::new(chain, &config)),
            adapters: Default::default(),
            engine,
            config_path: config_path.to_owned(),
            config,
        })
    }

    pub fn register_adapter(&self, stats: Arc<crate::adapters::AdapterStats>) {
        self.adapters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(stats);
    }

    /// A snapshot of the adapters' counters.
    pub fn adapter_stats(&self) -> Vec<Arc<crate::adapters::AdapterStats>> {
        self.adapters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Re-reads the config file and reloads the chain; `trigger` says who
    /// asked, for the log.
    ///
    /// # Errors
    /// The new config or chain is bad; the old chain stays in force.
    pub fn reload(&self, trigger: &str) -> Result<u64, String> {
        tracing::info!(trigger, "reload requested");
        let config = Config::load(&self.config_path).map_err(|e| e.to_string())?;
        self.live
            .reload(&self.engine, &config)
            .map_err(|e| e.to_string())
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

/// What the watched files look like now: modification time and size.
fn fingerprint(files: &[PathBuf]) -> Vec<Option<(SystemTime, u64)>> {
    files
        .iter()
        .map(|f| {
            std::fs::metadata(f)
                .ok()
                .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()))
        })
        .collect()
}

/// Polls the watched files; reloads once a change has been still for the
/// debounce period. Polling needs no platform watcher and sees files
/// replaced by rename (how deploy tools write them).
async fn watch_files(
    gateway: Arc<Gateway>,
    debounce: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let poll = Duration::from_millis(250).min(debounce);
    let mut files = gateway.watched_files();
    let mut seen = fingerprint(&files);
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(poll) => {}
        }
        let now = fingerprint(&files);
        if now == seen {
            continue;
        }
        // Wait until the change settles.
        let mut settled = now;
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(debounce) => {}
            }
            let again = fingerprint(&files);
            if again == settled {
                break;
            }
            settled = again;
        }
        let g = gateway.clone();
        let _ = tokio::task::spawn_blocking(move || g.reload("file change")).await;
        files = gateway.watched_files();
        seen = fingerprint(&files);
    }
}

#[cfg(unix)]
async fn reload_on_sighup(gateway: Arc<Gateway>, mut shutdown: watch::Receiver<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::error!("cannot listen for SIGHUP; reload with the admin API or the file watch");
        return;
    };
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            got = hup.recv() => {
                if got.is_none() {
                    return;
                }
                let g = gateway.clone();
                let _ = tokio::task::spawn_blocking(move || g.reload("SIGHUP")).await;
            }
        }
    }
}

/// Purges the archive on the configured schedule (retention and legal
/// holds as `imgate archive purge` applies them).
async fn purge_on_schedule(
    archive: crate::capabilities::archive::ArchiveConfig,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let a = archive.clone();
        let result = tokio::task::spawn_blocking(move || {
            let mut store = crate::archive::Store::open(&a.path).map_err(|e| e.to_string())?;
            store.purge(
                crate::capabilities::clock::now_ms(),
                a.retention_days,
                &a.retention,
                "imgate (schedule)",
            )
        })
        .await;
        match result {
            Ok(Ok(r)) => {
                tracing::info!(purged = r.purged, held = r.held, entry = ?r.entry, "scheduled archive purge")
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "scheduled archive purge failed; nothing was removed")
            }
            Err(e) => tracing::error!(error = %e, "scheduled archive purge did not run"),
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs the gateway until SIGTERM or Ctrl-C.
///
/// # Errors
/// Startup fails: the config, a plugin, or the admin listener.
pub async fn run(config_path: &Path) -> anyhow::Result<()> {
    let gateway = Arc::new(Gateway::start(config_path)?);
    let (stop, shutdown) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();

    if let Some(admin) = gateway.config().admin.clone() {
        let server = crate::admin::AdminServer::bind(&admin, gateway.clone()).await?;
        tracing::info!(listen = %server.local_addr(), tls = server.is_tls(), "admin API listening");
        tasks.spawn(server.serve(shutdown.clone()));
    }
    if let Some(xmpp) = gateway.config().xmpp.clone() {
        let adapter = crate::adapters::xmpp::XmppAdapter::bind(&xmpp, gateway.live.clone()).await?;
        for (address, direct_tls) in adapter.local_addrs() {
            tracing::info!(listen = %address, direct_tls, upstream = %xmpp.upstream.address, "XMPP listening");
        }
        gateway.register_adapter(adapter.stats());
        tasks.spawn(adapter.serve(shutdown.clone()));
    }
    if let Some(irc) = gateway.config().irc.clone() {
        let adapter = crate::adapters::irc::IrcAdapter::bind(&irc, gateway.live.clone()).await?;
        for (address, tls) in adapter.local_addrs() {
            tracing::info!(listen = %address, tls, upstream = %irc.upstream.address, "IRC listening");
        }
        gateway.register_adapter(adapter.stats());
        tasks.spawn(adapter.serve(shutdown.clone()));
    }
    if let Some(archive) = gateway.config().archive.clone()
        && let Some(every) = archive.purge_interval_s
        && (archive.retention_days.is_some() || !archive.retention.is_empty())
    {
        tasks.spawn(purge_on_schedule(
            archive,
            Duration::from_secs(every.max(1)),
            shutdown.clone(),
        ));
    }
    #[cfg(unix)]
    tasks.spawn(reload_on_sighup(gateway.clone(), shutdown.clone()));
    let reload = gateway.config().reload.clone();
    if reload.watch {
        tasks.spawn(watch_files(
            gateway.clone(),
            Duration::from_millis(reload.debounce_ms),
            shutdown.clone(),
        ));
    }
    tracing::info!(
        plugins = gateway.live.current().plugins().len(),
        "imgate running; SIGHUP reloads, SIGTERM stops"
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = stop.send(true);
    while tasks.join_next().await.is_some() {}
    Ok(())
}
