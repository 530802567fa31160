//! What changes the chain while traffic flows, and what runs on a
//! schedule: SIGHUP, a debounced watch on the config and plugin files, and
//! the archive's retention purge. Each stops when `shutdown` changes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::Gateway;
use crate::archive::{ArchiveConfig, Store};
use crate::event::now_ms;

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

/// How long a reload waits, past the debounce, for each plugin's `.wasm`
/// and `.sig` to agree before it is tried anyway (and its failure shown).
pub const PAIR_WAIT: Duration = Duration::from_secs(30);

/// A watched component whose `.sig` is there but is not its signature yet.
fn half_copied(files: &[PathBuf]) -> Option<&PathBuf> {
    files
        .iter()
        .filter(|f| files.contains(&crate::signing::signature_path(f)))
        .find(|f| !crate::signing::pair_agrees(f))
}

/// Polls the watched files; reloads once a change has been still for the
/// debounce period and every plugin's `.wasm` and `.sig` agree (or have
/// not for [`PAIR_WAIT`]), so a pair copied one file at a time is not a
/// failed reload. Polling needs no platform watcher and sees files
/// replaced by rename (how deploy tools write them).
pub(super) async fn watch_files(
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
        let waiting = std::time::Instant::now();
        let mut said = false;
        while let Some(component) = half_copied(&files) {
            if waiting.elapsed() >= PAIR_WAIT {
                tracing::warn!(plugin = %component.display(), "its .sig still does not match after {PAIR_WAIT:?}; reloading anyway");
                break;
            }
            if !said {
                tracing::info!(plugin = %component.display(), "waiting for the .wasm and its .sig to agree before reloading");
                said = true;
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(poll) => {}
            }
        }
        let g = gateway.clone();
        let _ = tokio::task::spawn_blocking(move || g.reload("file change")).await;
        files = gateway.watched_files();
        seen = fingerprint(&files);
    }
}

#[cfg(unix)]
pub(super) async fn reload_on_sighup(gateway: Arc<Gateway>, mut shutdown: watch::Receiver<bool>) {
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
pub(super) async fn purge_on_schedule(
    archive: ArchiveConfig,
    store: crate::store::StoreConfig,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let (a, s) = (archive.clone(), store.clone());
        let result = tokio::task::spawn_blocking(move || {
            let mut store = Store::connect(&s)?;
            store.purge(
                now_ms(),
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
