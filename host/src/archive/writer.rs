//! The group-commit writer: one thread owns the store, gathers the appends
//! that arrive within the group-commit window, commits them in one durable
//! transaction, then acknowledges each. An acknowledged record survives
//! `kill -9`. It also writes signed checkpoints of the head on schedule.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::checkpoint::Checkpointer;
use super::{ArchiveConfig, ArchiveError, ArchiveRecord, Store};
use crate::event::now_ms;
use crate::store::StoreConfig;

/// Where the writer reports each append (the host's metrics).
pub trait AppendStats: Send + Sync {
    fn appended(&self, ok: bool, took: Duration);
}

struct Job {
    record: ArchiveRecord,
    reply: SyncSender<Result<u64, ArchiveError>>,
}

/// The shared writer. Dropping it flushes what is queued and stops the thread.
pub struct ArchiveWriter {
    stats: Arc<dyn AppendStats>,
    tx: Mutex<Option<Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl ArchiveWriter {
    /// Opens (or creates) the archive in `store` and starts the writer
    /// thread.
    ///
    /// # Errors
    /// The database cannot be reached, opened or created.
    pub fn open(
        config: &ArchiveConfig,
        store: &StoreConfig,
        stats: Arc<dyn AppendStats>,
    ) -> Result<Self, ArchiveError> {
        let store = Store::connect(store)?;
        let checkpointer = match (&config.checkpoint_key, &config.checkpoint_file) {
            (Some(key), Some(file)) => {
                let key = crate::signing::read_signing_key(key).map_err(ArchiveError::Key)?;
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
            .spawn(move || write_loop(store, rx, window, checkpointer))
            .map_err(ArchiveError::Thread)?;
        Ok(ArchiveWriter {
            stats,
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues `record` and blocks until it is durable. Call it through
    /// `util::blocking::wait_off_worker` from async contexts.
    ///
    /// # Errors
    /// The writer has stopped, or the batch holding the record could not
    /// be committed; the record is then not in the archive.
    pub fn append(&self, record: ArchiveRecord) -> Result<u64, ArchiveError> {
        let started = Instant::now();
        let result = self.queue_and_wait(record);
        self.stats.appended(result.is_ok(), started.elapsed());
        result
    }

    fn queue_and_wait(&self, record: ArchiveRecord) -> Result<u64, ArchiveError> {
        let (reply, wait) = mpsc::sync_channel(1);
        {
            let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
            let tx = tx.as_ref().ok_or(ArchiveError::WriterStopped)?;
            tx.send(Job { record, reply })
                .map_err(|_| ArchiveError::WriterStopped)?;
        }
        wait.recv().map_err(|_| ArchiveError::WriterStopped)?
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

fn checkpoint(c: &mut Checkpointer, store: &Store) {
    match c.write(store, now_ms()) {
        Ok(Some(cp)) => {
            tracing::info!(records = cp.records, head = %cp.head, "archive checkpoint written")
        }
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "archive checkpoint failed"),
    }
}

fn write_loop(
    mut store: Store,
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
                Err(e) => Err(ArchiveError::WriteFailed(e.to_string())),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::json::{ActionDoc, FinalVerdictDoc};
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

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
                removed_attachments: vec![],
            }),
            annotations: vec![],
        }
    }

    #[derive(Default)]
    struct Counted(AtomicU64);

    impl AppendStats for Counted {
        fn appended(&self, ok: bool, _took: Duration) {
            if ok {
                self.0.fetch_add(1, Relaxed);
            }
        }
    }

    #[test]
    fn concurrent_appends_are_durable_numbered_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let config = ArchiveConfig::in_store();
        let path = dir.path().join("a.db");
        let store = StoreConfig::sqlite(&path);
        let stats = Arc::new(Counted::default());
        let writer = Arc::new(ArchiveWriter::open(&config, &store, stats.clone()).unwrap());
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

        assert_eq!(stats.0.load(Relaxed), 100);
        let writer = ArchiveWriter::open(&config, &store, stats).unwrap();
        assert_eq!(writer.append(record("after")).unwrap(), 101);
        drop(writer);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.verify().unwrap().records, 101);
        let all = store.search(&Default::default()).unwrap();
        let Some(crate::archive::Entry::Record(last)) = all.last() else {
            panic!("no record")
        };
        assert_eq!(last.seq, 101);
        assert_eq!(last.event.message.as_ref().unwrap().body, "after");
    }
}
