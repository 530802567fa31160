//! Bridging's world: Prosody with MUC and ngircd, imgate with a relay
//! identity on each, and real clients in the linked rooms, for the
//! bridging tests and benchmark.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::gateway::Imgate;
use crate::ngircd::Ngircd;
use crate::prosody::{MUC, Prosody};
use crate::{TestConfig, gateway_cert, system_python, workspace, write_config};
use serde_json::{Value, json};

pub const ROOM: &str = "#lobby";

pub fn room() -> String {
    format!("lobby@{MUC}")
}

/// A client in a room (tests/clients/bridge_client.py), driven by lines.
pub struct RoomClient {
    child: Child,
    stdin: ChildStdin,
    seen: mpsc::Receiver<Value>,
    pub log: Vec<Value>,
}

impl RoomClient {
    pub fn start(kind: &str, args: Value) -> RoomClient {
        let mut child = Command::new(system_python())
            .arg(workspace().join("tests/clients/bridge_client.py"))
            .arg(kind)
            .arg(args.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start bridge_client.py");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, seen) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        let mut client = RoomClient {
            child,
            stdin,
            seen,
            log: Vec::new(),
        };
        assert!(
            client
                .wait(|v| v["ready"] == true, Duration::from_secs(30))
                .is_some(),
            "{kind} client did not get into its room"
        );
        client
    }

    pub fn send(&mut self, command: Value) {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
    }

    pub fn say(&mut self, text: &str) {
        self.send(json!({ "say": text }));
    }

    /// The first thing seen (earlier included) that `matches`.
    pub fn wait(&mut self, matches: impl Fn(&Value) -> bool, within: Duration) -> Option<Value> {
        if let Some(v) = self.log.iter().find(|v| matches(v)) {
            return Some(v.clone());
        }
        let deadline = Instant::now() + within;
        while let Ok(v) = self
            .seen
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.log.push(v.clone());
            if matches(&v) {
                return Some(v);
            }
        }
        None
    }

    /// What the room said (not the client itself) with `body`.
    pub fn heard(&mut self, body: &str, within: Duration) -> Option<Value> {
        self.wait(
            |v| v["body"] == body && v["self"] != true && v.get("room").is_some(),
            within,
        )
    }

    /// Everything seen until now plus `settle`.
    pub fn settle(&mut self, settle: Duration) -> &[Value] {
        let deadline = Instant::now() + settle;
        while let Ok(v) = self
            .seen
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.log.push(v);
        }
        &self.log
    }
}

impl Drop for RoomClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct World {
    pub prosody: Prosody,
    pub ngircd: Ngircd,
    pub config: TestConfig,
    pub imgate: Option<Imgate>,
    pub admin: u16,
}

pub const WORDS_FOR_IRC: &str = r#"
[[plugins]]
name = "irc-words"
path = "{wasm:keyword_block}"
networks = ["irc"]
directions = ["outbound"]
[plugins.config]
words = ["confidential"]
"#;

pub const WITH_ARCHIVER: &str = r##"
[[plugins]]
name = "archiver"
path = "{wasm:archiver}"
grants = ["archive"]
failure = "fail-closed"
"##;

pub const LIVE_BRIDGE: &str = r##"
[[plugins]]
name = "archiver"
path = "{wasm:archiver}"
grants = ["archive"]
failure = "fail-closed"

[[plugins]]
name = "bridge"
path = "{wasm:bridge}"
grants = ["bridge", "log"]
[plugins.config]
links = [{ xmpp = "lobby@conference.localhost", irc = "#lobby" }]
"##;

impl World {
    /// Prosody and ngircd, and imgate's config with both relays and
    /// `plugins`; imgate not started yet.
    pub fn new(plugins: &str) -> World {
        let prosody = Prosody::start(&[
            ("alice", "alice-pass"),
            ("carol", "carol-pass"),
            ("relay", "relay-pass"),
        ]);
        let ngircd = Ngircd::start();
        let admin = crate::free_port();
        let config = write_config(&format!(
            r#"
[runtime]
cache_dir = "{{cache}}"

[admin]
listen = "127.0.0.1:{admin}"

[archive]
path = "archive.db"

[xmpp]
listen = "127.0.0.1:0"
cert = "gateway.crt"
key = "gateway.key"

[xmpp.upstream]
address = "127.0.0.1:{xport}"
ca_file = "{xca}"

[irc]
listen = "127.0.0.1:0"

[irc.upstream]
address = "127.0.0.1:{iport}"
tls = "plain"

[bridge]
send_timeout_ms = 3000
# Long enough that a message said while a relay is away is said in the gap.
reconnect_first_ms = 2000

[bridge.xmpp]
jid = "relay@localhost"
password = "relay-pass"
nick = "imgate"
rooms = ["{room}"]

[bridge.irc]
nick = "imgate"
channels = ["{ROOM}"]
{plugins}
"#,
            xport = prosody.port,
            xca = prosody.cert.display(),
            iport = ngircd.port,
            room = room(),
        ));
        gateway_cert(&config, &["localhost"]);
        World {
            prosody,
            ngircd,
            config,
            imgate: None,
            admin,
        }
    }

    /// Starts imgate and waits until both relays are in their rooms.
    pub fn start(&mut self) -> &mut Imgate {
        let mut imgate = Imgate::start(&self.config, &[("IMGATE_ADMIN_TOKEN", crate::ADMIN_TOKEN)]);
        let deadline = Instant::now() + Duration::from_secs(20);
        while imgate
            .drain()
            .iter()
            .filter(|l| l.contains("relay connected"))
            .count()
            < 2
        {
            assert!(
                Instant::now() < deadline,
                "both relays did not come up:\n{}",
                imgate.lines.join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.imgate = Some(imgate);
        self.imgate.as_mut().unwrap()
    }

    pub fn alice(&self) -> RoomClient {
        RoomClient::start(
            "xmpp",
            json!({
                "server": ["127.0.0.1", self.prosody.port],
                "ca": self.prosody.cert,
                "jid": "alice@localhost",
                "password": "alice-pass",
                "room": room(),
                "nick": "alice",
            }),
        )
    }

    pub fn bob(&self) -> RoomClient {
        RoomClient::start(
            "irc",
            json!({
                "server": ["127.0.0.1", self.ngircd.port],
                "room": ROOM,
                "nick": "bob",
            }),
        )
    }

    pub fn archive(&self) -> std::path::PathBuf {
        self.config.dir.path().join("archive.db")
    }
}
