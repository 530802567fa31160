//! `imgate run`: the gateway process.

use std::path::Path;
use std::process::ExitCode;

pub fn run(config: &Path) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("imgate")
        .build()?;
    match runtime.block_on(crate::gateway::run(config)) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("error: {e:#}");
            Ok(ExitCode::from(2))
        }
    }
}
