//! A real Synapse on loopback for one test: SQLite, registration by shared
//! secret only, no federation, rate limits off (its files are written by
//! `tests/clients/synapse_setup.py`, which the demo uses too). Synapse and matrix-nio live
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
        let setup = Command::new(matrix_python())
            .arg(workspace().join("tests/clients/synapse_setup.py"))
            .arg(dir.path())
            .arg(port.to_string())
            .arg(SHARED_SECRET)
            .status()
            .expect("run synapse_setup.py");
        assert!(setup.success(), "synapse_setup.py failed");
        let config = dir.path().join("homeserver.yaml");
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
