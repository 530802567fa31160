//! A real Synapse on loopback for one test: SQLite, registration by shared
//! secret only, no federation, rate limits off. Synapse and matrix-nio live
//! in a venv under `target/matrix` (`make deps` makes it, pinned by
//! `tests/clients/matrix-requirements.txt`).

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{free_port, workspace};

/// The server name: user ids are `@alice:localhost`.
pub const SERVER_NAME: &str = "localhost";
const SHARED_SECRET: &str = "imgate-test-registration";

pub struct Synapse {
    child: Child,
    /// Plain HTTP on loopback (the client-server API).
    pub port: u16,
    pub dir: tempfile::TempDir,
}

/// The venv's Python, with Synapse and matrix-nio.
pub fn matrix_python() -> PathBuf {
    let python = workspace().join("target/matrix/bin/python");
    assert!(
        python.exists(),
        "no Synapse venv at {}: run `make deps`",
        python.display()
    );
    python
}

/// Runs `tests/clients/matrix_client.py SCENARIO ARGS` and returns what it
/// printed (one JSON object).
pub fn matrix_client(scenario: &str, args: &Value) -> Value {
    let out = Command::new(matrix_python())
        .arg(workspace().join("tests/clients/matrix_client.py"))
        .arg(scenario)
        .arg(args.to_string())
        .output()
        .expect("run matrix_client.py");
    assert!(
        out.status.success(),
        "matrix_client.py {scenario}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim())
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

impl Synapse {
    /// Starts Synapse and registers `users` (name, password).
    pub fn start(users: &[(&str, &str)]) -> Synapse {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let d = dir.path().display();
        let unlimited = "{per_second: 100000, burst_count: 100000}";
        let seed: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ (port as u8));
        let key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD_NO_PAD, seed);
        std::fs::write(
            dir.path().join("signing.key"),
            format!("ed25519 a_test {key}\n"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("log.yaml"),
            format!(
                "version: 1\nformatters:\n  f:\n    format: '%(asctime)s %(levelname)s %(name)s %(message)s'\n\
                 handlers:\n  file:\n    class: logging.FileHandler\n    filename: {d}/homeserver.log\n    formatter: f\n\
                 root:\n  level: WARNING\n  handlers: [file]\ndisable_existing_loggers: false\n"
            ),
        )
        .unwrap();
        let config = dir.path().join("homeserver.yaml");
        std::fs::write(
            &config,
            format!(
                "server_name: \"{SERVER_NAME}\"\npid_file: {d}/homeserver.pid\n\
                 listeners:\n  - port: {port}\n    bind_addresses: ['127.0.0.1']\n    type: http\n    tls: false\n    x_forwarded: false\n    resources:\n      - names: [client]\n        compress: false\n\
                 database:\n  name: sqlite3\n  args:\n    database: {d}/homeserver.db\n\
                 media_store_path: {d}/media\nsigning_key_path: {d}/signing.key\nlog_config: {d}/log.yaml\n\
                 registration_shared_secret: \"{SHARED_SECRET}\"\nenable_registration: false\nreport_stats: false\n\
                 trusted_key_servers: []\nsuppress_key_server_warning: true\nfederation_domain_whitelist: []\n\
                 presence:\n  enabled: false\nmax_upload_size: 10M\n\
                 rc_message: {unlimited}\nrc_registration: {unlimited}\n\
                 rc_login:\n  address: {unlimited}\n  account: {unlimited}\n  failed_attempts: {unlimited}\n\
                 rc_joins:\n  local: {unlimited}\n  remote: {unlimited}\n\
                 rc_invites:\n  per_room: {unlimited}\n  per_user: {unlimited}\n  per_issuer: {unlimited}\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let child = Command::new(matrix_python())
            .args(["-m", "synapse.app.homeserver", "-c"])
            .arg(&config)
            .current_dir(dir.path())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start Synapse");
        let mut synapse = Synapse { child, port, dir };
        synapse.wait_until_up();
        if !users.is_empty() {
            let users: Vec<Value> = users.iter().map(|(u, p)| json!([u, p])).collect();
            matrix_client(
                "register",
                &json!({"server": synapse.url(), "secret": SHARED_SECRET, "users": users}),
            );
        }
        synapse
    }

    fn wait_until_up(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("Synapse exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "Synapse did not listen:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The homeserver's own address, for talking to it around imgate.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        ["stderr.log", "homeserver.log"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Synapse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
