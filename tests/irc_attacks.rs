//! The IRC attacks of the first outside review, against real ngircd 26
//! behind `imgate run`: commands smuggled past policy by a bare CR, and
//! verdicts that tried to become protocol. Alice speaks raw bytes through
//! imgate; carol and bob connect straight to ngircd to see what arrived.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use imgate_tests::gateway::Imgate;
use imgate_tests::ngircd::Ngircd;
use imgate_tests::{TestConfig, write_config};

/// A raw IRC connection that reads whole lines.
struct Raw {
    w: TcpStream,
    r: BufReader<TcpStream>,
    /// Every line read so far.
    seen: Vec<String>,
}

impl Raw {
    fn register(addr: SocketAddr, nick: &str) -> Raw {
        let w = TcpStream::connect(addr).unwrap();
        w.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let r = BufReader::new(w.try_clone().unwrap());
        let mut c = Raw {
            w,
            r,
            seen: Vec::new(),
        };
        c.send(format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n").as_bytes());
        c.wait_for(" 001 ", Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{nick} not registered: {:?}", c.seen));
        c
    }

    fn send(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).unwrap();
    }

    /// Reads until a line contains `needle`; `None` at `within`.
    fn wait_for(&mut self, needle: &str, within: Duration) -> Option<String> {
        if let Some(l) = self.seen.iter().find(|l| l.contains(needle)) {
            return Some(l.clone());
        }
        let end = Instant::now() + within;
        while Instant::now() < end {
            let mut line = String::new();
            match self.r.read_line(&mut line) {
                Ok(0) => return None,
                Ok(_) => {
                    if line.starts_with("PING ") {
                        let pong = line.replacen("PING", "PONG", 1);
                        self.send(pong.as_bytes());
                    }
                    let line = line.trim_end_matches(['\r', '\n']).to_owned();
                    let hit = line.contains(needle);
                    self.seen.push(line.clone());
                    if hit {
                        return Some(line);
                    }
                }
                Err(_) => {}
            }
        }
        None
    }

    /// Proves the connection is alive and everything sent before was
    /// processed: a PING answered by a PONG.
    fn round_trip(&mut self, token: &str) -> bool {
        self.send(format!("PING :{token}\r\n").as_bytes());
        self.wait_for(
            &format!("PONG irc.localhost :{token}"),
            Duration::from_secs(5),
        )
        .is_some()
    }
}

struct Setup {
    imgate: Imgate,
    ngircd: Ngircd,
    config: TestConfig,
}

fn setup(chain: &str) -> Setup {
    let ngircd = Ngircd::start();
    let config = write_config(&format!(
        r#"
[runtime]
cache_dir = "cache"

[archive]
path = "archive.db"

[irc]
listen = "127.0.0.1:0"
flood_lines_per_s = 0

[irc.upstream]
address = "127.0.0.1:{}"
tls = "plain"

{chain}

[[plugins]]
name = "recorder"
path = "{{wasm:test_recorder}}"
grants = ["archive"]
"#,
        ngircd.port
    ));
    let imgate = Imgate::start(&config, &[]);
    Setup {
        imgate,
        ngircd,
        config,
    }
}

impl Setup {
    fn via_imgate(&self, nick: &str) -> Raw {
        Raw::register(self.imgate.irc.unwrap(), nick)
    }

    fn direct(&self, nick: &str) -> Raw {
        Raw::register(SocketAddr::from(([127, 0, 0, 1], self.ngircd.port)), nick)
    }
}

const WALL: &str = r##"
[[plugins]]
name = "ethical-wall"
path = "{wasm:ethical_wall}"
[plugins.config.groups.research]
members = ["alice"]
[plugins.config.groups.trading]
members = ["carol", "#trading"]
[[plugins.config.rules]]
name = "research-trading"
from = "research"
to = "trading"
"##;

#[test]
fn a_bare_cr_cannot_smuggle_a_command_past_the_wall() {
    let s = setup(WALL);
    let mut carol = s.direct("carol");
    carol.send(b"JOIN #trading\r\n");
    carol
        .wait_for(" 366 ", Duration::from_secs(5))
        .expect("carol joined");
    let mut alice = s.via_imgate("alice");

    // ngircd runs two commands here; the gateway must judge two.
    alice.send(b"PRIVMSG nobody :y\rJOIN #trading\r\n");
    alice.send(b"PRIVMSG nobody :x\rPRIVMSG carol :insider tip\r\n");
    alice.send(b"PRIVMSG nobody :z\rPRIVMSG carol :second\n");
    assert!(alice.round_trip("after-smuggling"), "{:?}", alice.seen);
    let notices: Vec<&String> = alice
        .seen
        .iter()
        .filter(|l| l.starts_with(":imgate NOTICE alice"))
        .collect();
    assert!(
        notices.len() >= 3,
        "each smuggled command was judged and blocked: {:?}",
        alice.seen
    );
    assert!(carol.round_trip("carol-check"));
    std::thread::sleep(Duration::from_millis(300));
    let _ = carol.wait_for("never", Duration::from_millis(300));
    assert!(
        !carol
            .seen
            .iter()
            .any(|l| l.contains("JOIN") && l.contains("alice")),
        "alice joined #trading: {:?}",
        carol.seen
    );
    assert!(
        !carol
            .seen
            .iter()
            .any(|l| l.contains("insider tip") || l.contains("second")),
        "carol got the smuggled message: {:?}",
        carol.seen
    );
    // The archive holds no message with a CR in it.
    let records = imgate_tests::archive_records(&s.config.dir.path().join("archive.db"));
    assert!(
        records.iter().all(|r| !r.to_string().contains("\\r")),
        "{records:?}"
    );
    let blocked = records
        .iter()
        .filter(|r| r["verdict"]["action"] == "block")
        .count();
    assert!(blocked >= 3, "{records:?}");
}

const HOSTILE: &str = r#"
[[plugins]]
name = "hostile"
path = "{wasm:test_hostile}"
grants = ["kv"]
deadline_ms = 2000
"#;

#[test]
fn a_rewrite_or_reason_never_becomes_a_command() {
    let s = setup(HOSTILE);
    let mut bob = s.direct("bob");
    let mut alice = s.via_imgate("alice");

    // A rewrite with CRLF and IRC commands in it: each line is text.
    alice.send(b"PRIVMSG bob :rewrite-crlf\r\n");
    let got = bob.wait_for("injected", Duration::from_secs(5));
    assert!(got.is_some(), "{:?}", bob.seen);
    let texts: Vec<&String> = bob
        .seen
        .iter()
        .filter(|l| l.contains(" PRIVMSG bob :"))
        .collect();
    assert_eq!(texts.len(), 3, "{texts:?}");
    assert!(texts[0].ends_with("PRIVMSG bob :hi"), "{texts:?}");
    assert!(texts[1].ends_with("PRIVMSG bob :QUIT :pwned"), "{texts:?}");
    assert!(
        texts[2].ends_with("PRIVMSG bob :PRIVMSG #other :injected"),
        "{texts:?}"
    );
    // Alice was not made to quit.
    assert!(alice.round_trip("still-here-1"), "{:?}", alice.seen);

    // Over 512 bytes with CRLF inside: still never a raw CRLF.
    alice.send(b"PRIVMSG bob :rewrite-long-crlf\r\n");
    bob.wait_for("bbbb", Duration::from_secs(5))
        .expect("long rewrite arrived");
    assert!(
        bob.seen
            .iter()
            .any(|l| l.ends_with("PRIVMSG bob :QUIT :late")),
        "{:?}",
        bob.seen
    );
    assert!(alice.round_trip("still-here-2"), "{:?}", alice.seen);

    // A NUL in a rewrite is the plugin's invalid verdict (fail-closed).
    alice.send(b"PRIVMSG bob :rewrite-nul\r\n");
    let notice = alice
        .wait_for("could not be checked", Duration::from_secs(5))
        .expect("blocked");
    assert!(notice.contains("hostile"), "{notice}");
    assert!(alice.round_trip("still-here-3"), "{:?}", alice.seen);

    // A reason with CRLF reaches alice as one NOTICE.
    alice.send(b"PRIVMSG bob :reason-crlf\r\n");
    let notice = alice
        .wait_for("NOTICE alice :no", Duration::from_secs(5))
        .expect("notice");
    assert!(notice.contains("QUIT :pwned"), "{notice}");
    assert!(alice.round_trip("still-here-4"), "{:?}", alice.seen);
    assert!(
        !alice
            .seen
            .iter()
            .any(|l| l.starts_with("QUIT") || l.starts_with("PRIVMSG #other")),
        "{:?}",
        alice.seen
    );
    // The server is well: it answers bob, with no ghost user spinning.
    assert!(bob.round_trip("server-ok"));
    assert!(
        !bob.seen
            .iter()
            .any(|l| l.starts_with(":alice") && l.contains(" QUIT "))
    );
}

#[test]
fn latin1_text_is_judged_and_sent_as_the_same_text() {
    let s = setup(
        r#"
[[plugins]]
name = "keyword-block"
path = "{wasm:keyword_block}"
[plugins.config]
words = ["secret"]
"#,
    );
    let mut bob = s.direct("bob");
    let mut alice = s.via_imgate("alice");
    alice.send(b"PRIVMSG bob :caf\xe9 au lait\r\n");
    let line = bob
        .wait_for("au lait", Duration::from_secs(5))
        .expect("arrived");
    assert!(line.contains("caf\u{fffd} au lait"), "{line:?}");
    alice.send(b"PRIVMSG bob :top s\xe9cret and secret\r\n");
    alice
        .wait_for("NOTICE alice", Duration::from_secs(5))
        .expect("blocked");
    assert!(bob.round_trip("x"));
    assert!(
        !bob.seen.iter().any(|l| l.contains("top s")),
        "{:?}",
        bob.seen
    );
}

/// Many raw connections through imgate, read without blocking.
struct Crowd {
    conns: Vec<(TcpStream, Vec<u8>)>,
}

impl Crowd {
    fn connect(addr: SocketAddr, n: usize, prefix: &str) -> Crowd {
        let mut conns = Vec::with_capacity(n);
        for i in 0..n {
            let mut c = TcpStream::connect(addr).unwrap();
            c.write_all(format!("NICK {prefix}{i}\r\nUSER u 0 * :u\r\n").as_bytes())
                .unwrap();
            c.set_nonblocking(true).unwrap();
            conns.push((c, Vec::new()));
        }
        Crowd { conns }
    }

    /// Reads until every connection has received a line containing
    /// `needle`; returns when each did, or panics at `within`.
    fn wait_all(&mut self, needle: &str, within: Duration) -> Vec<Duration> {
        let start = Instant::now();
        let mut when: Vec<Option<Duration>> = vec![None; self.conns.len()];
        let mut buf = [0u8; 4096];
        while when.iter().any(Option::is_none) {
            assert!(
                start.elapsed() < within,
                "{} of {} connections saw {needle:?} within {within:?}",
                when.iter().filter(|w| w.is_some()).count(),
                self.conns.len()
            );
            let mut idle = true;
            for (i, (c, seen)) in self.conns.iter_mut().enumerate() {
                if when[i].is_some() {
                    continue;
                }
                if let Ok(n) = std::io::Read::read(c, &mut buf)
                    && n > 0
                {
                    idle = false;
                    seen.extend_from_slice(&buf[..n]);
                    if String::from_utf8_lossy(seen).contains(needle) {
                        when[i] = Some(start.elapsed());
                        seen.clear();
                    }
                }
            }
            if idle {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        when.into_iter().flatten().collect()
    }

    fn send_all(&mut self, line: &[u8]) {
        for (c, _) in &mut self.conns {
            c.set_nonblocking(false).unwrap();
            c.write_all(line).unwrap();
            c.set_nonblocking(true).unwrap();
        }
    }
}

fn http_get(port: u16, path: &str) -> Option<(Duration, String)> {
    let started = Instant::now();
    let mut c = TcpStream::connect(("127.0.0.1", port)).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t0ken-for-tests\r\nConnection: close\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = String::new();
    std::io::Read::read_to_string(&mut c, &mut out).ok()?;
    Some((started.elapsed(), out))
}

/// Sleeping plugins in `imgate run`: each call ends at its deadline,
/// clean traffic and /healthz keep answering, and SIGTERM stops the
/// process. 150 sessions sleep at once here, because ngircd accepts only
/// about 12 connections a second; `IMGATE_SLEEPERS=5000` for the
/// full-size run (about 7 minutes of connecting). More concurrent calls
/// than tokio's blocking pool has threads are in tests/hostile.rs.
#[test]
fn a_storm_of_sleeping_plugin_calls_cannot_hang_the_gateway() {
    let n: usize = std::env::var("IMGATE_SLEEPERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    let admin = imgate_tests::free_port();
    let ngircd = Ngircd::start();
    let config = write_config(&format!(
        r#"
[runtime]
cache_dir = "cache"
max_instances = 4000

[admin]
listen = "127.0.0.1:{admin}"

[irc]
listen = "127.0.0.1:0"
flood_lines_per_s = 0
max_connections = 20000

[irc.upstream]
address = "127.0.0.1:{}"
tls = "plain"

[[plugins]]
name = "hostile"
path = "{{wasm:test_hostile}}"
grants = ["kv"]
deadline_ms = 200
pool = 64
"#,
        ngircd.port
    ));
    let mut imgate = Imgate::start(&config, &[("IMGATE_ADMIN_TOKEN", "t0ken-for-tests")]);
    let addr = imgate.irc.unwrap();
    let mut crowd = Crowd::connect(addr, n, "s");
    crowd.wait_all(" 001 ", Duration::from_secs(60 + n as u64 / 5));
    let mut clean = Raw::register(addr, "clean");
    let mut bob = Raw::register(SocketAddr::from(([127, 0, 0, 1], ngircd.port)), "bob");

    let started = Instant::now();
    crowd.send_all(b"PRIVMSG bob :sleep\r\n");
    // While the storm runs: the admin API and clean traffic answer.
    let health = std::thread::spawn(move || {
        let mut worst = Duration::ZERO;
        for _ in 0..5 {
            let (took, text) = http_get(admin, "/healthz").expect("healthz answers");
            assert!(text.contains("200 OK"), "{text}");
            worst = worst.max(took);
            std::thread::sleep(Duration::from_millis(50));
        }
        worst
    });
    clean.send(b"PRIVMSG bob :clean during the storm\r\n");
    let ended = crowd.wait_all("could not be checked", Duration::from_secs(120));
    let storm = started.elapsed();
    bob.wait_for("clean during the storm", Duration::from_secs(30))
        .expect("clean traffic went through");
    let worst_health = health.join().expect("healthz thread");
    let mut sorted = ended.clone();
    sorted.sort();
    let p50 = sorted[sorted.len() / 2];
    let max = *sorted.last().unwrap();
    let metrics = http_get(admin, "/metrics")
        .map(|(_, t)| t)
        .unwrap_or_default();
    let timeouts = metrics
        .lines()
        .find(|l| l.starts_with("imgate_plugin_timeouts_total{plugin=\"hostile\"}"))
        .unwrap_or("none")
        .to_owned();
    eprintln!(
        "{n} sleeping calls: all ended in {storm:?} (p50 {p50:?}, max {max:?}); \
         /healthz worst {worst_health:?}; {timeouts}"
    );
    // A 10 s sleep per call would take minutes; bounded, they end fast.
    assert!(max < Duration::from_secs(60), "max {max:?}");
    assert!(worst_health < Duration::from_secs(10), "{worst_health:?}");
    let status = imgate.terminate(Duration::from_secs(20));
    assert!(status.is_some(), "SIGTERM did not stop imgate");
}
