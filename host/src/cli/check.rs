//! `imgate check`: validate the config and load every plugin, reporting
//! every problem at once, each with where it is.

use std::path::Path;
use std::process::ExitCode;

use crate::config::Config;
use crate::plugins::LoadedPlugin;
use crate::plugins::Runtime;

pub fn run(config_path: &Path) -> anyhow::Result<ExitCode> {
    let (config, mut problems) = Config::load_all(config_path);
    let file = config_path.display().to_string();
    // An entry with a config problem is refused, whatever its load says.
    let refused: std::collections::HashSet<String> =
        problems.iter().map(|p| p.location.clone()).collect();
    let mut report: Vec<String> = problems.drain(..).map(|p| p.to_string()).collect();
    let mut loaded = Vec::new();

    match Runtime::capabilities(&config).and_then(|shared| Runtime::engine(&config, shared)) {
        Ok(engine) => {
            for spec in &config.plugins {
                match LoadedPlugin::load(&engine, spec) {
                    Ok(p) => loaded.push(p),
                    Err(e) => report.push(format!("{}: {e}", spec.location())),
                }
            }
        }
        Err(e) => report.push(format!("runtime: {e}")),
    }

    for p in loaded
        .iter()
        .filter(|p| !refused.contains(&p.spec.location()))
    {
        let roles: Vec<&str> = [(p.is_policy(), "policy"), (p.is_observer(), "observer")]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect();
        let grants: Vec<String> = p.spec.grants.iter().map(|g| g.to_string()).collect();
        let signed = match &p.signed {
            Some(v) => format!("signed by {} ({} {})", v.vendor, v.plugin, v.version),
            None => "unsigned".into(),
        };
        println!(
            "ok    {:<20} {}  {}  grants=[{}]  {}  deadline={}ms memory={}MiB  {signed}",
            p.name(),
            &p.sha256[..16],
            roles.join("+"),
            grants.join(","),
            p.spec.failure,
            p.spec.deadline_ms,
            p.spec.memory_mib,
        );
    }
    if report.is_empty() {
        println!("{file}: ok, {} plugin(s) loaded", loaded.len());
        Ok(ExitCode::SUCCESS)
    } else {
        for r in &report {
            eprintln!("error: {file}: {r}");
        }
        eprintln!("{file}: {} problem(s)", report.len());
        Ok(ExitCode::FAILURE)
    }
}
