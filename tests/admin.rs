//! `imgate run` as operators run it: the admin API (bearer token, every
//! endpoint), and the three reload triggers (admin, file watch, SIGHUP),
//! against the real binary over raw HTTP.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use imgate_tests::{imgate_bin, wasm};

const TOKEN: &str = "s3cret-admin-token";

fn write_config(path: &Path, tag: &str, extra: &str) {
    std::fs::write(
        path,
        format!(
            r#"
[runtime]
cache_dir = "cache"

[admin]
listen = "127.0.0.1:0"

[reload]
debounce_ms = 150

[[plugins]]
name = "versioned"
path = "scripted.wasm"
grants = ["log", "kv", "metrics"]
[plugins.config]
tag = "{tag}"
{extra}
"#
        ),
    )
    .unwrap();
}

struct Gateway {
    child: Child,
    port: u16,
    log: mpsc::Receiver<String>,
}

impl Gateway {
    fn start(config: &Path) -> Gateway {
        let mut child = Command::new(imgate_bin())
            .args(["run", "--config", config.to_str().unwrap()])
            .env("IMGATE_ADMIN_TOKEN", TOKEN)
            .env("IMGATE_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        // Owned by the struct before anything can fail, so a failed wait
        // still kills the child (Drop).
        let mut gateway = Gateway {
            child,
            port: 0,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        gateway.port = loop {
            let line = gateway
                .log
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("imgate run did not report its admin listener");
            if line.contains("admin API listening") {
                let addr = line
                    .split("listen=")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .unwrap();
                break addr.rsplit(':').next().unwrap().parse().unwrap();
            }
        };
        gateway
    }

    fn request(&self, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
        let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
        (status, body)
    }

    fn get_json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.request("GET", path, Some(TOKEN));
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    fn generation(&self) -> u64 {
        self.get_json("/readyz")["generation"].as_u64().unwrap()
    }

    fn wait_for_generation(&self, want: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.generation() != want {
            assert!(Instant::now() < deadline, "generation never reached {want}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name}");
    }

    /// Every log line so far.
    fn drain_log(&self) -> Vec<String> {
        self.log.try_iter().collect()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_admin_api_and_every_reload_trigger() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(wasm("test_scripted"), dir.path().join("scripted.wasm")).unwrap();
    let config = dir.path().join("imgate.toml");
    write_config(&config, "v1", "");
    let mut gw = Gateway::start(&config);

    // Authentication.
    assert_eq!(gw.request("GET", "/healthz", None).0, 401);
    assert_eq!(gw.request("GET", "/healthz", Some("wrong")).0, 401);
    assert_eq!(gw.request("POST", "/reload", None).0, 401);
    let (status, body) = gw.request("GET", "/healthz", Some(TOKEN));
    assert_eq!((status, body.trim()), (200, "ok"));

    // What is running.
    let plugins = gw.get_json("/plugins");
    assert_eq!(plugins["generation"], 1);
    let p = &plugins["plugins"][0];
    assert_eq!(p["name"], "versioned");
    assert_eq!(p["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(p["grants"], serde_json::json!(["log", "kv", "metrics"]));
    assert_eq!(p["limits"]["deadline_ms"], 10);
    assert_eq!(p["status"], "ok");
    assert_eq!(
        gw.get_json("/connections"),
        serde_json::json!({"adapters": {}})
    );
    let (status, metrics) = gw.request("GET", "/metrics", Some(TOKEN));
    assert_eq!(status, 200);
    assert!(
        metrics.contains("imgate_plugin_calls_total{plugin=\"versioned\"}"),
        "{metrics}"
    );
    assert_eq!(gw.request("GET", "/nope", Some(TOKEN)).0, 404);
    assert_eq!(gw.request("GET", "/reload", Some(TOKEN)).0, 405);

    // Trigger 1: the admin API.
    let (status, body) = gw.request("POST", "/reload", Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["generation"],
        2
    );

    // Trigger 2: the file watch, after the debounce.
    write_config(&config, "v2", "");
    gw.wait_for_generation(3);

    // Trigger 3: SIGHUP.
    gw.signal("HUP");
    gw.wait_for_generation(4);

    // A bad config: the watch tries, fails, and the chain stays.
    write_config(&config, "v3", "no_such_setting = 1");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let plugins = gw.get_json("/plugins");
        if plugins["reloads"]["failed"].as_u64().unwrap() >= 1 {
            assert_eq!(plugins["generation"], 4);
            let error = plugins["reloads"]["last_error"].as_str().unwrap();
            assert!(
                error.contains("refused to initialise") && error.contains("no_such_setting"),
                "{error}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the failed reload was never reported"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, body) = gw.request("POST", "/reload", Some(TOKEN));
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("no_such_setting"), "{body}");
    assert_eq!(gw.generation(), 4);
    let metrics = gw.request("GET", "/metrics", Some(TOKEN)).1;
    assert!(
        metrics.contains("imgate_reloads_total{result=\"ok\"} 3"),
        "{metrics}"
    );

    // Every admin request is logged with who made it.
    let log = gw.drain_log();
    assert!(
        log.iter().any(|l| l.contains("admin request")
            && l.contains("peer=127.0.0.1")
            && l.contains("status=401")),
        "{log:#?}"
    );

    // SIGTERM stops it cleanly.
    gw.signal("TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = gw.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "imgate run did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

/// `component` with a custom section appended: another build, the same
/// behaviour, another sha256.
fn rebuilt(component: &[u8], note: &str) -> Vec<u8> {
    let mut section = vec![4u8];
    section.extend_from_slice(b"note");
    section.extend_from_slice(note.as_bytes());
    let mut out = component.to_vec();
    out.push(0); // a custom section
    out.push(section.len() as u8);
    out.extend_from_slice(&section);
    out
}

/// `imgate ARGS`, which must succeed; its stdout.
fn imgate(args: &[&str]) -> String {
    let out = Command::new(imgate_bin()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "imgate {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Deploying a signed plugin as the guides show, one file at a time (sign
/// in the build directory, copy the `.wasm`, then seconds later its
/// `.sig`), is not a failed reload: the watch waits for the pair to agree,
/// then reloads once, to the new build.
#[test]
fn the_file_watch_waits_for_a_signed_pair_to_agree() {
    let build = tempfile::tempdir().unwrap();
    let deploy = tempfile::tempdir().unwrap();
    let at =
        |dir: &tempfile::TempDir, name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    imgate(&["keygen", "--out", &at(&build, "acme")]);
    let public = std::fs::read_to_string(build.path().join("acme.pub")).unwrap();
    let sign = |file: &str| {
        imgate(&[
            "plugin",
            "sign",
            "--key",
            &at(&build, "acme.key"),
            "--name",
            "versioned",
            "--version",
            "1.0.0",
            &at(&build, file),
        ]);
    };
    let v1 = std::fs::read(wasm("test_scripted")).unwrap();
    let v2 = rebuilt(&v1, "v2");
    std::fs::write(build.path().join("v1.wasm"), &v1).unwrap();
    std::fs::write(build.path().join("v2.wasm"), &v2).unwrap();
    sign("v1.wasm");
    sign("v2.wasm");
    let copy = |from: &str, to: &str| {
        std::fs::copy(build.path().join(from), deploy.path().join(to)).unwrap();
    };
    copy("v1.wasm", "scripted.wasm");
    copy("v1.wasm.sig", "scripted.wasm.sig");
    let config = deploy.path().join("imgate.toml");
    let signing = format!(
        "[signing]\nrequire_signed = true\n[[signing.trusted_keys]]\nvendor = \"acme\"\nkey = \"{}\"\n",
        public.trim()
    );
    write_config(&config, "v1", &signing);
    let gw = Gateway::start(&config);
    let sha = |gw: &Gateway| {
        gw.get_json("/plugins")["plugins"][0]["sha256"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(sha(&gw), imgate::plugins::sha256_hex(&v1));
    let generation = gw.generation();

    copy("v2.wasm", "scripted.wasm");
    // Ten debounces with the new .wasm beside the old .sig.
    std::thread::sleep(Duration::from_millis(1500));
    let plugins = gw.get_json("/plugins");
    assert_eq!(plugins["generation"], generation, "no reload yet");
    assert_eq!(plugins["reloads"]["failed"], 0, "{plugins}");
    copy("v2.wasm.sig", "scripted.wasm.sig");
    gw.wait_for_generation(generation + 1);
    assert_eq!(sha(&gw), imgate::plugins::sha256_hex(&v2));
    let plugins = gw.get_json("/plugins");
    assert_eq!(plugins["reloads"]["failed"], 0, "{plugins}");
    let log = gw.drain_log();
    assert!(
        log.iter()
            .any(|l| l.contains("waiting for the .wasm and its .sig to agree")),
        "{log:#?}"
    );
    assert!(!log.iter().any(|l| l.contains("ERROR")), "{log:#?}");
}

#[test]
fn run_refuses_an_admin_api_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(wasm("test_scripted"), dir.path().join("scripted.wasm")).unwrap();
    let config = dir.path().join("imgate.toml");
    write_config(&config, "v1", "");
    let out = Command::new(imgate_bin())
        .args(["run", "--config", config.to_str().unwrap()])
        .env_remove("IMGATE_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[admin] has no token"), "{err}");
}

#[test]
fn plain_http_beyond_loopback_is_warned_about_and_tls_or_loopback_is_not() {
    let start = |extra: &str| {
        let config = imgate_tests::write_config(&format!("[admin]\n{extra}\n"));
        if extra.contains("tls_cert") {
            let (cert, key) = imgate::tls::self_signed(&["localhost".into()]).unwrap();
            std::fs::write(config.dir.path().join("admin.crt"), cert).unwrap();
            std::fs::write(config.dir.path().join("admin.key"), key).unwrap();
        }
        let mut gw =
            imgate_tests::gateway::Imgate::start(&config, &[("IMGATE_ADMIN_TOKEN", TOKEN)]);
        gw.wait_for_line("admin API listening", Duration::from_secs(5))
            .expect("admin API up");
        std::thread::sleep(Duration::from_millis(100));
        gw.drain();
        gw.lines
            .iter()
            .any(|l| l.contains("listens beyond loopback over plain HTTP"))
    };
    assert!(start("listen = \"0.0.0.0:0\""));
    assert!(!start("listen = \"127.0.0.1:0\""));
    assert!(!start(
        "listen = \"0.0.0.0:0\"\ntls_cert = \"admin.crt\"\ntls_key = \"admin.key\""
    ));
}

#[test]
fn the_admin_api_over_tls() {
    let config = imgate_tests::write_config(
        r#"
[admin]
listen = "127.0.0.1:0"
tls_cert = "admin.crt"
tls_key = "admin.key"
"#,
    );
    let (cert, key) = imgate::tls::self_signed(&["localhost".into()]).unwrap();
    let cert_path = config.dir.path().join("admin.crt");
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(config.dir.path().join("admin.key"), key).unwrap();
    let mut gw = imgate_tests::gateway::Imgate::start(&config, &[("IMGATE_ADMIN_TOKEN", TOKEN)]);
    let line = gw
        .wait_for_line("admin API listening", Duration::from_secs(5))
        .unwrap();
    assert!(line.contains("tls=true"), "{line}");
    let addr: std::net::SocketAddr = line
        .split("listen=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    let get = |token: &str| {
        let tls_config = imgate::tls::client_config(Some(&cert_path)).unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(tls_config, name).unwrap();
        let mut stream = rustls::StreamOwned::new(conn, TcpStream::connect(addr).unwrap());
        write!(
            stream,
            "GET /connections HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response
    };
    let ok = get(TOKEN);
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.contains("\"adapters\""), "{ok}");
    assert!(get("wrong").starts_with("HTTP/1.1 401"));
    // Plain HTTP to the TLS listener gets no answer.
    let mut plain = TcpStream::connect(addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(plain, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut response = String::new();
    let _ = plain.read_to_string(&mut response);
    assert!(!response.contains("200"), "{response}");
}

#[test]
fn tls_cert_without_a_key_is_a_config_error() {
    let config = imgate_tests::write_config("[admin]\ntls_cert = \"a.crt\"\n");
    let out = Command::new(imgate_bin())
        .args(["check", "--config"])
        .arg(&config.path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("set both tls_cert and tls_key"), "{text}");
}
