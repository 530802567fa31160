//! The XMPP adapter against the real thing: Prosody on loopback behind
//! `imgate run`, real slixmpp clients logging in over TLS (STARTTLS and
//! direct TLS), and raw bytes for hostile input.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use imgate_tests::gateway::Imgate;
use imgate_tests::prosody::{DOMAIN, MUC, Prosody};
use imgate_tests::{
    TestConfig, free_port, gateway_cert, imgate_bin, rss_kib, system_python, workspace,
    write_config,
};
use serde_json::{Value, json};

const ALICE: (&str, &str) = ("alice", "alice-secret");
const BOB: (&str, &str) = ("bob", "bob-secret");

/// Prosody, imgate in front of it with the test chain, and the gateway's
/// certificate for clients to trust.
struct Setup {
    imgate: Imgate,
    config: TestConfig,
    gateway_cert: PathBuf,
    prosody: Prosody,
}

const CHAIN: &str = r#"
[[plugins]]
name = "keyword-block"
path = "{wasm:keyword_block}"
[plugins.config]
words = ["confidential"]
reason = "blocked by policy: {word}"

[[plugins]]
name = "redact"
path = "{wasm:test_scripted}"
grants = ["log", "kv", "metrics"]
[plugins.config]
replace = ["4111 1111 1111 1111", "[card redacted]"]
drop_if_body_contains = "dropme"

[[plugins]]
name = "recorder"
path = "{wasm:test_recorder}"
grants = ["archive"]
"#;

fn setup_with(upstream: &str, chain: &str, xmpp_extra: &str) -> (TestConfig, PathBuf) {
    let toml = format!(
        r#"
[runtime]
cache_dir = "cache"

[archive]
path = "archive.db"

[xmpp]
listen = "127.0.0.1:0"
listen_tls = "127.0.0.1:0"
cert = "gateway.crt"
key = "gateway.key"
handshake_timeout_ms = 3000
{xmpp_extra}

[xmpp.upstream]
{upstream}
{chain}
"#
    );
    let config = write_config(&toml);
    let gateway_cert = gateway_cert(&config, &[DOMAIN, "127.0.0.1"]);
    (config, gateway_cert)
}

fn setup(xmpp_extra: &str) -> Setup {
    setup_chain(CHAIN, xmpp_extra)
}

fn setup_chain(chain: &str, xmpp_extra: &str) -> Setup {
    let prosody = Prosody::start(&[ALICE, BOB]);
    let upstream = format!(
        "address = \"127.0.0.1:{}\"\ntls = \"starttls\"\nca_file = \"{}\"",
        prosody.port,
        prosody.cert.display()
    );
    let (config, gateway_cert) = setup_with(&upstream, chain, xmpp_extra);
    std::fs::write(config.dir.path().join("admin.token"), "review-token\n").expect("token");
    let imgate = Imgate::start(&config, &[]);
    Setup {
        imgate,
        config,
        gateway_cert,
        prosody,
    }
}

impl Setup {
    fn client_args(&self, extra: Value) -> Value {
        let xmpp = self.imgate.xmpp.expect("STARTTLS listener");
        let tls = self.imgate.xmpp_tls.expect("direct TLS listener");
        let mut args = json!({
            "server": ["127.0.0.1", xmpp.port()],
            "server_tls": ["127.0.0.1", tls.port()],
            "ca": self.gateway_cert,
            "users": {
                "alice": [format!("alice@{DOMAIN}"), ALICE.1],
                "alice_phone": [format!("alice@{DOMAIN}/phone"), ALICE.1],
                "alice_laptop": [format!("alice@{DOMAIN}/laptop"), ALICE.1],
                "bob": [format!("bob@{DOMAIN}"), BOB.1],
            },
        });
        if let (Value::Object(a), Value::Object(e)) = (&mut args, extra) {
            a.extend(e);
        }
        args
    }

    /// Runs a slixmpp scenario; on failure shows every log involved.
    fn clients(&mut self, scenario: &str, extra: Value) -> Value {
        let args = self.client_args(extra);
        let out = Command::new(system_python())
            .arg(workspace().join("tests/clients/xmpp_client.py"))
            .arg(scenario)
            .arg(args.to_string())
            .output()
            .expect("run /usr/bin/python3 (install python3-slixmpp)");
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            panic!(
                "{scenario} failed: {}\n--- client stderr\n{}\n--- imgate\n{}\n--- prosody\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                self.imgate.drain().join("\n"),
                self.prosody.log()
            );
        }
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    }

    /// The archive's records: (kind, direction, user, verdict action, body).
    fn archive(&self) -> Vec<Value> {
        imgate_tests::archive_records(&self.config.dir.path().join("archive.db"))
    }
}

fn kind_of(record: &Value) -> &'static str {
    let e = &record["event"];
    for k in [
        "message",
        "presence",
        "file_offer",
        "session_start",
        "session_end",
        "room_join",
        "room_leave",
        "reaction",
        "subject",
    ] {
        if !e[k].is_null() {
            return k;
        }
    }
    "?"
}

#[test]
fn clean_blocked_rewritten_and_dropped_messages_through_real_clients() {
    let mut s = setup("");
    let result = s.clients(
        "chat",
        json!({
            "direct_tls_users": ["bob"],
            "send": [
                "hello bob",
                "this is confidential",
                "card 4111 1111 1111 1111 ok",
                "dropme please",
                "bye",
            ],
            "expect": 3,
        }),
    );
    assert_eq!(
        result["received"],
        json!(["hello bob", "card [card redacted] ok", "bye"]),
        "{result}"
    );
    let errors = result["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{result}");
    // slixmpp 1.8 predates RFC 6120's <policy-violation/> in its list of
    // conditions, so look at the stanza itself.
    assert!(
        errors[0]["xml"]
            .as_str()
            .unwrap()
            .contains("<policy-violation xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\""),
        "{result}"
    );
    assert!(
        errors[0]["text"]
            .as_str()
            .unwrap()
            .contains("blocked by policy: confidential"),
        "{result}"
    );
    assert_eq!(result["stream_errors"], json!([]));

    // The archive saw each outbound message once with its verdict, and the
    // sessions of both users (one over STARTTLS, one over direct TLS).
    std::thread::sleep(Duration::from_millis(500));
    let records = s.archive();
    let outbound: Vec<(&str, &str)> = records
        .iter()
        .filter(|r| kind_of(r) == "message" && r["event"]["direction"] == "outbound")
        .map(|r| {
            (
                r["event"]["message"]["body"].as_str().unwrap(),
                r["verdict"]["action"].as_str().unwrap_or("?"),
            )
        })
        .collect();
    assert_eq!(outbound.len(), 5, "{outbound:?}");
    assert!(
        outbound.contains(&("this is confidential", "block")),
        "{outbound:?}"
    );
    assert!(
        outbound.contains(&("dropme please", "drop")),
        "{outbound:?}"
    );
    let users: Vec<&str> = records
        .iter()
        .filter(|r| kind_of(r) == "session_start")
        .map(|r| r["event"]["session"]["user"].as_str().unwrap())
        .collect();
    assert!(
        users.contains(&"alice@localhost") && users.contains(&"bob@localhost"),
        "{users:?}"
    );
    let inbound = records
        .iter()
        .filter(|r| kind_of(r) == "message" && r["event"]["direction"] == "inbound")
        .count();
    assert_eq!(inbound, 3, "bob's session judged what reached it");
}

/// A reviewer's queue behind a plugin that holds wire instructions.
fn review_chain() -> String {
    format!(
        r#"
[admin]
listen = "127.0.0.1:{}"
token_file = "admin.token"

[[plugins]]
name = "payments-review"
path = "{{wasm:test_scripted}}"
grants = ["log", "kv", "metrics"]
[plugins.config]
hold_if_body_contains = "wire"
"#,
        free_port()
    )
}

#[test]
fn a_held_message_is_released_to_bob_and_another_rejected_with_alice_told() {
    let mut s = setup_chain(&review_chain(), "");
    let (release, reject, orphan) = (
        "wire 10k to account 1",
        "wire 99k to account 2",
        "wire 5k to account 3",
    );
    let out = s.clients(
        "review",
        json!({
            "send": [release, reject, orphan],
            "release": release,
            "reject": reject,
            "note": "needs a second approver",
            "imgate": imgate_bin(),
            "config": s.config.path,
        }),
    );
    assert_eq!(out["held"].as_array().map(Vec::len), Some(3), "{out}");
    assert_eq!(
        out["received_before_ruling"], 0,
        "held is not delivered: {out}"
    );
    assert_eq!(
        out["received"],
        json!([release]),
        "{out}\n--- imgate\n{}\n--- prosody\n{}",
        s.imgate.drain().join("\n"),
        s.prosody.log()
    );
    let errors = out["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{out}");
    // slixmpp 1.8 does not know RFC 6120's newer conditions: read the stanza.
    assert!(
        errors[0]["xml"]
            .as_str()
            .unwrap()
            .contains("<policy-violation"),
        "{out}"
    );
    assert!(
        errors[0]["text"]
            .as_str()
            .unwrap()
            .contains("rejected by a reviewer: needs a second approver"),
        "{out}"
    );

    // alice has gone: the third can no longer be delivered, and the
    // failed release is recorded with why.
    let db = s.config.dir.path().join("archive.db");
    let store = imgate::archive::Store::open_read_only(&db).unwrap();
    let waiting = store.held_messages(false).unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].body.as_deref(), Some(orphan));
    let cli = Command::new(imgate_bin())
        .args(["archive", "release", &waiting[0].event_id, "--config"])
        .arg(&s.config.path)
        .output()
        .unwrap();
    assert_eq!(cli.status.code(), Some(1), "{cli:?}");
    assert!(
        String::from_utf8_lossy(&cli.stdout).contains("session has ended"),
        "{cli:?}"
    );
    let all = store.held_messages(true).unwrap();
    let status: Vec<(&str, &str)> = all
        .iter()
        .map(|h| (h.body.as_deref().unwrap_or(""), h.status.as_str()))
        .collect();
    assert_eq!(
        status,
        [
            (release, "released"),
            (reject, "rejected"),
            (orphan, "failed")
        ]
    );
    assert!(
        all.iter()
            .all(|h| h.held_by.as_deref() == Some("payments-review"))
    );
    assert_eq!(all[0].reviewer.as_deref(), Some("carol"));
    // Held and ruled on, all in the chain, which still verifies.
    let reviews = store
        .search(&imgate::archive::Filter {
            kind: Some("audit:review".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(reviews.len(), 3);
    store.verify().unwrap();
    let held_records = s
        .archive()
        .into_iter()
        .filter(|r| r["plugin"] == "imgate" && r["verdict"]["action"] == "hold")
        .count();
    assert_eq!(held_records, 3);
}

const CONTENT_CHAIN: &str = r#"
[[plugins]]
name = "keyword-block"
path = "{wasm:keyword_block}"
[plugins.config]
words = ["secret", "🚫"]

[[plugins]]
name = "archiver"
path = "{wasm:archiver}"
grants = ["archive"]
"#;

#[test]
fn reactions_and_room_subjects_are_judged_and_archived() {
    let mut s = setup_chain(CONTENT_CHAIN, "");
    let room = format!("desk@{MUC}");
    let out = s.clients(
        "room_content",
        json!({
            "room": room,
            "subjects": ["the secret merger", "Q3 planning"],
            "reactions": ["🚫", "👍"],
        }),
    );
    assert_eq!(out["bob_subjects"], json!(["Q3 planning"]), "{out}");
    assert_eq!(out["bob_reactions"], json!([["👍"]]), "{out}");
    let errors = out["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "alice is told of both blocks: {out}");
    std::thread::sleep(Duration::from_millis(300));
    let records = s.archive();
    let of = |kind: &str| -> Vec<(String, String)> {
        records
            .iter()
            .filter(|r| kind_of(r) == kind && r["event"]["direction"] == "outbound")
            .map(|r| {
                let e = &r["event"][kind];
                let text = match kind {
                    "subject" => e["text"].as_str().unwrap().to_owned(),
                    _ => e["keys"][0].as_str().unwrap_or_default().to_owned(),
                };
                (text, r["verdict"]["action"].as_str().unwrap().to_owned())
            })
            .collect()
    };
    assert_eq!(
        of("subject"),
        [
            ("the secret merger".to_owned(), "block".to_owned()),
            ("Q3 planning".to_owned(), "allow".to_owned())
        ]
    );
    assert_eq!(
        of("reaction"),
        [
            ("🚫".to_owned(), "block".to_owned()),
            ("👍".to_owned(), "allow".to_owned())
        ]
    );
    assert!(
        records
            .iter()
            .all(|r| !r["event"]["id"].as_str().unwrap_or("").is_empty())
    );
}

#[test]
fn muc_join_and_leave_become_room_events() {
    let mut s = setup("");
    let room = format!("lobby@{MUC}");
    let result = s.clients("muc", json!({ "room": room }));
    assert!(
        result["bob_received"]
            .as_array()
            .unwrap()
            .contains(&json!("hello room")),
        "{result}"
    );
    std::thread::sleep(Duration::from_millis(500));
    let records = s.archive();
    let rooms: Vec<(String, String, String)> = records
        .iter()
        .filter(|r| matches!(kind_of(r), "room_join" | "room_leave"))
        .map(|r| {
            let k = kind_of(r);
            (
                k.to_owned(),
                r["event"]["direction"].as_str().unwrap().to_owned(),
                r["event"][k]["occupant"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for want in [
        ("room_join", "outbound", "alice@localhost"),
        ("room_join", "outbound", "bob@localhost"),
        ("room_leave", "outbound", "alice@localhost"),
    ] {
        assert!(
            rooms
                .iter()
                .any(|(k, d, o)| (k.as_str(), d.as_str(), o.as_str()) == want),
            "{want:?} missing from {rooms:?}"
        );
    }
    let groupchat = records.iter().any(|r| {
        kind_of(r) == "message"
            && r["event"]["message"]["room"] == json!(room)
            && r["event"]["message"]["body"] == "hello room"
    });
    assert!(
        groupchat,
        "the groupchat message was judged as a room message"
    );
}

#[test]
fn a_thousand_messages_with_stream_management_none_lost_none_duplicated() {
    let mut s = setup("");
    let result = s.clients(
        "bulk",
        json!({
            "count": 1000,
            "block_every": 50,
            "block_word": "confidential",
            "timeout": 150,
        }),
    );
    assert_eq!(result["expected"], 980, "{result}");
    assert_eq!(result["received"], 980, "{result}");
    assert_eq!(result["unique"], 980, "{result}");
    assert_eq!(result["in_order"], true, "{result}");
    assert_eq!(
        result["errors"], 20,
        "every blocked message bounced: {result}"
    );
    // The server acknowledged all of alice's stanzas in her own counting,
    // though 20 never reached it: the gateway translated `h`.
    assert_eq!(result["alice_last_ack"], result["alice_seq"], "{result}");
    assert_eq!(result["alice_unacked"], 0, "{result}");
    assert_eq!(result["stream_errors"], json!([]), "{result}");
    assert_eq!(result["problems"], json!([]), "{result}");
    // And Prosody never saw an impossible ack from either client.
    let log = s.prosody.log();
    assert!(!log.contains("acknowledged"), "prosody complained:\n{log}");
}

#[test]
fn carbon_copies_are_unwrapped_and_each_message_is_judged_once() {
    let mut s = setup("");
    let result = s.clients("carbons", json!({}));
    assert_eq!(result["bob_received"], json!(["from my phone"]), "{result}");
    assert_eq!(
        result["phone_received"],
        json!(["reply to the phone"]),
        "{result}"
    );
    assert_eq!(
        result["laptop_carbons"],
        json!([
            ["sent", "from my phone"],
            ["received", "reply to the phone"]
        ]),
        "{result}"
    );
    std::thread::sleep(Duration::from_millis(500));
    let records = s.archive();
    let count = |direction: &str, body: &str| {
        records
            .iter()
            .filter(|r| {
                kind_of(r) == "message"
                    && r["event"]["direction"] == direction
                    && r["event"]["message"]["body"] == body
            })
            .count()
    };
    // Seen by the phone's session and, as a carbon, by the laptop's: once.
    assert_eq!(count("outbound", "from my phone"), 1);
    assert_eq!(count("inbound", "reply to the phone"), 1);
    // Bob's own sessions judged their side of each.
    assert_eq!(count("inbound", "from my phone"), 1);
    assert_eq!(count("outbound", "reply to the phone"), 1);
}

// ---- hostile input, as raw bytes ----

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn tls_connect(addr: SocketAddr, ca: &Path) -> Tls {
    let config = imgate::tls::client_config(Some(ca)).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

const HEADER: &str = "<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' \
     xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";

/// Reads until the peer closes (or `within` passes); returns what came and
/// whether it closed.
fn read_to_close(stream: &mut impl Read, within: Duration) -> (String, bool) {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&out).into_owned(), true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            // A reset after the error was written also ends it.
            Err(_) => return (String::from_utf8_lossy(&out).into_owned(), true),
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), false)
}

/// Sends `payload` after a valid header over direct TLS and expects a
/// stream error with `condition`, then the close.
fn expect_stream_error(s: &Setup, payload: &[u8], condition: &str) {
    let mut tls = tls_connect(s.imgate.xmpp_tls.unwrap(), &s.gateway_cert);
    tls.write_all(HEADER.as_bytes()).unwrap();
    // Large payloads are cut off by the gateway mid-write; that is the point.
    let _ = tls.write_all(payload);
    let _ = tls.flush();
    let (text, closed) = read_to_close(&mut tls, Duration::from_secs(10));
    assert!(
        text.contains(&format!(
            "<{condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
        )),
        "expected {condition}, got: {text}"
    );
    assert!(closed, "the gateway closed the stream");
}

/// A real login still works: the gateway goes on serving everyone else.
fn still_serving(s: &mut Setup) {
    let result = s.clients(
        "chat",
        json!({ "send": ["still here"], "expect": 1, "settle": 0.2 }),
    );
    assert_eq!(result["received"], json!(["still here"]), "{result}");
}

#[test]
fn hostile_clients_get_stream_errors_and_others_are_unaffected() {
    let mut s = setup("");
    expect_stream_error(&s, b"<message><body>x</bo></message>", "not-well-formed");
    expect_stream_error(
        &s,
        b"<!DOCTYPE lolz [<!ENTITY lol 'lol'><!ENTITY lol1 '&lol;&lol;&lol;&lol;'>]><message>&lol1;</message>",
        "restricted-xml",
    );
    expect_stream_error(
        &s,
        b"<message><body>&lol9;</body></message>",
        "restricted-xml",
    );
    let mut big = b"<message to='bob@localhost'><body>".to_vec();
    big.resize(10 << 20, b'a');
    expect_stream_error(&s, &big, "policy-violation");
    // Plaintext after refusing STARTTLS.
    let mut plain = TcpStream::connect(s.imgate.xmpp.unwrap()).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    plain.write_all(HEADER.as_bytes()).unwrap();
    plain
        .write_all(
            b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHg=</auth>",
        )
        .unwrap();
    let (text, closed) = read_to_close(&mut plain, Duration::from_secs(10));
    assert!(
        text.contains("<starttls") && text.contains("policy-violation"),
        "{text}"
    );
    assert!(closed);
    still_serving(&mut s);
    let stats = s.imgate.drain().join("\n");
    assert!(!stats.contains("panicked"), "{stats}");
}

#[test]
fn a_thousand_silent_connections_are_timed_out_while_others_are_served() {
    let mut s = setup("");
    let addr = s.imgate.xmpp.unwrap();
    let silent: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    still_serving(&mut s);
    // handshake_timeout_ms = 3000: every silent one is closed after it.
    std::thread::sleep(Duration::from_millis(3500));
    let mut closed = 0;
    for mut c in silent {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 256];
        if matches!(c.read(&mut buf), Ok(0) | Err(_)) {
            closed += 1;
        }
    }
    assert_eq!(closed, 1000);
}

/// A fake upstream that negotiates a plain stream, then sends half a
/// stanza and hangs up.
fn half_stanza_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(
                    b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
                      xmlns:stream='http://etherx.jabber.org/streams' from='localhost' id='x' version='1.0'>\
                      <message from='eve@localhost' to='alice@localhost'><body>half",
                );
                std::thread::sleep(Duration::from_millis(100));
            });
        }
    });
    addr
}

#[test]
fn an_upstream_that_closes_mid_stanza_ends_that_session_only() {
    let upstream = half_stanza_server();
    let (config, cert) = setup_with(
        &format!("address = \"{upstream}\"\ntls = \"plain\""),
        "",
        "",
    );
    let mut imgate = Imgate::start(&config, &[]);
    for _ in 0..3 {
        let mut tls = tls_connect(imgate.xmpp_tls.unwrap(), &cert);
        tls.write_all(HEADER.as_bytes()).unwrap();
        let (text, closed) = read_to_close(&mut tls, Duration::from_secs(10));
        assert!(
            text.contains("remote-connection-failed") && text.contains("middle of a stanza"),
            "{text}"
        );
        assert!(closed);
    }
    let log = imgate.drain().join("\n");
    assert!(
        log.contains("upstream closed the connection in the middle of a stanza"),
        "{log}"
    );
    // Still alive after three.
    assert!(TcpStream::connect(imgate.xmpp.unwrap()).is_ok());
}

#[test]
fn sigterm_tells_clients_and_exits_cleanly() {
    let mut s = setup("drain_timeout_ms = 2000");
    let mut tls = tls_connect(s.imgate.xmpp_tls.unwrap(), &s.gateway_cert);
    tls.write_all(HEADER.as_bytes()).unwrap();
    // Wait until the server's features came through: the session is up.
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains("</stream:features>") {
        let n = tls.read(&mut buf).unwrap();
        assert!(n > 0, "closed early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let status = s.imgate.terminate(Duration::from_secs(10)).expect("exited");
    assert!(status.success(), "{status}");
    let (text, closed) = read_to_close(&mut tls, Duration::from_secs(5));
    assert!(text.contains("system-shutdown"), "{text}");
    assert!(closed);
}

#[test]
fn idle_sessions_time_out_and_the_connection_cap_refuses_extra_peers() {
    let s = setup("idle_timeout_s = 1\nmax_connections = 3");
    // Idle: a session that got its features and then said nothing.
    let mut tls = tls_connect(s.imgate.xmpp_tls.unwrap(), &s.gateway_cert);
    tls.write_all(HEADER.as_bytes()).unwrap();
    let started = Instant::now();
    let (text, closed) = read_to_close(&mut tls, Duration::from_secs(10));
    assert!(
        text.contains("</stream:features>") && text.contains("connection-timeout"),
        "{text}"
    );
    assert!(closed);
    assert!(started.elapsed() < Duration::from_secs(5));
    // The cap: three held open, the fourth is closed at once.
    let held: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(s.imgate.xmpp.unwrap()).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut extra = TcpStream::connect(s.imgate.xmpp.unwrap()).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(
        matches!(extra.read(&mut buf), Ok(0) | Err(_)),
        "refused at the cap"
    );
    drop(held);
}

#[test]
fn a_reader_that_stops_reading_does_not_make_the_gateway_buffer() {
    use imgate_tests::rawxmpp::RawClient;
    use tokio::io::AsyncWriteExt;
    let s = setup("");
    let addr = s.imgate.xmpp.unwrap();
    let pid = s.imgate.pid();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let login = |user: &'static str, pw: &'static str| {
            let ca = s.gateway_cert.clone();
            async move {
                RawClient::login(addr, &ca, DOMAIN, user, pw, "raw")
                    .await
                    .unwrap()
            }
        };
        let mut alice = login("alice", ALICE.1).await;
        // Bob logs in and then never reads again.
        let bob = login("bob", BOB.1).await;
        let before = rss_kib(pid);
        let body = "x".repeat(4000);
        let mut sent = 0usize;
        for i in 0..8000 {
            let m = format!(
                "<message to='{}' type='chat' id='f{i}'><body>{body}</body></message>",
                bob.jid
            );
            sent += m.len();
            alice.io.write_all(m.as_bytes()).await.unwrap();
        }
        alice.io.flush().await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = rss_kib(pid);
        let grew_mib = after.saturating_sub(before) as f64 / 1024.0;
        eprintln!(
            "imgate RSS {before} KiB -> {after} KiB after {} MiB to a stalled reader",
            sent >> 20
        );
        assert!(
            grew_mib < 16.0,
            "imgate grew {grew_mib:.1} MiB while {} MiB went to a reader that does not read",
            sent >> 20
        );
        drop(bob);
    });
}
