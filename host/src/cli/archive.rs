//! `imgate archive`: verify the chain, search and export the records.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::archive::{Filter, Store};
use crate::config::Config;

fn archive_path(config: &Path, db: Option<PathBuf>) -> Result<PathBuf, String> {
    if let Some(db) = db {
        return Ok(db);
    }
    let config = Config::load(config).map_err(|e| e.to_string())?;
    config
        .archive
        .map(|a| a.path)
        .ok_or_else(|| "the config has no [archive] section".into())
}

fn open(config: &Path, db: Option<PathBuf>) -> Result<Store, String> {
    let path = archive_path(config, db)?;
    Store::open_read_only(&path)
        .map_err(|e| format!("cannot open the archive {}: {e}", path.display()))
}

pub fn verify(config: &Path, db: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let store = match open(config, db) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    match store.verify() {
        Ok(v) => {
            println!(
                "ok: {} records, the chain holds; last hash {}",
                v.records, v.last_hash
            );
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
    db: Option<PathBuf>,
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
            println!("{r}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:>7}  {:<24}  {:<8}  {:<28}  {:<8}  text",
        "seq", "when (ms)", "network", "from -> to", "verdict"
    );
    for r in &records {
        let e = &r["event"];
        let m = &e["message"];
        let (from, to, text) = if m.is_object() {
            (
                m["sender"].as_str(),
                m["room"].as_str().or(m["recipient"].as_str()),
                m["body"].as_str(),
            )
        } else {
            (e["session"]["user"].as_str(), None, None)
        };
        println!(
            "{:>7}  {:<24}  {:<8}  {:<28}  {:<8}  {}",
            r["seq"],
            r["appended_ms"],
            e["network"].as_str().unwrap_or(""),
            format!("{} -> {}", from.unwrap_or("-"), to.unwrap_or("-")),
            r["verdict"]["action"].as_str().unwrap_or("-"),
            text.unwrap_or("").chars().take(60).collect::<String>()
        );
    }
    println!("{} records", records.len());
    Ok(ExitCode::SUCCESS)
}

pub fn export(
    config: &Path,
    db: Option<PathBuf>,
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
