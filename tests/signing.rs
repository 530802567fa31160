//! Signed plugins end to end with the `imgate` binary: keygen, sign,
//! verify, and the config's trust policy at load.

use std::path::Path;
use std::process::Command;

use imgate_tests::{imgate_bin, wasm};

fn imgate(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(imgate_bin())
        .args(args)
        .output()
        .expect("run imgate");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A temp dir holding a vendor key pair and a copy of keyword-block.
struct Vendor {
    dir: tempfile::TempDir,
}

impl Vendor {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (ok, out, err) = imgate(&["keygen", "--out", s(&dir.path().join("acme"))]);
        assert!(ok, "{err}");
        assert!(out.contains("[[signing.trusted_keys]]"), "{out}");
        std::fs::copy(wasm("keyword_block"), dir.path().join("kw.wasm")).unwrap();
        Vendor { dir }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn public_hex(&self) -> String {
        std::fs::read_to_string(self.path("acme.pub"))
            .unwrap()
            .trim()
            .to_owned()
    }

    fn sign(&self) {
        self.sign_as("kw.wasm", "keyword-block", "1.0.0");
    }

    fn sign_as(&self, file: &str, name: &str, version: &str) {
        let (ok, out, err) = imgate(&[
            "plugin",
            "sign",
            "--key",
            s(&self.path("acme.key")),
            "--name",
            name,
            "--version",
            version,
            s(&self.path(file)),
        ]);
        assert!(ok, "{err}");
        assert!(out.contains(&format!("{file}.sig")), "{out}");
    }

    fn config(&self, require: bool, key: &str) -> std::path::PathBuf {
        self.config_with(require, key, "")
    }

    /// `entry`: more keys of the plugin's entry (`version = "…"`).
    fn config_with(&self, require: bool, key: &str, entry: &str) -> std::path::PathBuf {
        let path = self.path("imgate.toml");
        std::fs::write(
            &path,
            format!(
                r#"
[runtime]
cache_dir = ""

[signing]
require_signed = {require}

[[signing.trusted_keys]]
vendor = "acme"
key = "{key}"

[[plugins]]
name = "keyword-block"
path = "kw.wasm"
{entry}
[plugins.config]
words = ["secret"]
"#
            ),
        )
        .unwrap();
        path
    }
}

#[test]
fn a_signed_component_verifies_and_loads_under_require_signed() {
    let v = Vendor::new();
    v.sign();
    let (ok, out, err) = imgate(&[
        "plugin",
        "verify",
        "--pub",
        s(&v.path("acme.pub")),
        s(&v.path("kw.wasm")),
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("keyword-block 1.0.0 signed by"), "{out}");
    let config = v.config(true, &v.public_hex());
    let (ok, out, err) = imgate(&["check", "--config", s(&config)]);
    assert!(ok, "{err}");
    assert!(
        out.contains("signed by acme (keyword-block 1.0.0)"),
        "{out}"
    );
}

#[test]
fn a_component_changed_after_signing_is_refused() {
    let v = Vendor::new();
    v.sign();
    let mut bytes = std::fs::read(v.path("kw.wasm")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(v.path("kw.wasm"), bytes).unwrap();
    let (ok, _, err) = imgate(&[
        "plugin",
        "verify",
        "--pub",
        s(&v.path("acme.pub")),
        s(&v.path("kw.wasm")),
    ]);
    assert!(!ok);
    assert!(err.contains("changed after signing"), "{err}");
    // Even without require_signed: a signature that is present is checked.
    let config = v.config(false, &v.public_hex());
    let (ok, _, err) = imgate(&["check", "--config", s(&config)]);
    assert!(!ok);
    assert!(
        err.contains("plugin `keyword-block`") && err.contains("changed after signing"),
        "{err}"
    );
}

#[test]
fn unsigned_or_unknown_signers_are_refused_when_signatures_are_required() {
    let v = Vendor::new();
    let config = v.config(true, &v.public_hex());
    let (ok, _, err) = imgate(&["check", "--config", s(&config)]);
    assert!(!ok);
    assert!(
        err.contains("plugin `keyword-block`") && err.contains("is unsigned"),
        "{err}"
    );

    // Signed, but by a key the operator does not trust.
    v.sign();
    let other = tempfile::tempdir().unwrap();
    let (ok, _, _) = imgate(&["keygen", "--out", s(&other.path().join("other"))]);
    assert!(ok);
    let other_key = std::fs::read_to_string(other.path().join("other.pub")).unwrap();
    let config = v.config(true, other_key.trim());
    let (ok, _, err) = imgate(&["check", "--config", s(&config)]);
    assert!(!ok);
    assert!(err.contains("not among [signing] trusted_keys"), "{err}");

    // Without require_signed an unsigned component still loads.
    std::fs::remove_file(v.path("kw.wasm.sig")).unwrap();
    let config = v.config(false, &v.public_hex());
    let (ok, out, err) = imgate(&["check", "--config", s(&config)]);
    assert!(ok, "{err}");
    assert!(out.contains("unsigned"), "{out}");
}

#[test]
fn a_bad_trusted_key_is_a_config_problem() {
    let v = Vendor::new();
    let config = v.config(true, "not-a-key");
    let (ok, _, err) = imgate(&["check", "--config", s(&config)]);
    assert!(!ok);
    assert!(err.contains("[signing]: trusted key of `acme`"), "{err}");
}

#[test]
fn a_signature_loads_only_under_the_name_it_signs() {
    // The attack: a vendor-signed allow-all with its .sig copied over the
    // files of the vendor's signed DLP plugin, then a reload.
    let v = Vendor::new();
    v.sign();
    std::fs::copy(wasm("allow_all"), v.path("allow.wasm")).unwrap();
    v.sign_as("allow.wasm", "allow-all", "1.0.0");
    std::fs::copy(v.path("allow.wasm"), v.path("kw.wasm")).unwrap();
    std::fs::copy(v.path("allow.wasm.sig"), v.path("kw.wasm.sig")).unwrap();
    let config = v.config(true, &v.public_hex());
    let (ok, out, err) = imgate(&["check", "--config", s(&config)]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("plugin `keyword-block`")
            && err.contains("signed as plugin `allow-all`")
            && err.contains("loads as `keyword-block`"),
        "{err}"
    );
    assert!(!out.contains("ok    keyword-block"), "{out}");
    // Naming it on purpose is allowed.
    let config = v.config_with(true, &v.public_hex(), "signed_name = \"allow-all\"");
    let (ok, _, err) = imgate(&["check", "--config", s(&config)]);
    assert!(ok, "{err}");
}

#[test]
fn version_and_min_version_refuse_other_releases() {
    let v = Vendor::new();
    v.sign_as("kw.wasm", "keyword-block", "1.2.0");
    let check = |entry: &str| {
        let config = v.config_with(true, &v.public_hex(), entry);
        imgate(&["check", "--config", s(&config)])
    };
    assert!(check("version = \"1.2.0\"").0);
    assert!(check("min_version = \"1.1.0\"").0);
    let (ok, _, err) = check("version = \"1.3.0\"");
    assert!(!ok);
    assert!(
        err.contains("release 1.2.0") && err.contains("version 1.3.0"),
        "{err}"
    );
    // An older signed release, put back in place, is refused.
    let (ok, _, err) = check("min_version = \"1.2.1\"");
    assert!(!ok);
    assert!(
        err.contains("1.2.0") && err.contains("min_version 1.2.1"),
        "{err}"
    );
    // Unsigned, a version cannot be vouched for.
    std::fs::remove_file(v.path("kw.wasm.sig")).unwrap();
    let config = v.config_with(false, &v.public_hex(), "min_version = \"1.0.0\"");
    let (ok, _, err) = imgate(&["check", "--config", s(&config)]);
    assert!(!ok);
    assert!(
        err.contains("is unsigned") && err.contains("min_version"),
        "{err}"
    );
}

#[test]
fn a_device_or_fifo_as_plugin_path_is_refused_at_once() {
    let v = Vendor::new();
    let config = v.path("imgate.toml");
    std::fs::write(
        &config,
        "[runtime]\ncache_dir = \"\"\n[[plugins]]\nname = \"zero\"\npath = \"/dev/zero\"\n",
    )
    .unwrap();
    let started = std::time::Instant::now();
    let (ok, _, err) = imgate(&["check", "--config", s(&config)]);
    assert!(!ok);
    assert!(err.contains("not a regular file"), "{err}");
    let fifo = v.path("fifo.wasm");
    if Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success())
    {
        std::fs::write(
            &config,
            "[runtime]\ncache_dir = \"\"\n[[plugins]]\nname = \"fifo\"\npath = \"fifo.wasm\"\n",
        )
        .unwrap();
        let (ok, _, err) = imgate(&["check", "--config", s(&config)]);
        assert!(!ok);
        assert!(err.contains("not a regular file"), "{err}");
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn check_prints_no_ok_for_a_refused_entry() {
    let v = Vendor::new();
    let config = v.path("imgate.toml");
    std::fs::write(
        &config,
        "[runtime]\ncache_dir = \"\"\n[[plugins]]\nname = \"Bad Name\"\npath = \"kw.wasm\"\n[plugins.config]\nwords = [\"x\"]\n",
    )
    .unwrap();
    let (ok, out, err) = imgate(&["check", "--config", s(&config)]);
    assert!(!ok);
    assert!(err.contains("name must be"), "{err}");
    assert!(!out.contains("ok "), "{out}");
}
