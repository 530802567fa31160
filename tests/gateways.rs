//! Several gateways on one PostgreSQL store, against the real thing: two
//! `imgate run` processes in front of one Prosody, real slixmpp clients
//! spread across both, and a PostgreSQL cluster the test starts itself.
//! kv is shared (a rate limit and a disclaimer hold across the pair and
//! across a restart), the archive is one chain, and neither `kill -9` of a
//! gateway nor a database outage loses an acknowledged record.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use imgate_tests::gateway::Imgate;
use imgate_tests::postgres::Postgres;
use imgate_tests::prosody::{DOMAIN, Prosody};
use imgate_tests::{
    TestConfig, admin_get, gateway_cert, imgate_bin, system_python, workspace, write_config,
};
use serde_json::{Value, json};

const USERS: &[(&str, &str)] = &[
    ("alice", "alice-pw"),
    ("bob", "bob-pw"),
    ("carol", "carol-pw"),
];

struct Pair {
    pg: std::sync::Arc<Postgres>,
    prosody: Prosody,
    config: TestConfig,
    cert: std::path::PathBuf,
    a: Imgate,
    b: Imgate,
}

fn pair(chain: &str, extra: &str) -> Pair {
    let pg = std::sync::Arc::new(Postgres::start());
    let prosody = Prosody::start(USERS);
    let config = write_config(&format!(
        r#"
[runtime]
cache_dir = "cache"

[store]
url = "{url}"
timeout_ms = 1000

[archive]
group_commit_ms = 2

[xmpp]
listen = "127.0.0.1:0"
cert = "gateway.crt"
key = "gateway.key"

[xmpp.upstream]
address = "127.0.0.1:{port}"
tls = "starttls"
ca_file = "{ca}"
{extra}
{chain}
"#,
        url = pg.url(),
        port = prosody.port,
        ca = prosody.cert.display(),
    ));
    std::fs::write(
        config.dir.path().join("admin.token"),
        imgate_tests::ADMIN_TOKEN,
    )
    .unwrap();
    let cert = gateway_cert(&config, &[DOMAIN, "127.0.0.1"]);
    let a = Imgate::start(&config, &[]);
    let b = Imgate::start(&config, &[]);
    Pair {
        pg,
        prosody,
        config,
        cert,
        a,
        b,
    }
}

fn addr(g: &Imgate) -> Value {
    let x: SocketAddr = g.xmpp.expect("XMPP listener");
    json!(["127.0.0.1", x.port()])
}

impl Pair {
    /// Runs a slixmpp scenario with `servers` saying which gateway each
    /// user logs in through.
    fn clients(&mut self, scenario: &str, servers: Value, extra: Value) -> Value {
        let mut users: serde_json::Map<String, Value> = USERS
            .iter()
            .map(|(u, p)| ((*u).to_owned(), json!([format!("{u}@{DOMAIN}"), p])))
            .collect();
        // alice on two devices at once, each through its own gateway.
        for device in ["a", "b"] {
            users.insert(
                format!("alice_{device}"),
                json!([format!("alice@{DOMAIN}/{device}"), USERS[0].1]),
            );
        }
        let mut args = json!({"ca": self.cert, "users": users, "servers": servers});
        if let (Value::Object(a), Value::Object(e)) = (&mut args, extra) {
            a.extend(e);
        }
        let out = Command::new(system_python())
            .arg(workspace().join("tests/clients/xmpp_client.py"))
            .arg(scenario)
            .arg(args.to_string())
            .output()
            .expect("run /usr/bin/python3 (install python3-slixmpp)");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{scenario} failed: {}\n{}\n--- a\n{}\n--- b\n{}\n--- prosody\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.a.drain().join("\n"),
            self.b.drain().join("\n"),
            self.prosody.log()
        );
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    }

    /// `imgate archive …` on the shared store; (exit code, output).
    fn archive(&self, args: &[&str]) -> (i32, String) {
        let out = Command::new(imgate_bin())
            .arg("archive")
            .args(args)
            .arg("--config")
            .arg(&self.config.path)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    }

    /// Every archived message body from `sender`, in chain order.
    fn archived_bodies(&self, sender: &str) -> Vec<(String, String, String)> {
        let (code, out) = self.archive(&["search", "--json", "--participant", sender]);
        assert_eq!(code, 0, "{out}");
        out.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|r| {
                let m = &r["event"]["message"];
                Some((
                    m["body"].as_str()?.to_owned(),
                    r["verdict"]["action"].as_str().unwrap_or("-").to_owned(),
                    r["event"]["session"]["id"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned(),
                ))
            })
            .collect()
    }

    fn verify(&self) -> String {
        let (code, out) = self.archive(&["verify"]);
        assert_eq!(code, 0, "the chain does not verify: {out}");
        out
    }
}

const SHARED_CHAIN: &str = r#"
[[plugins]]
name = "rate-limit"
path = "{wasm:rate_limit}"
grants = ["kv", "clock"]
[plugins.config]
messages_per_minute = 5
burst = 5

[[plugins]]
name = "disclaimer"
path = "{wasm:disclaimer}"
grants = ["kv"]
[plugins.config]
text = "This conversation is recorded."
separator = " -- "

[[plugins]]
name = "archiver"
path = "{wasm:archiver}"
grants = ["archive"]
"#;

#[test]
fn two_gateways_share_one_rate_limit_one_disclaimer_and_one_chain() {
    let mut p = pair(SHARED_CHAIN, "");
    let servers = json!({
        "alice_a": addr(&p.a), "alice_b": addr(&p.b), "carol": addr(&p.a), "bob": addr(&p.b)
    });
    // alice's six messages alternate between her devices, one logged in
    // through each gateway.
    let sent = p.clients(
        "spread",
        servers.clone(),
        json!({"login": ["alice_a", "alice_b", "bob"], "send": [
            ["alice_a", "bob", "one"], ["alice_b", "bob", "two"], ["alice_a", "bob", "three"],
            ["alice_b", "bob", "four"], ["alice_a", "bob", "five"], ["alice_b", "bob", "six"]
        ]}),
    );
    let received: Vec<&str> = sent["bob"]["received"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        received,
        vec![
            "one -- This conversation is recorded.",
            "two",
            "three",
            "four",
            "five"
        ],
        "the disclaimer once, the sixth message over the limit: {sent}"
    );
    let errors = sent["alice_b"]["errors"].to_string();
    assert!(errors.contains("rate limit"), "alice is told: {errors}");

    // carol's conversation with bob: its first message through A, then
    // both gateways restart, then more through B: one disclaimer.
    let before = p.clients(
        "spread",
        servers.clone(),
        json!({"login": ["carol", "bob"], "send": [["carol", "bob", "hello bob"]]}),
    );
    p.a.terminate(Duration::from_secs(10));
    p.b.terminate(Duration::from_secs(10));
    p.a = Imgate::start(&p.config, &[]);
    p.b = Imgate::start(&p.config, &[]);
    let mut carol_b = json!({"carol": addr(&p.b), "bob": addr(&p.a)});
    let after = p.clients(
        "spread",
        carol_b.take(),
        json!({"login": ["carol", "bob"], "send": [["carol", "bob", "still here"]]}),
    );
    assert_eq!(
        before["bob"]["received"],
        json!(["hello bob -- This conversation is recorded."])
    );
    assert_eq!(
        after["bob"]["received"],
        json!(["still here"]),
        "no second disclaimer after a restart"
    );

    // One chain: alice's records from both gateways' sessions, blocked
    // one included, and it verifies.
    let alice = p.archived_bodies(&format!("alice@{DOMAIN}"));
    let bodies: Vec<&str> = alice.iter().map(|(b, _, _)| b.as_str()).collect();
    for word in ["one", "two", "three", "four", "five", "six"] {
        assert!(
            bodies.iter().any(|b| b.starts_with(word)),
            "{word} archived: {bodies:?}"
        );
    }
    assert!(
        alice.iter().any(|(b, v, _)| b == "six" && v == "block"),
        "{alice:?}"
    );
    // Her sessions on the two gateways (ids `xmpp-<process>-<n>`) and
    // bob's on B, which archived what it delivered to him.
    let gateways: std::collections::BTreeSet<&str> = alice
        .iter()
        .filter_map(|(_, _, s)| s.split('-').nth(1))
        .collect();
    assert_eq!(gateways.len(), 2, "records from both gateways: {alice:?}");
    p.verify();
}

const ARCHIVE_ONLY: &str = r#"
[[plugins]]
name = "archiver"
path = "{wasm:archiver}"
grants = ["archive"]
failure = "fail-closed"
"#;

/// Waits until the shared archive holds `n` records of the stream, so it
/// is under way whatever the machine's speed; false after a minute.
fn stream_under_way(pg: &Postgres, n: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let count = pg.psql(
            "postgres",
            "SELECT count(*) FROM records WHERE body LIKE 'stream %'",
        );
        if count.trim().parse::<usize>().is_ok_and(|c| c >= n) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Every message bob got is in the archive: delivery waits for the
/// archive's commit.
fn assert_delivered_were_archived(p: &Pair, received: &[Value]) {
    let archived: std::collections::HashSet<String> = p
        .archived_bodies(&format!("alice@{DOMAIN}"))
        .into_iter()
        .filter(|(_, v, _)| v == "allow")
        .map(|(b, _, _)| b)
        .collect();
    for body in received.iter().filter_map(Value::as_str) {
        assert!(
            archived.contains(body),
            "{body} was delivered but not archived"
        );
    }
}

#[test]
fn kill_9_of_one_gateway_under_load_loses_no_acknowledged_record() {
    let mut p = pair(ARCHIVE_ONLY, "");
    let servers = json!({"alice": addr(&p.a), "bob": addr(&p.b)});
    let killer = {
        let (pid, pg) = (p.a.pid(), p.pg.clone());
        std::thread::spawn(move || {
            let under_way = stream_under_way(&pg, 100);
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            under_way
        })
    };
    let out = p.clients(
        "stream",
        servers,
        json!({"count": 1000, "interval": 0.01, "quiet": 3}),
    );
    assert!(killer.join().unwrap(), "the stream never got going");
    p.a.kill();
    let received = out["received"].as_array().unwrap();
    assert!(
        received.len() > 20 && received.len() < 1000,
        "the kill came mid-stream: {} delivered",
        received.len()
    );
    assert_delivered_were_archived(&p, received);
    let verified = p.verify();
    assert!(verified.contains("ok:"), "{verified}");
    // The surviving gateway still writes to the same chain.
    let more = p.clients(
        "spread",
        json!({"alice": addr(&p.b), "bob": addr(&p.b)}),
        json!({"login": ["alice", "bob"], "send": [["alice", "bob", "after the kill"]]}),
    );
    assert_eq!(more["bob"]["received"], json!(["after the kill"]));
    p.verify();
}

#[test]
fn a_database_outage_blocks_and_tells_then_service_resumes() {
    let admin = "[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"admin.token\"\n";
    let mut p = pair(ARCHIVE_ONLY, admin);
    let servers = json!({"alice": addr(&p.a), "bob": addr(&p.b)});
    let admin_port = p.a.admin.expect("admin API").port();
    assert!(admin_get(admin_port, "/readyz").contains("\"ready\":true"));
    let pg = p.pg.clone();
    let outage = std::thread::spawn(move || {
        assert!(stream_under_way(&pg, 20), "the stream never got going");
        let stopped = Instant::now();
        pg.stop();
        // The prober notices within a second or two.
        let mut during = String::new();
        while stopped.elapsed() < Duration::from_secs(4) {
            during = admin_get(admin_port, "/readyz");
            if during.contains("\"ready\":false") {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        std::thread::sleep(Duration::from_secs(5).saturating_sub(stopped.elapsed()));
        pg.start_again();
        during
    });
    // 150 messages, one every 70 ms: about 10 s, the outage in the middle.
    let out = p.clients(
        "stream",
        servers,
        json!({"count": 150, "interval": 0.07, "quiet": 4}),
    );
    let during = outage.join().unwrap();
    assert!(
        during.contains("\"ready\":false"),
        "/readyz during the outage: {during}"
    );
    let received = out["received"].as_array().unwrap();
    let errors = out["errors"].as_array().unwrap();
    assert!(
        !errors.is_empty(),
        "senders were told during the outage: {out}"
    );
    assert!(
        received.iter().any(|b| b == "stream 149"),
        "delivery resumed without a restart: {} delivered",
        received.len()
    );
    assert!(received.len() + errors.len() <= 150);
    assert_delivered_were_archived(&p, received);
    p.verify();
    assert!(admin_get(admin_port, "/readyz").contains("\"ready\":true"));
}
