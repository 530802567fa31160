//! `imgate keygen`, `imgate plugin sign`, `imgate plugin verify`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::config::Config;
use crate::plugins::sha256_hex;
use crate::signing::{self, SigningPolicy, TrustedKey};

pub fn keygen(out: &Path) -> anyhow::Result<ExitCode> {
    let key = signing::generate()?;
    let (secret, public) = signing::write_key_pair(out, &key)
        .with_context(|| format!("cannot write the key pair at {}", out.display()))?;
    let public_key = key.verifying_key();
    println!("secret key: {} (keep it private)", secret.display());
    println!("public key: {}", public.display());
    println!("key id:     {}", signing::key_id(&public_key));
    println!(
        "trust it with:\n\n[[signing.trusted_keys]]\nvendor = \"<your name>\"\nkey = \"{}\"",
        signing::public_key_hex(&public_key)
    );
    Ok(ExitCode::SUCCESS)
}

pub fn sign(key: &Path, name: &str, version: &str, file: &Path) -> anyhow::Result<ExitCode> {
    let key = signing::read_signing_key(key)?;
    let bytes = crate::util::files::read_regular(
        file,
        crate::config::RuntimeConfig::default().max_plugin_mib << 20,
    )
    .with_context(|| format!("cannot read {}", file.display()))?;
    let signature = signing::sign(&key, name, version, &sha256_hex(&bytes));
    let path = signing::signature_path(file);
    std::fs::write(&path, serde_json::to_string_pretty(&signature)? + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!(
        "signed {} {name} {version} (sha256 {}) with key {} -> {}",
        file.display(),
        signature.sha256,
        signature.key_id,
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn verify(
    public: Option<&Path>,
    config: Option<&Path>,
    file: &Path,
) -> anyhow::Result<ExitCode> {
    let trusted = match (public, config) {
        (Some(public), _) => {
            let text = std::fs::read_to_string(public)
                .with_context(|| format!("cannot read {}", public.display()))?;
            let key = signing::parse_public_key(&text)?;
            vec![TrustedKey {
                vendor: public.display().to_string(),
                id: signing::key_id(&key),
                key,
            }]
        }
        (None, Some(config)) => {
            let config = Config::load(config).map_err(|e| anyhow::anyhow!("{e}"))?;
            SigningPolicy::from_config(&config.signing)
                .map_err(|e| anyhow::anyhow!("[signing]: {}", e.join("; ")))?
                .trusted
        }
        (None, None) => anyhow::bail!("give the key to trust: --pub FILE or --config FILE"),
    };
    let bytes = crate::util::files::read_regular(
        file,
        crate::config::RuntimeConfig::default().max_plugin_mib << 20,
    )
    .with_context(|| format!("cannot read {}", file.display()))?;
    let policy = SigningPolicy {
        require_signed: true,
        trusted,
    };
    match signing::check(&policy, file, &sha256_hex(&bytes), None) {
        Ok(Some(v)) => {
            println!(
                "ok: {} is {} {} signed by {} (key {})",
                file.display(),
                v.plugin,
                v.version,
                v.vendor,
                v.key_id
            );
            Ok(ExitCode::SUCCESS)
        }
        Ok(None) => {
            // Not reached: `require_signed` turns a missing file into an error.
            eprintln!("error: {} is unsigned", file.display());
            Ok(ExitCode::FAILURE)
        }
        Err(e) => {
            eprintln!("error: {} {e}", file.display());
            Ok(ExitCode::FAILURE)
        }
    }
}
