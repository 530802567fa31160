//! Signed plugins: ed25519 over a component's sha256 together with the
//! plugin's name and version, in a detached `.sig` file next to it.
//!
//! A vendor makes a key pair once (`imgate keygen`), signs each release
//! (`imgate plugin sign`), and publishes the public key. An operator lists
//! trusted vendor keys under `[signing]`; with `require_signed`, an unsigned
//! component or one signed by an unknown key does not load. A `.sig` that
//! is present is always checked, required or not.
//!
//! Keys and signatures are hex text, so they paste into a config file.

use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Domain separation: a signature over these bytes means nothing else.
const CONTEXT: &str = "imgate-plugin-signature-v1";
const FORMAT: &str = "imgate-signature-v1";

/// `[signing]` in the config file.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SigningConfig {
    #[serde(default)]
    pub require_signed: bool,
    #[serde(default)]
    pub trusted_keys: Vec<TrustedKeyConfig>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrustedKeyConfig {
    /// Who the key belongs to, for messages.
    pub vendor: String,
    /// The public key, 64 hex digits (`imgate keygen` prints it).
    pub key: String,
}

/// A trusted vendor key, parsed.
#[derive(Clone, Debug)]
pub struct TrustedKey {
    pub vendor: String,
    pub key: VerifyingKey,
    pub id: String,
}

/// The operator's signing policy, validated.
#[derive(Clone, Debug, Default)]
pub struct SigningPolicy {
    pub require_signed: bool,
    pub trusted: Vec<TrustedKey>,
}

impl SigningPolicy {
    /// # Errors
    /// A key that is not 64 hex digits of a valid ed25519 point, named by vendor.
    pub fn from_config(config: &SigningConfig) -> Result<Self, Vec<String>> {
        let mut trusted = Vec::new();
        let mut errors = Vec::new();
        for k in &config.trusted_keys {
            match parse_public_key(&k.key) {
                Ok(key) => trusted.push(TrustedKey {
                    vendor: k.vendor.clone(),
                    id: key_id(&key),
                    key,
                }),
                Err(e) => errors.push(format!("trusted key of `{}`: {e}", k.vendor)),
            }
        }
        if errors.is_empty() {
            Ok(SigningPolicy {
                require_signed: config.require_signed,
                trusted,
            })
        } else {
            Err(errors)
        }
    }
}

/// The detached signature file.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SignatureFile {
    pub format: String,
    /// The plugin's name and version, as the vendor released it.
    pub plugin: String,
    pub version: String,
    /// Hex sha256 of the component.
    pub sha256: String,
    /// Which key signed (see [`key_id`]).
    pub key_id: String,
    /// Hex ed25519 signature.
    pub signature: String,
}

/// A signature that checked out.
#[derive(Clone, Debug, PartialEq)]
pub struct Verified {
    pub vendor: String,
    pub plugin: String,
    pub version: String,
    pub key_id: String,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SignatureError {
    #[error("is unsigned ({0} not found) and [signing] require_signed is set")]
    Unsigned(String),
    #[error("has an unreadable signature file {path}: {reason}")]
    Malformed { path: String, reason: String },
    #[error(
        "signature is for sha256 {signed}, but the component's sha256 is {actual}: the file was changed after signing"
    )]
    HashMismatch { signed: String, actual: String },
    #[error("is signed by key {0}, which is not among [signing] trusted_keys")]
    UnknownKey(String),
    #[error("has a signature that does not verify with the key of `{0}`")]
    BadSignature(String),
    #[error(
        "is signed as plugin `{signed}`, but loads as `{expected}`; a signature authorises only the plugin it names (set signed_name = \"{signed}\" if this entry is meant to run it)"
    )]
    NameMismatch { signed: String, expected: String },
    #[error("is signed as release {signed}, but the config requires version {expected}")]
    VersionMismatch { signed: String, expected: String },
    #[error("is signed as release {signed}, older than the config's min_version {min}")]
    TooOld { signed: String, min: String },
    #[error(
        "is signed as release `{0}`, which is not a version like 1.4.0, so it cannot meet version or min_version"
    )]
    UnreadableVersion(String),
    #[error(
        "is unsigned ({path} not found), but the config sets {field}, which only a signature can vouch for"
    )]
    UnsignedButBound { path: String, field: &'static str },
}

/// What a config entry demands of its component's signature: the plugin
/// name it must carry (the entry's `signed_name`, else its `name`) and
/// which releases may load.
#[derive(Clone, Copy, Debug)]
pub struct Binding<'a> {
    pub name: &'a str,
    /// Set when the entry names `signed_name` explicitly.
    pub explicit_name: bool,
    pub version: Option<&'a semver::Version>,
    pub min_version: Option<&'a semver::Version>,
}

impl Binding<'_> {
    /// # Errors
    /// The signature names another plugin, or a release the entry refuses.
    pub fn check(&self, v: &Verified) -> Result<(), SignatureError> {
        if v.plugin != self.name {
            return Err(SignatureError::NameMismatch {
                signed: v.plugin.clone(),
                expected: self.name.to_owned(),
            });
        }
        if self.version.is_none() && self.min_version.is_none() {
            return Ok(());
        }
        let signed = semver::Version::parse(&v.version)
            .map_err(|_| SignatureError::UnreadableVersion(v.version.clone()))?;
        if let Some(want) = self.version
            && signed != *want
        {
            return Err(SignatureError::VersionMismatch {
                signed: v.version.clone(),
                expected: want.to_string(),
            });
        }
        if let Some(min) = self.min_version
            && signed < *min
        {
            return Err(SignatureError::TooOld {
                signed: v.version.clone(),
                min: min.to_string(),
            });
        }
        Ok(())
    }

    /// The first field that needs a signature, when there is none.
    fn needs_signature(&self) -> Option<&'static str> {
        if self.explicit_name {
            Some("signed_name")
        } else if self.version.is_some() {
            Some("version")
        } else if self.min_version.is_some() {
            Some("min_version")
        } else {
            None
        }
    }
}

/// A signature file is a few hundred bytes; more is not one.
const MAX_SIGNATURE_BYTES: u64 = 64 << 10;

/// Why a key could not be read or made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not an imgate secret key: {source}")]
    NotSecret {
        path: String,
        source: crate::util::hex::HexError,
    },
    #[error("not an ed25519 public key: {0}")]
    NotPublic(String),
    #[error("no randomness: {0}")]
    NoRandomness(String),
}

/// Parses a public key written as 64 hex digits.
///
/// # Errors
/// Not hex of the right length, or not a valid ed25519 key.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, KeyError> {
    let bytes = crate::util::hex::decode::<32>(text.trim())
        .map_err(|e| KeyError::NotPublic(e.to_string()))?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| KeyError::NotPublic(e.to_string()))
}

pub fn public_key_hex(key: &VerifyingKey) -> String {
    crate::util::hex::encode(key.as_bytes())
}

/// A short, stable name for a public key: the first 16 hex digits of its
/// sha256.
pub fn key_id(key: &VerifyingKey) -> String {
    crate::util::hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// A new signing key from the OS's random source.
///
/// # Errors
/// The OS random source failed.
pub fn generate() -> Result<SigningKey, KeyError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| KeyError::NoRandomness(e.to_string()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Writes `BASE.key` (the secret, mode 0600) and `BASE.pub`.
///
/// # Errors
/// A file cannot be written, or `BASE.key` already exists (never
/// overwrite a key).
pub fn write_key_pair(base: &Path, key: &SigningKey) -> std::io::Result<(PathBuf, PathBuf)> {
    use std::io::Write as _;
    let secret = base.with_extension("key");
    let public = base.with_extension("pub");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&secret)?;
    writeln!(file, "{}", crate::util::hex::encode(&key.to_bytes()))?;
    std::fs::write(
        &public,
        format!("{}\n", public_key_hex(&key.verifying_key())),
    )?;
    Ok((secret, public))
}

/// Reads a secret key written by [`write_key_pair`].
///
/// # Errors
/// Unreadable, or not 64 hex digits.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, KeyError> {
    let text = crate::util::files::read_regular(path, 4096)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|source| KeyError::Read {
            path: path.display().to_string(),
            source,
        })?;
    let bytes =
        crate::util::hex::decode::<32>(text.trim()).map_err(|source| KeyError::NotSecret {
            path: path.display().to_string(),
            source,
        })?;
    Ok(SigningKey::from_bytes(&bytes))
}

fn message(plugin: &str, version: &str, sha256: &str) -> Vec<u8> {
    format!("{CONTEXT}\n{plugin}\n{version}\n{sha256}\n").into_bytes()
}

/// Signs a component's hash with its plugin name and version.
pub fn sign(key: &SigningKey, plugin: &str, version: &str, sha256: &str) -> SignatureFile {
    let signature = key.sign(&message(plugin, version, sha256));
    SignatureFile {
        format: FORMAT.into(),
        plugin: plugin.into(),
        version: version.into(),
        sha256: sha256.into(),
        key_id: key_id(&key.verifying_key()),
        signature: crate::util::hex::encode(&signature.to_bytes()),
    }
}

/// The signature file that belongs to a component: `FILE.wasm.sig`.
pub fn signature_path(component: &Path) -> PathBuf {
    let mut name = component.as_os_str().to_owned();
    name.push(".sig");
    PathBuf::from(name)
}

/// Whether a component and its `.sig` belong together: there is no `.sig`,
/// or it is whole and names the component's sha256. A deploy that copies
/// the `.wasm` before its `.sig` (or the reverse) is half done until then.
pub fn pair_agrees(component: &Path) -> bool {
    let sig = signature_path(component);
    let text = match std::fs::read_to_string(&sig) {
        Ok(text) => text,
        Err(e) => return e.kind() == std::io::ErrorKind::NotFound,
    };
    let Ok(file) = serde_json::from_str::<SignatureFile>(&text) else {
        return false;
    };
    std::fs::read(component)
        .is_ok_and(|bytes| file.sha256 == crate::util::hex::encode(&Sha256::digest(&bytes)))
}

/// Checks a signature file's text against the component's hash and the
/// trusted keys.
///
/// # Errors
/// See [`SignatureError`].
pub fn verify(
    path: &Path,
    text: &str,
    actual_sha256: &str,
    trusted: &[TrustedKey],
) -> Result<Verified, SignatureError> {
    let malformed = |reason: String| SignatureError::Malformed {
        path: path.display().to_string(),
        reason,
    };
    let sig: SignatureFile = serde_json::from_str(text).map_err(|e| malformed(e.to_string()))?;
    if sig.format != FORMAT {
        return Err(malformed(format!(
            "format is `{}`, expected `{FORMAT}`",
            sig.format
        )));
    }
    if sig.sha256 != actual_sha256 {
        return Err(SignatureError::HashMismatch {
            signed: sig.sha256,
            actual: actual_sha256.into(),
        });
    }
    let key = trusted
        .iter()
        .find(|k| k.id == sig.key_id)
        .ok_or_else(|| SignatureError::UnknownKey(sig.key_id.clone()))?;
    let bytes = crate::util::hex::decode::<64>(sig.signature.trim())
        .map_err(|e| malformed(format!("signature: {e}")))?;
    key.key
        .verify_strict(
            &message(&sig.plugin, &sig.version, &sig.sha256),
            &Signature::from_bytes(&bytes),
        )
        .map_err(|_| SignatureError::BadSignature(key.vendor.clone()))?;
    Ok(Verified {
        vendor: key.vendor.clone(),
        plugin: sig.plugin,
        version: sig.version,
        key_id: sig.key_id,
    })
}

/// The load-time check for one component. `binding` is what the config
/// entry demands of the signature; `None` only to read what a signature
/// says (`imgate plugin verify`), never to load.
///
/// # Errors
/// A present signature that does not verify, or a missing one when the
/// policy requires signatures.
pub fn check(
    policy: &SigningPolicy,
    component: &Path,
    sha256: &str,
    binding: Option<&Binding<'_>>,
) -> Result<Option<Verified>, SignatureError> {
    let path = signature_path(component);
    match crate::util::files::read_regular(&path, MAX_SIGNATURE_BYTES)
        .and_then(|b| String::from_utf8(b).map_err(std::io::Error::other))
    {
        Ok(text) => {
            let verified = verify(&path, &text, sha256, &policy.trusted)?;
            if let Some(binding) = binding {
                binding.check(&verified)?;
            }
            Ok(Some(verified))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if policy.require_signed {
                Err(SignatureError::Unsigned(path.display().to_string()))
            } else if let Some(field) = binding.and_then(|b| b.needs_signature()) {
                Err(SignatureError::UnsignedButBound {
                    path: path.display().to_string(),
                    field,
                })
            } else {
                Ok(None)
            }
        }
        Err(e) => Err(SignatureError::Malformed {
            path: path.display().to_string(),
            reason: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(key: &SigningKey, vendor: &str) -> TrustedKey {
        TrustedKey {
            vendor: vendor.into(),
            key: key.verifying_key(),
            id: key_id(&key.verifying_key()),
        }
    }

    const SHA: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn a_pair_agrees_when_the_sig_names_the_component() {
        let dir = tempfile::tempdir().unwrap();
        let component = dir.path().join("p.wasm");
        std::fs::write(&component, b"abc").unwrap();
        assert!(pair_agrees(&component), "no .sig: nothing to wait for");
        let key = generate().unwrap();
        let sig = serde_json::to_string(&sign(&key, "p", "1.0.0", SHA)).unwrap();
        std::fs::write(signature_path(&component), &sig).unwrap();
        assert!(pair_agrees(&component), "SHA is sha256(\"abc\")");
        std::fs::write(&component, b"abcd").unwrap();
        assert!(!pair_agrees(&component), "a new .wasm beside the old .sig");
        std::fs::write(&component, b"abc").unwrap();
        std::fs::write(signature_path(&component), &sig[..sig.len() / 2]).unwrap();
        assert!(!pair_agrees(&component), "a .sig half written");
    }

    #[test]
    fn a_signature_binds_its_plugin_name_and_release() {
        let v = Verified {
            vendor: "acme".into(),
            plugin: "dlp".into(),
            version: "1.4.2".into(),
            key_id: "k".into(),
        };
        let ver = |s: &str| semver::Version::parse(s).unwrap();
        fn bind<'a>(
            name: &'a str,
            version: Option<&'a semver::Version>,
            min: Option<&'a semver::Version>,
        ) -> Binding<'a> {
            Binding {
                name,
                explicit_name: false,
                version,
                min_version: min,
            }
        }
        assert!(bind("dlp", None, None).check(&v).is_ok());
        let e = bind("rc", None, None).check(&v).unwrap_err();
        assert!(
            e.to_string().contains("`dlp`") && e.to_string().contains("`rc`"),
            "{e}"
        );
        assert!(bind("dlp", Some(&ver("1.4.2")), None).check(&v).is_ok());
        let e = bind("dlp", Some(&ver("1.5.0")), None)
            .check(&v)
            .unwrap_err();
        assert!(
            e.to_string().contains("1.4.2") && e.to_string().contains("1.5.0"),
            "{e}"
        );
        assert!(bind("dlp", None, Some(&ver("1.4.0"))).check(&v).is_ok());
        let e = bind("dlp", None, Some(&ver("1.5.0")))
            .check(&v)
            .unwrap_err();
        assert!(matches!(e, SignatureError::TooOld { .. }), "{e}");
        let odd = Verified {
            version: "spring release".into(),
            ..v.clone()
        };
        assert!(matches!(
            bind("dlp", None, Some(&ver("1.0.0"))).check(&odd),
            Err(SignatureError::UnreadableVersion(_))
        ));
    }

    #[test]
    fn a_signature_verifies_and_names_vendor_plugin_and_version() {
        let key = generate().unwrap();
        let sig = sign(&key, "dlp", "1.2.0", SHA);
        let text = serde_json::to_string(&sig).unwrap();
        let v = verify(Path::new("x.sig"), &text, SHA, &[trusted(&key, "acme")]).unwrap();
        assert_eq!(v.vendor, "acme");
        assert_eq!((v.plugin.as_str(), v.version.as_str()), ("dlp", "1.2.0"));
    }

    #[test]
    fn every_way_to_fail_is_named() {
        let key = generate().unwrap();
        let other = generate().unwrap();
        let sig = sign(&key, "dlp", "1.2.0", SHA);
        let text = serde_json::to_string(&sig).unwrap();
        let path = Path::new("x.sig");
        let acme = [trusted(&key, "acme")];

        let other_sha = SHA.replace('b', "c");
        assert!(matches!(
            verify(path, &text, &other_sha, &acme),
            Err(SignatureError::HashMismatch { .. })
        ));
        assert!(matches!(
            verify(path, &text, SHA, &[trusted(&other, "evil")]),
            Err(SignatureError::UnknownKey(_))
        ));
        // The name and version are signed too: changing one breaks it.
        let mut renamed = sig.clone();
        renamed.version = "9.9.9".into();
        let renamed = serde_json::to_string(&renamed).unwrap();
        assert_eq!(
            verify(path, &renamed, SHA, &acme),
            Err(SignatureError::BadSignature("acme".into()))
        );
        assert!(matches!(
            verify(path, "{not json", SHA, &acme),
            Err(SignatureError::Malformed { .. })
        ));
    }

    #[test]
    fn keys_round_trip_through_files_and_hex() {
        let dir = tempfile::tempdir().unwrap();
        let key = generate().unwrap();
        let (secret, public) = write_key_pair(&dir.path().join("vendor"), &key).unwrap();
        assert_eq!(
            read_signing_key(&secret).unwrap().to_bytes(),
            key.to_bytes()
        );
        let pubkey = parse_public_key(&std::fs::read_to_string(public).unwrap()).unwrap();
        assert_eq!(pubkey, key.verifying_key());
        assert!(
            write_key_pair(&dir.path().join("vendor"), &key).is_err(),
            "never overwrites"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(parse_public_key("abc").is_err());
    }

    #[test]
    fn missing_signatures_are_fine_unless_required() {
        let dir = tempfile::tempdir().unwrap();
        let wasm = dir.path().join("p.wasm");
        let mut policy = SigningPolicy::default();
        assert_eq!(check(&policy, &wasm, SHA, None), Ok(None));
        policy.require_signed = true;
        assert!(matches!(
            check(&policy, &wasm, SHA, None),
            Err(SignatureError::Unsigned(_))
        ));
    }
}
