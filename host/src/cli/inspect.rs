//! `imgate plugin inspect`: what a component is and what it asks for.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use serde::Serialize;

use crate::capabilities::SharedCapabilities;
use crate::config::RuntimeConfig;
use crate::plugins::PluginEngine;
use crate::plugins::sha256_hex;
use crate::plugins::{ImportKind, Inspection, Line, inspect};

#[derive(Serialize)]
struct Report<'a> {
    file: String,
    sha256: String,
    size: usize,
    /// The contract line it targets, when it is one this host carries.
    contract: Option<Line>,
    #[serde(flatten)]
    inspection: &'a Inspection,
}

pub fn run(file: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let bytes = crate::util::files::read_regular(
        file,
        crate::config::RuntimeConfig::default().max_plugin_mib << 20,
    )
    .with_context(|| format!("cannot read {}", file.display()))?;
    let runtime = RuntimeConfig {
        cache_dir: Default::default(),
        max_instances: 1,
        ..RuntimeConfig::default()
    };
    let engine = PluginEngine::new(&runtime, SharedCapabilities::default())?;
    let sha256 = sha256_hex(&bytes);
    let component = match engine.compile(&bytes, &sha256) {
        Ok((c, _)) => c,
        Err(e) => {
            eprintln!("error: {} is not a valid component: {e}", file.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    let inspection = inspect(engine.engine(), &component);
    let report = Report {
        file: file.display().to_string(),
        sha256,
        size: bytes.len(),
        contract: inspection.line().ok(),
        inspection: &inspection,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("file:      {}", report.file);
    println!("sha256:    {}", report.sha256);
    println!("size:      {} bytes", report.size);
    let versions: Vec<String> = inspection
        .contract_versions
        .iter()
        .map(|v| format!("imgate:policy@{v}"))
        .collect();
    println!(
        "contract:  {}",
        if versions.is_empty() {
            "none (not an imgate plugin)".to_string()
        } else {
            versions.join(", ")
        }
    );
    match inspection.line() {
        _ if versions.is_empty() => {}
        Err(_) => println!(
            "           not a contract this host implements (imgate:policy@{}): it will not load",
            crate::contract::CONTRACT_VERSIONS.join(" and @")
        ),
        Ok(line) if inspection.targets_newer_contract() => println!(
            "           newer than this host's imgate:policy@{}: it loads, and any function \
             this host lacks fails when the plugin calls it",
            line.implemented()
        ),
        Ok(Line::V0_1) => println!(
            "           an earlier contract: runs through this host's 0.1 adapter, its \
             verdicts keep their meaning, and it sees the kinds 0.1 names"
        ),
        Ok(Line::V0_2) => {}
    }
    let roles: Vec<&str> = [
        (inspection.policy, "policy (handler)"),
        (inspection.observer, "observer"),
        (inspection.interest, "with interest (kinds)"),
    ]
    .into_iter()
    .filter_map(|(on, n)| on.then_some(n))
    .collect();
    println!(
        "role:      {}",
        if roles.is_empty() {
            "none".into()
        } else {
            roles.join(" + ")
        }
    );
    println!("exports:");
    for e in &inspection.exports {
        println!("  {e}");
    }
    if !inspection.ignored_exports.is_empty() {
        println!("ignored exports (not in the contract; never called):");
        for e in &inspection.ignored_exports {
            println!("  {e}");
        }
    }
    println!("capabilities requested (grant these in the config):");
    let caps: Vec<_> = inspection
        .imports
        .iter()
        .filter_map(|i| match &i.kind {
            ImportKind::Capability(c) => Some((c, &i.name)),
            _ => None,
        })
        .collect();
    if caps.is_empty() {
        println!("  none");
    }
    for (c, name) in caps {
        println!("  {c:<8} {name}");
    }
    let unknown: Vec<_> = inspection
        .imports
        .iter()
        .filter(|i| i.kind == ImportKind::Unknown)
        .collect();
    if !unknown.is_empty() {
        println!("imports imgate does not provide (the plugin cannot load):");
        for i in unknown {
            println!("  {}", i.name);
        }
    }
    let wasi = inspection
        .imports
        .iter()
        .filter(|i| i.kind == ImportKind::Wasi)
        .count();
    println!("wasi:      {wasi} interface(s), linked deny-all (no files, network or environment)");
    Ok(ExitCode::SUCCESS)
}
