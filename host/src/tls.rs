//! TLS on both sides of the gateway, with rustls: the server config clients
//! see (the gateway's certificate), the client config used towards the real
//! server (system roots or an operator's CA file), and `imgate cert`'s
//! self-signed development certificate.
//!
//! Configs are built once at startup and shared; a handshake costs one
//! `Arc` clone of them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A TLS setup problem, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read certificate file {path}: {reason}")]
    Cert { path: PathBuf, reason: String },
    #[error("cannot read private key file {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("cannot read CA file {path}: {reason}")]
    Ca { path: PathBuf, reason: String },
    #[error("no trusted roots: the system store is empty and no ca_file is configured")]
    NoRoots,
    #[error("certificate and key do not form a usable TLS identity: {0}")]
    Identity(rustls::Error),
    #[error("cannot generate a certificate: {0}")]
    Generate(String),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |reason: String| TlsError::Cert {
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no PEM certificate in it".into()));
    }
    Ok(certs)
}

/// The gateway's server side: the certificate chain and key clients see.
///
/// # Errors
/// Either file is unreadable or not PEM, or the key does not match.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = read_certs(cert)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.to_owned(),
        reason: e.to_string(),
    })?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Identity)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(TlsError::Identity)?;
    Ok(Arc::new(config))
}

/// The gateway's client side towards the real server: trusts `ca_file`
/// when given, else the system's roots.
///
/// # Errors
/// The CA file is unreadable, or there are no roots at all.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for cert in read_certs(path).map_err(|e| match e {
                TlsError::Cert { path, reason } => TlsError::Ca { path, reason },
                other => other,
            })? {
                roots.add(cert).map_err(|e| TlsError::Ca {
                    path: path.to_owned(),
                    reason: e.to_string(),
                })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!(error = %e, "skipping part of the system trust store");
            }
            roots.add_parsable_certificates(found.certs);
        }
    }
    if roots.is_empty() {
        return Err(TlsError::NoRoots);
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Identity)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A self-signed certificate and key (PEM) for `names`, for development
/// and tests. Production deployments use a certificate clients already
/// trust.
///
/// # Errors
/// A name is not a valid DNS name or IP address.
pub fn self_signed(names: &[String]) -> Result<(String, String), TlsError> {
    let certified = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    Ok((certified.cert.pem(), certified.signing_key.serialize_pem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_certificate_makes_both_configs() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(&["localhost".into(), "127.0.0.1".into()]).unwrap();
        let cert_path = dir.path().join("cert.pem");
        let key_path = dir.path().join("key.pem");
        std::fs::write(&cert_path, cert).unwrap();
        std::fs::write(&key_path, key).unwrap();
        server_config(&cert_path, &key_path).unwrap();
        client_config(Some(&cert_path)).unwrap();
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let err = server_config(&missing, &missing).unwrap_err().to_string();
        assert!(err.contains("nope.pem"), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not pem").unwrap();
        let err = client_config(Some(&empty)).unwrap_err().to_string();
        assert!(
            err.contains("CA file") && err.contains("empty.pem"),
            "{err}"
        );
    }
}
