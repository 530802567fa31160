//! A new plugin author's first half hour, in each language, with the real
//! tools: `imgate plugin new` → `make test` (build, `imgate check`, replay
//! the transcript, whose expectations are checked) → `make sign` → the pair
//! copied beside a running `imgate run` that requires signatures → `POST
//! /reload` → `GET /plugins` shows the new build's sha256.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use imgate_tests::gateway::Imgate;
use imgate_tests::{ADMIN_TOKEN, admin_get, imgate_bin, workspace, write_config};

fn run(command: &mut Command) -> Output {
    let out = command.output().expect("run a command");
    assert!(
        out.status.success(),
        "{command:?}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `make -C project TARGET`, with this checkout's pinned language tools and
/// this build's imgate.
fn make(project: &Path, target: &[&str]) -> Command {
    let mut make = Command::new("make");
    make.arg("-s").arg("-C").arg(project).args(target);
    make.arg(format!("IMGATE={}", imgate_bin().display()));
    make.arg(format!(
        "COMPONENTIZE_PY={}",
        workspace()
            .join("target/sdk-tools/python/bin/componentize-py")
            .display()
    ));
    make.arg(format!(
        "COMPONENTIZE_JS={}",
        workspace()
            .join("sdk/js/node_modules/.bin/componentize-js")
            .display()
    ));
    make
}

fn sha256(path: &Path) -> String {
    imgate::plugins::sha256_hex(&std::fs::read(path).expect("read the component"))
}

/// `POST /reload` on the admin API; the status code.
fn reload(port: u16) -> u16 {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).expect("admin API");
    write!(
        c,
        "POST /reload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = String::new();
    c.read_to_string(&mut out).expect("read");
    out.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn running_sha(port: u16) -> String {
    let plugins: serde_json::Value =
        serde_json::from_str(&admin_get(port, "/plugins")).expect("GET /plugins");
    plugins["plugins"][0]["sha256"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The whole path for one language; `source` is the file the author edits,
/// `wasm` where `make build` leaves the component.
fn author(lang: &str, source: &str, wasm: &str) {
    let work = tempfile::tempdir().expect("tempdir");
    let project = work.path().join("word-guard");
    let out = run(Command::new(imgate_bin()).args([
        "plugin",
        "new",
        "word-guard",
        "--lang",
        lang,
        "--dir",
        project.to_str().expect("path"),
    ]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("make test"));
    let world = project.join("wit/world.wit");
    if lang != "rust" {
        let world = std::fs::read_to_string(world).expect("world.wit");
        assert!(world.contains("import imgate:policy/match@"), "{world}");
        assert!(!world.contains("/kv@"), "only what was asked for: {world}");
    }

    // The loop: build, check, replay the transcript against its expectations.
    let out = run(&mut make(&project, &["test"]));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("4 of 4 expectations met"), "{said}");

    // The test can fail: an expectation the plugin does not meet.
    let transcript = project.join("transcript.jsonl");
    let good = std::fs::read_to_string(&transcript).expect("transcript");
    let wrong = good.replacen("\"expect\":\"block\"", "\"expect\":\"allow\"", 1);
    assert_ne!(wrong, good);
    std::fs::write(&transcript, &wrong).expect("write");
    let out = make(&project, &["test"]).output().expect("make test");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a missed expectation fails: {said}");
    assert!(
        said.contains("expected action \"allow\", got \"block\"")
            && said.contains("3 of 4 expectations met"),
        "{said}"
    );
    std::fs::write(&transcript, &good).expect("write");

    // Sign in the build directory.
    let key = work.path().join("acme");
    let out = run(Command::new(imgate_bin())
        .arg("keygen")
        .arg("--out")
        .arg(&key));
    assert!(String::from_utf8_lossy(&out.stdout).contains("[[signing.trusted_keys]]"));
    let public = std::fs::read_to_string(work.path().join("acme.pub")).expect("acme.pub");
    let key_file = format!("KEY={}", work.path().join("acme.key").display());
    run(&mut make(&project, &["sign", &key_file, "VERSION=1.0.0"]));
    let built = project.join(wasm);
    let deploy = |dir: &Path| {
        std::fs::copy(&built, dir.join("word-guard.wasm")).expect("copy the .wasm");
        let mut sig = built.clone().into_os_string();
        sig.push(".sig");
        std::fs::copy(PathBuf::from(sig), dir.join("word-guard.wasm.sig")).expect("copy the .sig");
    };

    // A gateway that requires signatures, with release 1.0.0.
    let plugins = tempfile::tempdir().expect("tempdir");
    deploy(plugins.path());
    let config = write_config(&format!(
        r#"
[runtime]
cache_dir = "{{cache}}"

[admin]
listen = "127.0.0.1:0"

[reload]
watch = false

[signing]
require_signed = true
[[signing.trusted_keys]]
vendor = "acme"
key = "{}"

[[plugins]]
name = "word-guard"
path = "{}"
grants = ["match"]
[plugins.config]
words = ["confidential"]
"#,
        public.trim(),
        plugins.path().join("word-guard.wasm").display()
    ));
    let gw = Imgate::start(&config, &[("IMGATE_ADMIN_TOKEN", ADMIN_TOKEN)]);
    let port = gw.admin.expect("admin API").port();
    let first = running_sha(port);
    assert_eq!(first, sha256(&built));

    // Release 1.0.1: an edit, a build, a signature, the pair copied, a reload.
    let source = project.join(source);
    let text = std::fs::read_to_string(&source).expect("source");
    let edited = text.replace("message blocked: it contains", "stopped: it contains");
    assert_ne!(
        edited,
        text,
        "{lang}: the reason is in {}",
        source.display()
    );
    std::fs::write(&source, edited).expect("write");
    run(&mut make(&project, &["sign", &key_file, "VERSION=1.0.1"]));
    let second = sha256(&built);
    assert_ne!(second, first);
    deploy(plugins.path());
    assert_eq!(reload(port), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while running_sha(port) != second {
        assert!(Instant::now() < deadline, "{lang}: the new build never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_rust_plugin_from_new_to_a_hot_reload() {
    author(
        "rust",
        "src/lib.rs",
        "target/wasm32-wasip2/release/word_guard.wasm",
    );
}

#[test]
fn a_python_plugin_from_new_to_a_hot_reload() {
    author("python", "app.py", "word-guard.wasm");
}

#[test]
fn a_javascript_plugin_from_new_to_a_hot_reload() {
    author("js", "word-guard.js", "word-guard.wasm");
}

/// Each guide shows the worked example CI builds and tests, verbatim.
#[test]
fn the_guides_show_the_examples_ci_builds() {
    for (guide, example) in [
        ("sdk/README.md", "sdk/examples/link_guard.rs"),
        (
            "sdk/python/README.md",
            "sdk/python/examples/link_guard/app.py",
        ),
        (
            "sdk/python/README.md",
            "sdk/python/examples/link_guard/wit/world.wit",
        ),
        (
            "sdk/js/README.md",
            "sdk/js/examples/link-guard/link-guard.js",
        ),
        (
            "sdk/js/README.md",
            "sdk/js/examples/link-guard/wit/world.wit",
        ),
    ] {
        let text = std::fs::read_to_string(workspace().join(guide)).expect("guide");
        let code = std::fs::read_to_string(workspace().join(example)).expect("example");
        assert!(
            text.contains(code.trim_end()),
            "{guide} does not show {example} as it is"
        );
        assert!(text.contains("## Ship it"), "{guide} ends in shipping");
    }
}
