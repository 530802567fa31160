use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = imgate::cli::Cli::parse();
    if !matches!(cli.command, imgate::cli::Command::Run { .. }) {
        quiet_on_closed_pipe();
    }
    // Logs go to stderr so command output (JSON lines) stays clean.
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("IMGATE_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match imgate::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A command that prints ends quietly when its reader goes away
/// (`imgate archive search … | head`), as any Unix filter does, rather
/// than failing with "Broken pipe". Not for `run`: its sockets must see a
/// closed peer as an error, not end the process.
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: restores SIGPIPE's default disposition before any other
    // thread exists; no handler is installed.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
