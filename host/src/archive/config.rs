//! `[archive]`: how appends are grouped, how
//! long records are kept, and where signed checkpoints go.

use std::path::PathBuf;

use serde::Deserialize;

/// `[archive]` in the config file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ArchiveConfig {
    /// A SQLite file, when `[store]` is not set (the two are one setting).
    #[serde(default)]
    pub path: Option<PathBuf>,
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
    /// An archive with every setting at its default, in the store
    /// `[store]` names.
    pub fn in_store() -> Self {
        ArchiveConfig {
            path: None,
            group_commit_ms: default_window(),
            retention_days: None,
            retention: Default::default(),
            purge_interval_s: None,
            checkpoint_key: None,
            checkpoint_file: None,
            checkpoint_interval_s: default_checkpoint_interval(),
        }
    }

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
