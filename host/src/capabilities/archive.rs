//! `archive`: append a record of an event and its final verdict. `append`
//! returns only once the record is durable.
//!
//! The store is [`crate::archive::Store`] (SQLite, hash-chained): one
//! writer thread owns it, gathers the appends that arrive within the
//! group-commit window, commits them in one durable transaction, then
//! acknowledges each. An acknowledged record survives `kill -9`.
//!
//! The wait for durability must not stall a tokio worker: the host call
//! waits through [`super::wait_off_worker`], and the time spent waiting is
//! not charged to the plugin's CPU deadline.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::metrics::HostStats;
use super::{Capability, NotGranted};
use crate::archive::checkpoint::Checkpointer;
use crate::event::json::{EventDoc, FinalVerdictDoc};
use crate::plugins::bindings::archive::Host;
use crate::plugins::view::{EventSlot, EventView};

/// `[archive]` in the config file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ArchiveConfig {
    pub path: PathBuf,
    /// How long the writer waits to gather appends into one fsync.
    #[serde(default = "default_window")]
    pub group_commit_ms: u64,
    /// Keep records this many days (default: forever); `imgate archive
    /// purge` removes older ones' contents, except under a legal hold.
    #[serde(default)]
    pub retention_days: Option<u64>,
    /// Per network, overriding `retention_days`: `{ xmpp = 2190 }`.
    #[serde(default)]
    pub retention: std::collections::BTreeMap<String, u64>,
    /// `imgate run` also purges on this schedule (seconds between purges);
    /// unset: only `imgate archive purge` does.
    #[serde(default)]
    pub purge_interval_s: Option<u64>,
    /// The gateway's archive key (`imgate keygen`), which signs checkpoints
    /// of the chain's head. Set with `checkpoint_file`.
    #[serde(default)]
    pub checkpoint_key: Option<PathBuf>,
    /// Where checkpoints are appended, one JSON line each; best on other
    /// storage than the archive (see docs/operators.md).
    #[serde(default)]
    pub checkpoint_file: Option<PathBuf>,
    /// Seconds between checkpoints while records arrive; one is also
    /// written at shutdown.
    #[serde(default = "default_checkpoint_interval")]
    pub checkpoint_interval_s: u64,
}

fn default_checkpoint_interval() -> u64 {
    60
}

impl ArchiveConfig {
    /// What is wrong with the section beyond its types.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.checkpoint_key.is_some() != self.checkpoint_file.is_some() {
            out.push("set both checkpoint_key and checkpoint_file, or neither".into());
        }
        if self.checkpoint_interval_s == 0 {
            out.push("checkpoint_interval_s must be at least 1".into());
        }
        out
    }
}

fn default_window() -> u64 {
    2
}

/// One archived record; its JSON is the canonical form the chain hashes.
#[derive(Debug, Deserialize, Serialize, PartialEq)]
pub struct ArchiveRecord {
    pub seq: u64,
    /// The plugin that appended it.
    pub plugin: String,
    pub appended_ms: u64,
    pub event: EventDoc,
    /// The chain's final verdict; absent when a policy plugin archived the
    /// event before the chain had decided.
    pub verdict: Option<FinalVerdictDoc>,
    #[serde(default)]
    pub annotations: Vec<(String, String)>,
}

struct Job {
    record: ArchiveRecord,
    reply: SyncSender<Result<u64, String>>,
}

/// The shared writer. Dropping it flushes what is queued and stops the thread.
pub struct ArchiveWriter {
    path: PathBuf,
    stats: Arc<HostStats>,
    tx: Mutex<Option<Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl ArchiveWriter {
    /// Opens (or creates) the archive and starts the writer thread.
    ///
    /// # Errors
    /// The database cannot be opened or created.
    pub fn open(config: &ArchiveConfig, stats: Arc<HostStats>) -> std::io::Result<Self> {
        let store = crate::archive::Store::open(&config.path).map_err(|e| {
            std::io::Error::other(format!("archive {}: {e}", config.path.display()))
        })?;
        let checkpointer = match (&config.checkpoint_key, &config.checkpoint_file) {
            (Some(key), Some(file)) => {
                let key = crate::signing::read_signing_key(key).map_err(std::io::Error::other)?;
                Some(Checkpointer::new(
                    key,
                    file.clone(),
                    Duration::from_secs(config.checkpoint_interval_s),
                ))
            }
            _ => None,
        };
        let (tx, rx) = mpsc::channel();
        let window = Duration::from_millis(config.group_commit_ms);
        let thread = std::thread::Builder::new()
            .name("imgate-archive".into())
            .spawn(move || write_loop(store, rx, window, checkpointer))?;
        Ok(ArchiveWriter {
            path: config.path.clone(),
            stats,
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues `record` and blocks until it is durable. Call it through
    /// [`super::wait_off_worker`] from async contexts.
    pub fn append(&self, record: ArchiveRecord) -> Result<u64, String> {
        let started = Instant::now();
        let result = self.queue_and_wait(record);
        let stats = &self.stats;
        match &result {
            Ok(_) => stats.archive_appends.fetch_add(1, Relaxed),
            Err(_) => stats.archive_append_failures.fetch_add(1, Relaxed),
        };
        stats
            .archive_append_seconds
            .observe(started.elapsed().as_secs_f64());
        result
    }

    fn queue_and_wait(&self, record: ArchiveRecord) -> Result<u64, String> {
        let (reply, wait) = mpsc::sync_channel(1);
        {
            let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
            let tx = tx.as_ref().ok_or("archive is shut down")?;
            tx.send(Job { record, reply })
                .map_err(|_| "archive writer has stopped".to_string())?;
        }
        wait.recv()
            .map_err(|_| "archive writer stopped before the record was durable".to_string())?
    }
}

impl Drop for ArchiveWriter {
    fn drop(&mut self) {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }
}

const MAX_BATCH: usize = 1024;

fn checkpoint(c: &mut Checkpointer, store: &crate::archive::Store) {
    match c.write(store, super::clock::now_ms()) {
        Ok(Some(cp)) => {
            tracing::info!(records = cp.records, head = %cp.head, "archive checkpoint written")
        }
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "archive checkpoint failed"),
    }
}

fn write_loop(
    mut store: crate::archive::Store,
    rx: Receiver<Job>,
    window: Duration,
    mut checkpointer: Option<Checkpointer>,
) {
    if let Some(c) = &mut checkpointer {
        checkpoint(c, &store);
    }
    loop {
        let first = match &mut checkpointer {
            Some(c) => match rx.recv_timeout(c.due_in()) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => {
                    checkpoint(c, &store);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            },
            None => match rx.recv() {
                Ok(job) => job,
                Err(_) => break,
            },
        };
        let mut batch = vec![first];
        let deadline = Instant::now() + window;
        while batch.len() < MAX_BATCH {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(job) => batch.push(job),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        let (jobs, mut records): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|j| (j.reply, j.record)).unzip();
        let result = store.append(&mut records);
        if let Err(e) = &result {
            tracing::error!(error = %e, "archive write failed; records in this batch were not acknowledged");
        }
        for (i, reply) in jobs.into_iter().enumerate() {
            let answer = match &result {
                Ok(seqs) => Ok(seqs[i]),
                Err(e) => Err(format!("archive write failed: {e}")),
            };
            // The appender may have given up (its plugin timed out); fine.
            let _ = reply.send(answer);
        }
        if let Some(c) = &mut checkpointer
            && c.due_in().is_zero()
        {
            checkpoint(c, &store);
        }
    }
    // Shutdown: anchor the final head.
    if let Some(c) = &mut checkpointer {
        checkpoint(c, &store);
    }
}

pub struct ArchiveInstance {
    plugin: Arc<str>,
    writer: Option<Arc<ArchiveWriter>>,
    /// Time this instance spent waiting for durability in the current call;
    /// the deadline check subtracts it.
    pub waited: Duration,
}

impl ArchiveInstance {
    pub fn new(plugin: Arc<str>, writer: Option<Arc<ArchiveWriter>>) -> Self {
        ArchiveInstance {
            plugin,
            writer,
            waited: Duration::ZERO,
        }
    }
}

/// What an `append` call can reach: this instance's archive handle and
/// the event the plugin is looking at.
pub struct ArchiveCtx<'a> {
    pub archive: &'a mut ArchiveInstance,
    pub view: &'a EventSlot,
}

/// Projection type for the linker: `HostState` → [`ArchiveCtx`].
pub struct ArchiveData;

impl wasmtime::component::HasData for ArchiveData {
    type Data<'a> = ArchiveCtx<'a>;
}

impl Host for ArchiveCtx<'_> {
    fn append(
        &mut self,
        event: wasmtime::component::Resource<EventView>,
        annotations: Vec<(String, String)>,
    ) -> wasmtime::Result<Result<u64, String>> {
        let archive = &mut *self.archive;
        let writer = NotGranted::require(
            archive.writer.as_ref(),
            &archive.plugin,
            Capability::Archive,
        )?
        .clone();
        let view = self.view.get(&event)?;
        let record = ArchiveRecord {
            seq: 0,
            plugin: archive.plugin.to_string(),
            appended_ms: super::clock::now_ms(),
            event: EventDoc::from(&*view.event),
            verdict: view.verdict.as_deref().map(FinalVerdictDoc::from),
            annotations,
        };
        let started = Instant::now();
        let result = super::wait_off_worker(|| writer.append(record));
        archive.waited += started.elapsed();
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::json::ActionDoc;

    fn record(body: &str) -> ArchiveRecord {
        let line = format!(
            r#"{{"network":"xmpp","direction":"outbound","message":{{"sender":"a","recipient":"b","body":"{body}"}}}}"#
        );
        ArchiveRecord {
            seq: 0,
            plugin: "archiver".into(),
            appended_ms: 1,
            event: serde_json::from_str(&line).unwrap(),
            verdict: Some(FinalVerdictDoc {
                action: ActionDoc::Allow,
                decided_by: None,
                tags: vec![],
            }),
            annotations: vec![],
        }
    }

    #[test]
    fn concurrent_appends_are_durable_numbered_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let config = ArchiveConfig {
            path: dir.path().join("a.jsonl"),
            group_commit_ms: 2,
            retention_days: None,
            retention: Default::default(),
            purge_interval_s: None,
            checkpoint_key: None,
            checkpoint_file: None,
            checkpoint_interval_s: 60,
        };
        let stats = Arc::new(HostStats::default());
        let writer = Arc::new(ArchiveWriter::open(&config, stats.clone()).unwrap());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let w = writer.clone();
                std::thread::spawn(move || {
                    (0..25)
                        .map(|i| w.append(record(&format!("{t}-{i}"))).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut seqs: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        seqs.sort();
        assert_eq!(seqs, (1..=100).collect::<Vec<_>>());
        drop(writer);

        assert_eq!(stats.archive_appends.load(Relaxed), 100);
        assert_eq!(stats.archive_append_seconds.count(), 100);
        let writer = ArchiveWriter::open(&config, stats).unwrap();
        assert_eq!(writer.append(record("after")).unwrap(), 101);
        drop(writer);
        let store = crate::archive::Store::open(&config.path).unwrap();
        assert_eq!(store.verify().unwrap().records, 101);
        let all = store.search(&Default::default()).unwrap();
        let last = all.last().unwrap();
        assert_eq!(last["seq"], 101);
        assert_eq!(last["event"]["message"]["body"], "after");
    }
}
