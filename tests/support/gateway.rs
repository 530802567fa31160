//! `imgate run` as a child process: started from a config, its log lines
//! collected, its listeners learned from the log, SIGTERM on request and
//! kill on drop.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::{TestConfig, imgate_bin};

pub struct Imgate {
    child: Child,
    log: mpsc::Receiver<String>,
    /// Every log line read so far.
    pub lines: Vec<String>,
    /// XMPP listeners: STARTTLS and direct TLS.
    pub xmpp: Option<SocketAddr>,
    pub xmpp_tls: Option<SocketAddr>,
    /// IRC listeners: plain and TLS.
    pub irc: Option<SocketAddr>,
    pub irc_tls: Option<SocketAddr>,
    /// Matrix listeners: plain HTTP and HTTPS.
    pub matrix: Option<SocketAddr>,
    pub matrix_tls: Option<SocketAddr>,
    /// The admin API.
    pub admin: Option<SocketAddr>,
    /// The compliance console.
    pub console: Option<SocketAddr>,
}

fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!("{name}="))? + name.len() + 1;
    line[start..].split_whitespace().next()
}

impl Imgate {
    /// Starts `imgate run` on `config` and waits until it is serving.
    pub fn start(config: &TestConfig, env: &[(&str, &str)]) -> Imgate {
        let mut command = Command::new(imgate_bin());
        command
            .args(["run", "--config"])
            .arg(&config.path)
            .env("IMGATE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("spawn imgate run");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, log) = mpsc::channel();
        // Owned by the struct from here, so a failed wait still kills it.
        let mut imgate = Imgate {
            child,
            log,
            lines: Vec::new(),
            xmpp: None,
            xmpp_tls: None,
            irc: None,
            irc_tls: None,
            matrix: None,
            matrix_tls: None,
            admin: None,
            console: None,
        };
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = imgate.wait_for_line("imgate running", Duration::from_secs(60));
        assert!(
            line.is_some(),
            "imgate did not start:\n{}",
            imgate.lines.join("\n")
        );
        for line in &imgate.lines {
            if line.contains("IRC listening") {
                let addr = field(line, "listen").and_then(|a| a.parse().ok());
                if field(line, "tls") == Some("true") {
                    imgate.irc_tls = addr;
                } else {
                    imgate.irc = addr;
                }
            }
            if line.contains("Matrix listening") {
                let addr = field(line, "listen").and_then(|a| a.parse().ok());
                if field(line, "tls") == Some("true") {
                    imgate.matrix_tls = addr;
                } else {
                    imgate.matrix = addr;
                }
            }
            if line.contains("console listening") {
                imgate.console = field(line, "listen").and_then(|a| a.parse().ok());
            }
            if line.contains("admin API listening") {
                imgate.admin = field(line, "listen").and_then(|a| a.parse().ok());
            }
            if line.contains("XMPP listening") {
                let addr = field(line, "listen").and_then(|a| a.parse().ok());
                if field(line, "direct_tls") == Some("true") {
                    imgate.xmpp_tls = addr;
                } else {
                    imgate.xmpp = addr;
                }
            }
        }
        imgate
    }

    /// Reads log lines until one contains `needle`; returns it.
    pub fn wait_for_line(&mut self, needle: &str, within: Duration) -> Option<String> {
        if let Some(l) = self.lines.iter().find(|l| l.contains(needle)) {
            return Some(l.clone());
        }
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) => {
                    let hit = line.contains(needle);
                    self.lines.push(line.clone());
                    if hit {
                        return Some(line);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// Collects the lines logged so far.
    pub fn drain(&mut self) -> &[String] {
        self.lines.extend(self.log.try_iter());
        &self.lines
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then waits for the exit (killing after `within`).
    pub fn terminate(&mut self, within: Duration) -> Option<ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + within;
        loop {
            self.drain();
            if let Ok(Some(status)) = self.child.try_wait() {
                self.lines.extend(self.log.try_iter());
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Imgate {
    /// `kill -9`: no shutdown, no flush.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.drain();
    }
}

impl Drop for Imgate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
