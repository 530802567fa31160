//! A real ngircd on loopback for one test: throwaway config in a temp dir,
//! a plain port and a TLS port, flood penalties off. Needs Debian's
//! `ngircd` (`make deps` installs it).

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// An IRC operator's name and password (`OPER`), for tests that KILL.
pub const OPER: &str = "oper";
pub const OPER_PASSWORD: &str = "oper-pass";

pub struct Ngircd {
    child: Child,
    /// Plain IRC.
    pub port: u16,
    /// IRC over TLS, with `cert` (self-signed for `localhost`).
    pub tls_port: u16,
    pub cert: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Ngircd {
    pub fn start() -> Ngircd {
        let dir = tempfile::tempdir().expect("temp dir");
        let (port, tls_port) = (free_port(), free_port());
        let (cert_pem, key_pem) = imgate::tls::self_signed(&["localhost".into()]).unwrap();
        let cert = dir.path().join("ngircd.crt");
        let key = dir.path().join("ngircd.key");
        std::fs::write(&cert, cert_pem).unwrap();
        std::fs::write(&key, key_pem).unwrap();
        let config = dir.path().join("ngircd.conf");
        let d = dir.path().display();
        std::fs::write(
            &config,
            format!(
                "[Global]\nName = irc.localhost\nInfo = imgate test server\nListen = 127.0.0.1\n\
                 Ports = {port}\nMotdPhrase = imgate test\nPidFile = {d}/ngircd.pid\n\
                 [Limits]\nMaxPenaltyTime = 0\nMaxConnectionsIP = 0\nMaxJoins = 0\nPingTimeout = 300\n\
                 [Options]\nDNS = no\nIdent = no\nPAM = no\n\
                 [Operator]\nName = {OPER}\nPassword = {OPER_PASSWORD}\n\
                 [SSL]\nCertFile = {}\nKeyFile = {}\nPorts = {tls_port}\n",
                cert.display(),
                key.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("ngircd.log")).unwrap();
        let child = Command::new("ngircd")
            .arg("-n")
            .arg("-f")
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|_| {
                panic!(
                    "ngircd is not installed: `apt-get install -y ngircd` (`make deps` does this)"
                )
            });
        let mut ngircd = Ngircd {
            child,
            port,
            tls_port,
            cert,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", ngircd.port)).is_err() {
            if let Ok(Some(status)) = ngircd.child.try_wait() {
                panic!("ngircd exited ({status}):\n{}", ngircd.log());
            }
            assert!(
                Instant::now() < deadline,
                "ngircd did not listen:\n{}",
                ngircd.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        ngircd
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ngircd.log")).unwrap_or_default()
    }
}

impl Drop for Ngircd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
