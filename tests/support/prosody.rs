//! A real Prosody on loopback for one test: throwaway config, data and
//! certificate in a temp dir, users created with `prosodyctl`, stopped on
//! drop. Needs Debian's `prosody` (`.ci/run` installs it).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

pub const DOMAIN: &str = "localhost";
pub const MUC: &str = "conference.localhost";

pub struct Prosody {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// The certificate Prosody presents (self-signed, for `localhost`);
    /// imgate trusts it as its upstream CA.
    pub cert: PathBuf,
    config: PathBuf,
}

fn prosody_missing() -> String {
    "prosody is not installed: `apt-get install -y prosody` (`.ci/run` does this)".into()
}

impl Prosody {
    /// Starts Prosody with `users` (name, password) on `localhost`.
    pub fn start(users: &[(&str, &str)]) -> Prosody {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let (cert_pem, key_pem) =
            imgate::tls::self_signed(&[DOMAIN.into(), MUC.into()]).expect("certificate");
        let cert = dir.path().join("prosody.crt");
        let key = dir.path().join("prosody.key");
        std::fs::write(&cert, cert_pem).unwrap();
        std::fs::write(&key, key_pem).unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        let config = dir.path().join("prosody.cfg.lua");
        std::fs::write(&config, prosody_config(dir.path(), port, &cert, &key)).unwrap();
        for (user, password) in users {
            let status = Command::new("prosodyctl")
                .arg("--config")
                .arg(&config)
                .args(["register", user, DOMAIN, password])
                .stdout(Stdio::null())
                .status()
                .unwrap_or_else(|_| panic!("{}", prosody_missing()));
            assert!(status.success(), "prosodyctl register {user} failed");
        }
        let log = std::fs::File::create(dir.path().join("stdout.log")).unwrap();
        let child = Command::new("prosody")
            .arg("--config")
            .arg(&config)
            .arg("-F")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|_| panic!("{}", prosody_missing()));
        let mut prosody = Prosody {
            child,
            port,
            dir,
            cert,
            config,
        };
        prosody.wait_ready();
        prosody
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("prosody exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "prosody did not listen:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Prosody's log so far, for failure messages.
    /// The server's process (`prosody -F` stays in the foreground).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        let mut out = String::new();
        for f in ["prosody.log", "stdout.log"] {
            out += &std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
        }
        out
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn prosody_config(dir: &Path, port: u16, cert: &Path, key: &Path) -> String {
    let d = dir.display();
    // Root in CI containers; harmless otherwise.
    format!(
        r#"
run_as_root = true
pidfile = "{d}/prosody.pid"
data_path = "{d}/data"
log = {{ {{ levels = {{ min = "info" }}, to = "file", filename = "{d}/prosody.log" }} }}
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {port} }}
c2s_direct_tls_ports = {{ }}
s2s_ports = {{ }}
http_ports = {{ }}
https_ports = {{ }}
c2s_require_encryption = true
allow_registration = false
authentication = "internal_hashed"
storage = "internal"
modules_enabled = {{
  "roster"; "saslauth"; "tls"; "disco"; "carbons"; "smacks"; "ping"; "private"; "offline";
}}
modules_disabled = {{ "s2s" }}
-- Flood limits would throttle the 1,000-message test.
limits = {{ c2s = {{ rate = "10mb/s" }} }}
smacks_hibernation_time = 5
ssl = {{ certificate = "{cert}"; key = "{key}"; }}

VirtualHost "{DOMAIN}"
  ssl = {{ certificate = "{cert}"; key = "{key}"; }}

Component "{MUC}" "muc"
  -- New rooms open at once, without the owner configuring them first.
  muc_room_locking = false
  ssl = {{ certificate = "{cert}"; key = "{key}"; }}
"#,
        cert = cert.display(),
        key = key.display(),
    )
}
