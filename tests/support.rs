//! Shared helpers for the cross-process tests: where the built plugin
//! components and the `imgate` binary are, and how to start a runtime
//! from a config written on the fly.
//!
//! The components are built by `make plugins` (run by `make test`).

use std::path::{Path, PathBuf};

#[path = "support/bridge.rs"]
pub mod bridge;
#[path = "support/gateway.rs"]
pub mod gateway;
#[path = "support/ngircd.rs"]
pub mod ngircd;
#[path = "support/postgres.rs"]
pub mod postgres;
#[path = "support/prosody.rs"]
pub mod prosody;
#[path = "support/proxy_bench.rs"]
pub mod proxy_bench;
#[path = "support/rawxmpp.rs"]
pub mod rawxmpp;
#[path = "support/synapse.rs"]
pub mod synapse;

use imgate::event::json::{EventDoc, MessageDoc};
use imgate::{Config, Event, Runtime};

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Path of a built plugin component, e.g. `wasm("keyword_block")`.
pub fn wasm(name: &str) -> PathBuf {
    let path = workspace()
        .join("target/wasm32-wasip2/plugin")
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: build the plugins first with `make plugins`",
        path.display()
    );
    path
}

/// The `imgate` binary next to this test executable's profile directory,
/// or `$IMGATE_BIN` (a bench comparing another build).
pub fn imgate_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("IMGATE_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let bin = profile_dir.join("imgate");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build --release -p imgate` (make test does)",
        bin.display()
    );
    bin
}

/// A compiled-artifact cache shared by every test run, for components that
/// take seconds to compile (Python, JavaScript). Safe to share: artifacts
/// are keyed by the component's sha256 and the engine's build.
pub fn shared_cache() -> PathBuf {
    workspace().join("target/imgate-test-cache")
}

/// A component built against an earlier contract and committed under
/// `tests/fixtures/contract-<CONTRACT>/` (never rebuilt; gzipped when
/// large), checked against that folder's `SHA256SUMS` and unpacked under
/// `target/golden/`. Returns the `.wasm`'s path.
pub fn golden(contract: &str, name: &str) -> PathBuf {
    use sha2::Digest;
    let dir = workspace().join(format!("tests/fixtures/contract-{contract}"));
    let file = format!("{name}.wasm");
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).expect("SHA256SUMS");
    let want = sums
        .lines()
        .find_map(|l| l.strip_suffix(&format!("  {file}")))
        .unwrap_or_else(|| panic!("{file} is not in {}/SHA256SUMS", dir.display()))
        .to_owned();
    let bytes = match std::fs::read(dir.join(&file)) {
        Ok(b) => b,
        Err(_) => {
            let gz = std::fs::File::open(dir.join(format!("{file}.gz")))
                .unwrap_or_else(|e| panic!("{file}(.gz) in {}: {e}", dir.display()));
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut out)
                .expect("gunzip a golden component");
            out
        }
    };
    let got: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(got, want, "{file} is not the committed golden component");
    let unpacked = workspace().join(format!("target/golden/contract-{contract}"));
    std::fs::create_dir_all(&unpacked).expect("target/golden");
    let path = unpacked.join(&file);
    if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
        // Tests run in parallel: write aside, then rename into place.
        let tmp = unpacked.join(format!(
            "{file}.{}.{:?}.tmp",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&tmp, &bytes).expect("unpack a golden component");
        std::fs::rename(&tmp, &path).expect("unpack a golden component");
    }
    path
}

/// A config file in a fresh temp dir; `{wasm:NAME}` in `toml` is replaced
/// by the component's absolute path, `{golden-0.1.0:NAME}` by the golden
/// 0.1.0 component's (see [`golden`]) and `{cache}` by [`shared_cache`].
pub struct TestConfig {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

pub fn write_config(toml: &str) -> TestConfig {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = toml.to_owned();
    while let Some(start) = text.find("{wasm:") {
        let end = start + text[start..].find('}').expect("closing brace");
        let name = &text[start + 6..end];
        let path = wasm(name).display().to_string();
        text.replace_range(start..=end, &path);
    }
    while let Some(start) = text.find("{golden-") {
        let end = start + text[start..].find('}').expect("closing brace");
        let (contract, name) = text[start + 8..end]
            .split_once(':')
            .expect("{golden-VERSION:NAME}");
        let path = golden(contract, name).display().to_string();
        text.replace_range(start..=end, &path);
    }
    let text = text.replace("{cache}", &shared_cache().display().to_string());
    let path = dir.path().join("imgate.toml");
    std::fs::write(&path, text).expect("write config");
    TestConfig { dir, path }
}

/// Loads the config and starts the runtime, panicking with every problem.
pub fn start(toml: &str) -> (TestConfig, Runtime) {
    let cfg = write_config(toml);
    let config = Config::load(&cfg.path).unwrap_or_else(|e| panic!("{e}"));
    let runtime = Runtime::start(&config).unwrap_or_else(|e| panic!("{e}"));
    (cfg, runtime)
}

/// `imgate replay --config CONFIG EVENTS`, which must succeed; returns
/// one JSON verdict per event.
pub fn replay(config: &Path, events: &Path) -> Vec<serde_json::Value> {
    replay_with(config, events, &[]).0
}

/// [`replay`] with extra environment variables; also returns its stderr
/// (the log).
pub fn replay_with(
    config: &Path,
    events: &Path,
    env: &[(&str, &str)],
) -> (Vec<serde_json::Value>, String) {
    let out = std::process::Command::new(imgate_bin())
        .args(["replay", "--config"])
        .arg(config)
        .arg(events)
        .envs(env.iter().copied())
        .output()
        .expect("run imgate replay");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "imgate replay failed: {stderr}");
    let verdicts = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON verdict per line"))
        .collect();
    (verdicts, stderr)
}

/// One replayed event's outcome: the parts compared across builds of a plugin.
#[derive(Debug, PartialEq)]
pub struct Outcome {
    pub event: String,
    pub action: String,
    pub reason: Option<String>,
    pub tags: Vec<String>,
}

/// `imgate replay` of `transcript` through one plugin at `path` (a config
/// placeholder such as `{wasm:NAME}`) with `grants` and the TOML lines
/// `settings` under `[plugins.config]`. A plugin failure would be answered
/// by its failure policy and could look like a verdict; there must be none.
pub fn replay_outcomes(
    path: &str,
    grants: &str,
    settings: &str,
    transcript: &Path,
) -> Vec<Outcome> {
    let cfg = write_config(&format!(
        r#"
[runtime]
cache_dir = "{{cache}}"

[[plugins]]
name = "plugin"
path = "{path}"
grants = {grants}
# Verdicts are compared here, not speed: room for a loaded CI machine.
deadline_ms = 1000

[plugins.config]
{settings}
"#
    ));
    let (verdicts, stderr) = replay_with(&cfg.path, transcript, &[]);
    assert!(!stderr.contains("plugin call failed"), "{path}: {stderr}");
    verdicts
        .iter()
        .map(|v| Outcome {
            event: v["event"].as_str().unwrap_or_default().to_owned(),
            action: v["action"].as_str().unwrap_or_default().to_owned(),
            reason: v["reason"].as_str().map(str::to_owned),
            tags: serde_json::from_value(v["tags"].clone()).unwrap_or_default(),
        })
        .collect()
}

/// A self-signed certificate for `names`, written as `gateway.crt` and
/// `gateway.key` beside the config (where test configs point `cert` and
/// `key`); returns the certificate's path, for clients to trust.
pub fn gateway_cert(config: &TestConfig, names: &[&str]) -> PathBuf {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let (cert, key) = imgate::tls::self_signed(&names).expect("certificate");
    let cert_path = config.dir.path().join("gateway.crt");
    std::fs::write(&cert_path, cert).expect("write certificate");
    std::fs::write(config.dir.path().join("gateway.key"), key).expect("write key");
    cert_path
}

/// Resident memory of process `pid`, in KiB (Linux: `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS for {pid}"))
}

/// An outbound XMPP message with `body`.
pub fn message(body: &str) -> Event {
    EventDoc {
        network: "xmpp".into(),
        message: Some(MessageDoc {
            sender: "alice@corp.example".into(),
            recipient: "bob@example.net".into(),
            body: body.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
    .into_event("test", 0)
    .expect("a message event")
}

/// For the hostile plugins (Rust, Python, JavaScript; the body picks the
/// attack): runs `body`, then a clean message, which a fresh instance must
/// serve (tagged `hostile:served`). Returns the attack's decision and how
/// long it took.
pub fn attack(runtime: &Runtime, body: &str) -> (imgate::Decision, std::time::Duration) {
    let started = std::time::Instant::now();
    let decision = runtime.chain.evaluate(message(body));
    let took = started.elapsed();
    let next = runtime.chain.evaluate(message("hello"));
    assert_eq!(
        next.verdict.action,
        imgate::Action::Allow,
        "next event after {body}: {:?}",
        next.failures
    );
    assert!(
        next.verdict.tags.contains(&"hostile:served".to_string()),
        "next event after {body} was served by a fresh instance: {:?}",
        next.verdict
    );
    (decision, took)
}

/// The first plugin failure a decision recorded.
pub fn failure(d: &imgate::Decision) -> &imgate::CallFailure {
    &d.failures.first().expect("a recorded failure").failure
}

/// The admin token the gateways of the tests are started with.
pub const ADMIN_TOKEN: &str = "t0ken-for-tests";

/// The body of an authenticated GET to the admin API on `port`.
pub fn admin_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).expect("admin API");
    c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    c.write_all(
        format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
             Connection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .expect("write");
    let mut out = String::new();
    c.read_to_string(&mut out).expect("read");
    out.split_once("\r\n\r\n")
        .map_or(out.clone(), |(_, b)| b.to_owned())
}

/// A TCP port free on loopback right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Debian's Python, which has python3-slixmpp and python3-irc; the first
/// `python3` on PATH may be another one.
pub fn system_python() -> PathBuf {
    PathBuf::from("/usr/bin/python3")
}

/// Every record of the archive at `path` (the SQLite store), as JSON,
/// oldest first; empty when there is none yet.
pub fn archive_records(path: &Path) -> Vec<serde_json::Value> {
    match imgate::archive::Store::open_read_only(path) {
        Ok(store) => store
            .search(&Default::default())
            .expect("archive search")
            .iter()
            .map(|e| serde_json::to_value(e).expect("an entry is JSON"))
            .collect(),
        Err(_) => Vec::new(),
    }
}
