//! `imgate archive`: verify the chain, search and export the records.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::archive::{Entry, Filter, Store};
use crate::config::Config;
use crate::store::StoreConfig;

/// The store `--db` names, else the config's.
fn store_of(config: &Path, db: Option<String>) -> Result<StoreConfig, String> {
    if let Some(db) = db {
        return Ok(StoreConfig::at(db));
    }
    let config = Config::load(config).map_err(|e| e.to_string())?;
    config
        .store
        .ok_or_else(|| "the config has no [store] (or [archive] path)".into())
}

/// Where a store is, for messages.
pub(super) fn named(store: &StoreConfig) -> String {
    store
        .location()
        .map_or_else(|_| store.url.clone(), |l| l.describe())
}

fn open(config: &Path, db: Option<String>) -> Result<Store, String> {
    let store = store_of(config, db)?;
    Store::connect_read_only(&store)
        .map_err(|e| format!("cannot open the archive {}: {e}", named(&store)))
}

/// `anchor`: the checkpoint file and the archive's public key.
pub fn verify(
    config: &Path,
    db: Option<String>,
    anchor: Option<(PathBuf, PathBuf)>,
) -> anyhow::Result<ExitCode> {
    let store = match open(config, db) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let checkpoints = match &anchor {
        None => None,
        Some((file, public)) => {
            let read = crate::util::files::read_regular(public, 4096)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    crate::signing::parse_public_key(&String::from_utf8_lossy(&b))
                        .map_err(|e| e.to_string())
                })
                .map_err(|e| format!("archive public key {}: {e}", public.display()))
                .and_then(|key| {
                    crate::archive::checkpoint::read_file(file, &key)
                        .map_err(|e| format!("checkpoints {}: {e}", file.display()))
                });
            match read {
                Ok(c) => Some(c),
                Err(e) => {
                    // A forged or altered checkpoint is a broken anchor.
                    println!("BROKEN: {e}");
                    return Ok(ExitCode::from(1));
                }
            }
        }
    };
    let result = match &checkpoints {
        Some(c) => store.verify_anchored(c),
        None => store.verify(),
    };
    match result {
        Ok(v) => {
            println!(
                "ok: {} records, the chain holds; last hash {}",
                v.records, v.last_hash
            );
            if let Some(c) = &checkpoints {
                match c.last() {
                    Some(last) => println!(
                        "ok: it agrees with {} signed checkpoint(s), the latest of {} at {} records",
                        c.len(),
                        crate::archive::export::rfc3339(last.time_ms),
                        last.records
                    ),
                    None => println!("warning: the checkpoint file holds no checkpoints"),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(broken) => {
            println!("BROKEN: {broken}");
            Ok(ExitCode::from(1))
        }
    }
}

pub fn search_cmd(
    config: &Path,
    db: Option<String>,
    filter: Filter,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let store = match open(config, db) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let records = match store.search(&filter) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: search failed: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    if json {
        for r in &records {
            println!("{}", serde_json::to_string(r)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:>7}  {:<24}  {:<8}  {:<28}  {:<8}  text",
        "seq", "when (ms)", "network", "from -> to", "verdict"
    );
    for entry in &records {
        let (when, network, from, to, verdict, text) = match entry {
            Entry::Record(r) => {
                let e = &r.event;
                let (from, to, text) = match &e.message {
                    Some(m) => (
                        m.sender.as_str(),
                        m.room.as_deref().unwrap_or(&m.recipient),
                        m.body.as_str(),
                    ),
                    None => (e.session.user.as_str(), "-", ""),
                };
                let verdict = r.verdict.as_ref().map_or("-", |v| v.action.name());
                (r.appended_ms, e.network.as_str(), from, to, verdict, text)
            }
            Entry::Audit(a) => (a.at_ms, "-", a.by.as_str(), "-", a.entry.as_str(), ""),
        };
        println!(
            "{:>7}  {:<24}  {:<8}  {:<28}  {:<8}  {}",
            entry.seq(),
            when,
            network,
            format!("{} -> {}", if from.is_empty() { "-" } else { from }, to),
            verdict,
            text.chars().take(60).collect::<String>()
        );
    }
    println!("{} records", records.len());
    Ok(ExitCode::SUCCESS)
}

pub fn export(
    config: &Path,
    db: Option<String>,
    format: crate::archive::export::Format,
    out: &Path,
    filter: Filter,
) -> anyhow::Result<ExitCode> {
    let store = match open(config, db) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let records = match store.select(&filter) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot read the archive: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let files = crate::archive::export::write(out, format, &records)
        .map_err(|e| anyhow::anyhow!("cannot write the export into {}: {e}", out.display()))?;
    println!(
        "exported {} records into {} ({} files, manifest.json lists every hash)",
        records.len(),
        out.display(),
        files.len()
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) fn who(by: Option<String>) -> String {
    by.or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into())
}

fn open_rw(
    config: &Path,
    db: Option<String>,
) -> Result<(Store, crate::archive::ArchiveConfig), String> {
    let loaded = Config::load(config).map_err(|e| e.to_string())?;
    let archive = loaded
        .archive
        .ok_or("the config has no [archive] section")?;
    let store = match db {
        Some(db) => StoreConfig::at(db),
        None => loaded.store.ok_or("the config has no [store]")?,
    };
    let opened = Store::connect(&store)
        .map_err(|e| format!("cannot open the archive {}: {e}", named(&store)))?;
    Ok((opened, archive))
}

/// Prints a problem the user can fix; exit status 2.
pub(super) fn fail(e: impl std::fmt::Display) -> anyhow::Result<ExitCode> {
    eprintln!("error: {e}");
    Ok(ExitCode::from(2))
}

pub fn purge(
    config: &Path,
    db: Option<String>,
    by: Option<String>,
    now: Option<u64>,
) -> anyhow::Result<ExitCode> {
    let (mut store, archive) = match open_rw(config, db) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    if archive.retention_days.is_none() && archive.retention.is_empty() {
        println!("no retention is configured ([archive] retention_days): nothing to purge");
        return Ok(ExitCode::SUCCESS);
    }
    let now = now.unwrap_or_else(crate::event::now_ms);
    match store.purge(now, archive.retention_days, &archive.retention, &who(by)) {
        Ok(r) => {
            match r.entry {
                Some(seq) => println!(
                    "purged {} records ({} kept under legal hold); recorded as entry {seq}",
                    r.purged, r.held
                ),
                None => println!("nothing past retention ({} kept under legal hold)", r.held),
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => fail(format!("purge failed, nothing was removed: {e}")),
    }
}

pub fn hold_add(
    config: &Path,
    user: Option<String>,
    room: Option<String>,
    reason: &str,
    by: Option<String>,
) -> anyhow::Result<ExitCode> {
    let (mut store, _) = match open_rw(config, None) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let (kind, value) = match (user, room) {
        (Some(u), _) => ("user", u),
        (None, Some(r)) => ("room", r),
        (None, None) => return fail("give --user or --room"),
    };
    match store.hold_add(kind, &value, reason, &who(by), crate::event::now_ms()) {
        Ok(id) => {
            println!("hold {id} placed on {kind} {value}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => fail(e),
    }
}

pub fn hold_remove(config: &Path, id: i64, by: Option<String>) -> anyhow::Result<ExitCode> {
    let (mut store, _) = match open_rw(config, None) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    match store.hold_remove(id, &who(by), crate::event::now_ms()) {
        Ok(h) => {
            println!("hold {id} on {} {} lifted", h.kind, h.value);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => fail(e),
    }
}

pub fn hold_list(config: &Path) -> anyhow::Result<ExitCode> {
    let store = match open(config, None) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    match store.holds() {
        Ok(holds) => {
            for h in &holds {
                println!(
                    "{:>4}  {:<5} {:<32} by {:<12} at {}  {}",
                    h.id, h.kind, h.value, h.created_by, h.created_ms, h.reason
                );
            }
            println!("{} holds", holds.len());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => fail(e.to_string()),
    }
}
