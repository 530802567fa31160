//! `imgate cert`: a self-signed development certificate.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

pub fn run(names: &[String], cert: &Path, key: &Path) -> anyhow::Result<ExitCode> {
    let (cert_pem, key_pem) = match crate::tls::self_signed(names) {
        Ok(pair) => pair,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    std::fs::write(cert, cert_pem).with_context(|| format!("cannot write {}", cert.display()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(key)
        .and_then(|mut f| f.write_all(key_pem.as_bytes()))
        .with_context(|| format!("cannot write {}", key.display()))?;
    println!(
        "certificate: {} (self-signed, for {})\nprivate key: {}\n\
         Clients must be told to trust this certificate; use a CA-issued one in production.",
        cert.display(),
        names.join(", "),
        key.display()
    );
    Ok(ExitCode::SUCCESS)
}
