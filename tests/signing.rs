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
        let (ok, out, err) = imgate(&[
            "plugin",
            "sign",
            "--key",
            s(&self.path("acme.key")),
            "--name",
            "keyword-block",
            "--version",
            "1.0.0",
            s(&self.path("kw.wasm")),
        ]);
        assert!(ok, "{err}");
        assert!(out.contains("kw.wasm.sig"), "{out}");
    }

    fn config(&self, require: bool, key: &str) -> std::path::PathBuf {
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
name = "kw"
path = "kw.wasm"
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
        err.contains("plugin `kw`") && err.contains("changed after signing"),
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
        err.contains("plugin `kw`") && err.contains("is unsigned"),
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
