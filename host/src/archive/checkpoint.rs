//! Signed checkpoints of the chain's head: an anchor outside the chain.
//!
//! A hash chain proves only its middle: cutting records off its end, or
//! editing one and re-hashing everything after it, leaves a chain that
//! verifies. A checkpoint says "at this time the archive held N records
//! and record N's hash was H", signed with the gateway's ed25519 archive
//! key (`imgate keygen`). The gateway writes one at an interval and at
//! shutdown, into the database and appended to a checkpoint file that
//! should live elsewhere (another disk, syslog, a WORM bucket). `imgate
//! archive verify --checkpoints FILE --pub KEY` then fails if the chain is
//! shorter than a checkpoint, or its hash at a checkpoint's count differs.

use std::io::{BufRead, Write};
use std::path::Path;

pub use ed25519_dalek::SigningKey;
use ed25519_dalek::{Signature, Signer, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::signing::key_id;

const CONTEXT: &str = "imgate-archive-checkpoint-v1";

/// One checkpoint: a line of JSON in the checkpoint file.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub format: String,
    /// Records in the chain (the head is record `records`).
    pub records: u64,
    /// Hex sha256 chain hash of record `records` (zeros when empty).
    pub head: String,
    pub time_ms: u64,
    pub key_id: String,
    /// Hex ed25519 signature.
    pub signature: String,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CheckpointError {
    #[error("line {line}: not a checkpoint: {reason}")]
    Malformed { line: usize, reason: String },
    #[error("line {line}: signed by key {found}, not the archive key {expected}")]
    OtherKey {
        line: usize,
        found: String,
        expected: String,
    },
    #[error("line {line}: the signature does not verify: the checkpoint was altered or forged")]
    BadSignature { line: usize },
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
}

fn message(records: u64, head: &str, time_ms: u64) -> Vec<u8> {
    format!("{CONTEXT}\n{records}\n{head}\n{time_ms}\n").into_bytes()
}

impl Checkpoint {
    pub fn sign(key: &SigningKey, records: u64, head: &str, time_ms: u64) -> Checkpoint {
        let signature = key.sign(&message(records, head, time_ms));
        Checkpoint {
            format: CONTEXT.into(),
            records,
            head: head.into(),
            time_ms,
            key_id: key_id(&key.verifying_key()),
            signature: crate::util::hex::encode(&signature.to_bytes()),
        }
    }

    /// # Errors
    /// Another key signed it, or the signature does not verify.
    pub fn check(&self, key: &VerifyingKey, line: usize) -> Result<(), CheckpointError> {
        let expected = key_id(key);
        if self.key_id != expected {
            return Err(CheckpointError::OtherKey {
                line,
                found: self.key_id.clone(),
                expected,
            });
        }
        let bad = || CheckpointError::BadSignature { line };
        let bytes = crate::util::hex::decode::<64>(&self.signature).map_err(|_| bad())?;
        key.verify_strict(
            &message(self.records, &self.head, self.time_ms),
            &Signature::from_bytes(&bytes),
        )
        .map_err(|_| bad())
    }

    /// The line written to the checkpoint file, newline included.
    pub fn to_line(&self) -> String {
        // A struct of strings and numbers always serialises.
        let mut line = serde_json::to_string(self).unwrap_or_default();
        line.push('\n');
        line
    }
}

/// Appends `checkpoint` to `path` (created if missing) and syncs it.
///
/// # Errors
/// The file cannot be opened, written or synced.
pub fn append_to_file(path: &Path, checkpoint: &Checkpoint) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(checkpoint.to_line().as_bytes())?;
    file.sync_data()
}

/// Reads every checkpoint in `path`, checking each signature with `key`.
/// Blank lines are skipped.
///
/// # Errors
/// The file cannot be read, or a line is not a checkpoint signed by `key`.
pub fn read_file(path: &Path, key: &VerifyingKey) -> Result<Vec<Checkpoint>, CheckpointError> {
    let read = |e: std::io::Error| CheckpointError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let meta = std::fs::metadata(path).map_err(read)?;
    if !meta.is_file() {
        return Err(read(std::io::Error::other("not a regular file")));
    }
    let file = std::fs::File::open(path).map_err(read)?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line_no = i + 1;
        let line = line.map_err(read)?;
        if line.trim().is_empty() {
            continue;
        }
        let c: Checkpoint =
            serde_json::from_str(&line).map_err(|e| CheckpointError::Malformed {
                line: line_no,
                reason: e.to_string(),
            })?;
        if c.format != CONTEXT {
            return Err(CheckpointError::Malformed {
                line: line_no,
                reason: format!("format is `{}`, expected `{CONTEXT}`", c.format),
            });
        }
        c.check(key, line_no)?;
        out.push(c);
    }
    Ok(out)
}

/// Writes checkpoints for the archive writer: at an interval when the
/// head has moved, and once more at shutdown.
pub struct Checkpointer {
    key: SigningKey,
    file: std::path::PathBuf,
    interval: std::time::Duration,
    last_at: std::time::Instant,
    /// The head of the last checkpoint written; `None` before the first.
    last_head: Option<(u64, String)>,
}

impl Checkpointer {
    pub fn new(key: SigningKey, file: std::path::PathBuf, interval: std::time::Duration) -> Self {
        Checkpointer {
            key,
            file,
            interval,
            last_at: std::time::Instant::now(),
            last_head: None,
        }
    }

    /// Time until the next checkpoint is due.
    pub fn due_in(&self) -> std::time::Duration {
        self.interval.saturating_sub(self.last_at.elapsed())
    }

    /// Writes a checkpoint of `store`'s head, to the file first (the
    /// anchor), then the database, unless the head has not moved since
    /// the last one.
    ///
    /// # Errors
    /// The head cannot be read, or the file or database cannot be written.
    pub fn write(
        &mut self,
        store: &super::Store,
        now_ms: u64,
    ) -> Result<Option<Checkpoint>, String> {
        self.last_at = std::time::Instant::now();
        let head = store.head().map_err(|e| format!("reading the head: {e}"))?;
        if self.last_head.as_ref() == Some(&head) {
            return Ok(None);
        }
        let c = Checkpoint::sign(&self.key, head.0, &head.1, now_ms);
        append_to_file(&self.file, &c)
            .map_err(|e| format!("writing {}: {e}", self.file.display()))?;
        store
            .add_checkpoint(&c)
            .map_err(|e| format!("keeping it in the database: {e}"))?;
        self.last_head = Some(head);
        Ok(Some(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_sign_verify_and_refuse_edits() {
        let key = crate::signing::generate().unwrap();
        let other = crate::signing::generate().unwrap();
        let c = Checkpoint::sign(&key, 10, &"ab".repeat(32), 1_700_000_000_000);
        assert!(c.check(&key.verifying_key(), 1).is_ok());
        let mut edited = c.clone();
        edited.records = 9;
        assert_eq!(
            edited.check(&key.verifying_key(), 3),
            Err(CheckpointError::BadSignature { line: 3 })
        );
        assert!(matches!(
            c.check(&other.verifying_key(), 1),
            Err(CheckpointError::OtherKey { .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.jsonl");
        append_to_file(&path, &c).unwrap();
        append_to_file(&path, &Checkpoint::sign(&key, 12, &"cd".repeat(32), 2)).unwrap();
        let read = read_file(&path, &key.verifying_key()).unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(read[1].records, 12);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text = text.replacen("\"records\":12", "\"records\":11", 1);
        std::fs::write(&path, text).unwrap();
        assert_eq!(
            read_file(&path, &key.verifying_key()),
            Err(CheckpointError::BadSignature { line: 2 })
        );
    }
}
