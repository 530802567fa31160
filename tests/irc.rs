//! The IRC adapter against the real thing: ngircd on loopback behind
//! `imgate run` (TLS on both sides), real clients from Python's `irc`
//! library, and raw bytes for hostile input.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use imgate_tests::gateway::Imgate;
use imgate_tests::ngircd::Ngircd;
use imgate_tests::{TestConfig, gateway_cert, system_python, workspace, write_config};
use serde_json::{Value, json};

struct Setup {
    imgate: Imgate,
    admin: u16,
    config: TestConfig,
    gateway_cert: PathBuf,
    ngircd: Ngircd,
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
block_file_offers = true

[[plugins]]
name = "expand"
path = "{wasm:test_scripted}"
grants = ["log", "kv", "metrics"]
[plugins.config]
replace = ["EXPAND", "@LONG@"]

[[plugins]]
name = "recorder"
path = "{wasm:test_recorder}"
grants = ["archive"]
"#;

/// 700 bytes of words and two-byte characters: needs splitting.
fn long_text() -> String {
    (0..100)
        .map(|i| format!("wörd{i:02}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn setup(irc_extra: &str) -> Setup {
    setup_with(irc_extra, &CHAIN.replace("@LONG@", &long_text()))
}

fn setup_with(irc_extra: &str, chain: &str) -> Setup {
    let ngircd = Ngircd::start();
    let admin = imgate_tests::free_port();
    let config = write_config(&format!(
        r#"
[runtime]
cache_dir = "cache"

[archive]
path = "archive.db"

[admin]
listen = "127.0.0.1:{admin}"

[irc]
listen = "127.0.0.1:0"
listen_tls = "127.0.0.1:0"
cert = "gateway.crt"
key = "gateway.key"
{irc_extra}

[irc.upstream]
address = "127.0.0.1:{}"
tls = "tls"
ca_file = "{}"
server_name = "localhost"
{chain}
"#,
        ngircd.tls_port,
        ngircd.cert.display(),
        admin = admin,
    ));
    let gateway_cert = gateway_cert(&config, &["localhost"]);
    let imgate = Imgate::start(
        &config,
        &[("IMGATE_ADMIN_TOKEN", imgate_tests::ADMIN_TOKEN)],
    );
    Setup {
        imgate,
        admin,
        config,
        gateway_cert,
        ngircd,
    }
}

impl Setup {
    fn clients(&mut self, extra: Value) -> Value {
        let tls = self.imgate.irc_tls.expect("TLS listener");
        let mut args = json!({
            "server": ["127.0.0.1", tls.port()],
            "tls": true,
            "ca": self.gateway_cert,
            "channel": "#lobby",
        });
        if let (Value::Object(a), Value::Object(e)) = (&mut args, extra) {
            a.extend(e);
        }
        let out = Command::new(system_python())
            .arg(workspace().join("tests/clients/irc_client.py"))
            .arg("chat")
            .arg(args.to_string())
            .output()
            .expect("run /usr/bin/python3 (install python3-irc)");
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            panic!(
                "client failed: {}\n--- stderr\n{}\n--- imgate\n{}\n--- ngircd\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                self.imgate.drain().join("\n"),
                self.ngircd.log()
            );
        }
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    }
}

fn texts(result: &Value) -> Vec<String> {
    result["bob_messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn clean_blocked_and_rewritten_messages_through_real_clients() {
    let mut s = setup("");
    let result = s.clients(json!({
        "send": [
            ["msg", "channel", "hello everyone"],
            ["msg", "channel", "the plan is confidential"],
            ["msg", "bob", "card 4111 1111 1111 1111 thanks"],
            ["action", "channel", "waves"],
        ],
        "expect": 3,
    }));
    assert_eq!(
        texts(&result),
        vec!["hello everyone", "card [card redacted] thanks", "/me waves"],
        "{result}"
    );
    let notices = result["alice_notices"].as_array().unwrap();
    assert_eq!(notices.len(), 1, "{result}");
    assert_eq!(notices[0]["from"], "imgate");
    assert_eq!(notices[0]["text"], "blocked by policy: confidential");
}

#[test]
fn a_long_rewrite_is_split_into_lines_that_fit() {
    let mut s = setup("");
    let result = s.clients(json!({
        "send": [["msg", "channel", "EXPAND"]],
        "expect": 2,
        "settle": 1.5,
    }));
    let got = texts(&result);
    assert!(got.len() >= 2, "{result}");
    // Split at spaces (each space that broke a line is the line break).
    assert_eq!(got.join(" "), long_text(), "{result}");
    for line in &got {
        // `:alice!~alice@localhost PRIVMSG #lobby :` + text + CRLF <= 512.
        assert!(line.len() < 512 - 40, "{}", line.len());
    }
}

#[test]
fn a_dcc_send_offer_is_blocked_by_policy() {
    let mut s = setup("");
    let result = s.clients(json!({
        "send": [
            ["dcc", "bob", "SEND q3-report.xlsx 2130706433 5000 48213"],
            ["msg", "bob", "did it arrive?"],
        ],
        "expect": 1,
    }));
    assert_eq!(texts(&result), vec!["did it arrive?"], "{result}");
    assert_eq!(result["bob_ctcp"], json!([]), "{result}");
    assert_eq!(
        result["alice_notices"][0]["text"], "file transfers are not allowed: q3-report.xlsx",
        "{result}"
    );
}

/// One line to a channel with several local members is judged once by
/// keyword-block, and once per member by the ethical wall, which asked to
/// see each recipient: only the walled member does not receive it.
#[test]
fn a_channel_line_is_judged_once_and_the_wall_per_member() {
    let mut s = setup_with(
        "",
        r#"
[[plugins]]
name = "keyword-block"
path = "{wasm:keyword_block}"
[plugins.config]
words = ["confidential"]

[[plugins]]
name = "once"
path = "{wasm:test_scripted}"
grants = ["log", "kv", "metrics"]
[plugins.config]
interest = ["message"]

[[plugins]]
name = "each"
path = "{wasm:test_scripted}"
grants = ["log", "kv", "metrics"]
[plugins.config]
interest = ["message", "each-recipient"]

[[plugins]]
name = "ethical-wall"
path = "{wasm:ethical_wall}"
[plugins.config]
groups = { research = { members = ["alice"] }, trading = { members = ["carol"] } }
rules = [{ name = "research-trading", from = "research", to = "trading" }]

[[plugins]]
name = "recorder"
path = "{wasm:test_recorder}"
grants = ["archive"]
"#,
    );
    let result = s.clients(json!({
        "members": ["carol", "dave", "erin"],
        "send": [["msg", "channel", "q3 numbers"], ["msg", "channel", "q4 numbers"]],
        "expect": 2,
    }));
    assert_eq!(texts(&result), ["q3 numbers", "q4 numbers"], "{result}");
    let got = |nick: &str| result["members"][nick].as_array().map_or(0, Vec::len);
    assert_eq!(
        (got("carol"), got("dave"), got("erin")),
        (0, 2, 2),
        "{result}"
    );
    let metrics = imgate_tests::admin_get(s.admin, "/metrics");
    let calls = |plugin: &str| -> u64 {
        let prefix = format!("imgate_plugin_calls_total{{plugin=\"{plugin}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in {metrics}"))
    };
    // Per line: once (alice's line; the copies take its verdict), and the
    // plugin that sees each recipient once more for each of the four
    // local members' copies. Carol's session answers each blocked copy
    // with a NOTICE to alice, which alice's session has judged too.
    let records = imgate_tests::archive_records(&s.config.dir.path().join("archive.db"));
    let (lines, notices) = (2, 2);
    assert_eq!(calls("once"), lines + notices, "{records:?}");
    assert_eq!(calls("each"), lines * (1 + 4) + notices, "{metrics}");
    let reused = metrics
        .lines()
        .find_map(|l| l.strip_prefix("imgate_adapter_verdicts_reused_total{network=\"irc\"} "))
        .unwrap_or_default();
    assert_eq!(reused.trim(), "8", "{metrics}");
    // The archive holds each line once as sent, and carol's copies as
    // blocked.
    let lines: Vec<(String, String, String)> = records
        .iter()
        .filter(|r| r["event"]["message"]["sender"] == "alice")
        .filter_map(|r| {
            let e = &r["event"];
            Some((
                e["message"]["body"].as_str()?.to_owned(),
                e["session"]["user"].as_str()?.to_owned(),
                r["verdict"]["action"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let want = [
        ("q3 numbers", "alice", "allow"),
        ("q3 numbers", "carol", "block"),
        ("q4 numbers", "alice", "allow"),
        ("q4 numbers", "carol", "block"),
    ];
    let mut lines = lines;
    lines.sort();
    assert_eq!(
        lines,
        want.map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned())),
        "{records:?}"
    );
}

#[test]
fn topics_and_tag_messages_are_judged_and_archived() {
    let mut s = setup("");
    let result = s.clients(json!({
        "send": [
            ["topic", "channel", "the confidential merger"],
            ["topic", "channel", "Q3 planning"],
            ["tagmsg", "channel", "+draft/react=confidential;+draft/reply=x1"],
            ["tagmsg", "channel", "+draft/react=👍;+draft/reply=x1"],
            ["msg", "channel", "done"],
        ],
        "expect": 1,
    }));
    let topics: Vec<&str> = result["bob_topics"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["text"].as_str())
        .collect();
    assert_eq!(topics, ["Q3 planning"], "{result}");
    let notices: Vec<&str> = result["alice_notices"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["text"].as_str())
        .collect();
    assert_eq!(
        notices,
        [
            "blocked by policy: confidential",
            "blocked by policy: confidential"
        ],
        "{result}"
    );
    std::thread::sleep(Duration::from_millis(300));
    let records = imgate_tests::archive_records(&s.config.dir.path().join("archive.db"));
    let judged: Vec<(String, String, String)> = records
        .iter()
        .filter(|r| r["event"]["direction"] == "outbound")
        .filter_map(|r| {
            let e = &r["event"];
            let (kind, text) = if !e["subject"].is_null() {
                ("subject", e["subject"]["text"].as_str()?)
            } else if !e["reaction"].is_null() {
                ("reaction", e["reaction"]["keys"][0].as_str()?)
            } else {
                return None;
            };
            Some((
                kind.to_owned(),
                text.to_owned(),
                r["verdict"]["action"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let want = [
        ("subject", "the confidential merger", "block"),
        ("subject", "Q3 planning", "allow"),
        ("reaction", "confidential", "block"),
        ("reaction", "👍", "allow"),
    ];
    assert_eq!(
        judged,
        want.map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned())),
        "{records:?}"
    );
}

/// Raw bytes to the plain listener; returns what came back and whether the
/// gateway closed.
fn raw(s: &Setup, bytes: &[u8]) -> (String, bool) {
    let mut c = TcpStream::connect(s.imgate.irc.unwrap()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = c.write_all(bytes);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&out).into_owned(), true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return (String::from_utf8_lossy(&out).into_owned(), false);
            }
            Err(_) => return (String::from_utf8_lossy(&out).into_owned(), true),
        }
    }
}

#[test]
fn hostile_input_gets_a_clear_error_and_others_are_unaffected() {
    let mut s = setup("flood_lines_per_s = 20\nflood_burst = 50");
    // A 100 KB line: ERR_INPUTTOOLONG, and the session goes on.
    let mut long = b"PRIVMSG #lobby :".to_vec();
    long.resize(100_000, b'x');
    long.extend_from_slice(b"\r\nPING :still-here\r\n");
    let (text, _) = raw(&s, &long);
    assert!(text.contains(" 417 * :Input line was too long"), "{text}");
    // The next line reached the server (which answers it: not registered).
    assert!(
        text.contains(":irc.localhost 451"),
        "the next line was served: {text}"
    );
    // NUL bytes: an ERROR and the close.
    let (text, closed) = raw(
        &s,
        b"NICK mallory\r\nUSER m 0 * :m\r\nPRIVMSG #lobby :a\0b\r\n",
    );
    assert!(
        text.contains("ERROR :Closing link: client sent a NUL byte in line"),
        "{text}"
    );
    assert!(closed);
    // Binary garbage: no line ending within the limit, then NULs.
    let garbage: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let (text, closed) = raw(&s, &garbage);
    assert!(
        text.contains("ERROR :Closing link") || text.contains(" 417 "),
        "{text}"
    );
    assert!(closed || text.contains(" 417 "));
    // A flood: far beyond the burst.
    let flood: Vec<u8> = (0..2000)
        .flat_map(|i| format!("PING :{i}\r\n").into_bytes())
        .collect();
    let (text, closed) = raw(&s, &flood);
    assert!(text.contains("ERROR :Closing link: excess flood"), "{text}");
    assert!(closed);
    // Everyone else is still served.
    let result = s.clients(json!({"send": [["msg", "channel", "still fine"]], "expect": 1}));
    assert_eq!(texts(&result), vec!["still fine"], "{result}");
}

#[test]
fn the_session_follows_nick_changes() {
    let mut s = setup("");
    let result = s.clients(json!({
        "rename": "alicia",
        "send": [["msg", "bob", "after the rename"]],
        "expect": 1,
    }));
    assert_eq!(texts(&result), vec!["after the rename"], "{result}");
    std::thread::sleep(Duration::from_millis(300));
    let record = imgate_tests::archive_records(&s.config.dir.path().join("archive.db"))
        .into_iter()
        .find(|r| {
            r["event"]["message"]["body"] == "after the rename"
                && r["event"]["direction"] == "outbound"
        })
        .expect("archived");
    assert_eq!(record["event"]["session"]["user"], "alicia");
    assert_eq!(record["event"]["message"]["sender"], "alicia");
}

#[test]
fn cap_negotiation_passes_through_and_registration_completes() {
    let s = setup("");
    let mut c = TcpStream::connect(s.imgate.irc.unwrap()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(b"CAP LS 302\r\nNICK capper\r\nUSER capper 0 * :Cap Per\r\n")
        .unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    let mut read_until = |c: &mut TcpStream, needle: &str, seen: &mut String| {
        while !seen.contains(needle) {
            let n = c.read(&mut buf).unwrap_or(0);
            assert!(n > 0, "closed or timed out waiting for {needle:?}: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    };
    read_until(&mut c, "CAP * LS", &mut seen);
    let offered = seen
        .lines()
        .find(|l| l.contains("CAP * LS"))
        .unwrap()
        .to_owned();
    let cap = offered
        .rsplit(':')
        .next()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    c.write_all(format!("CAP REQ :{cap}\r\n").as_bytes())
        .unwrap();
    read_until(&mut c, " ACK ", &mut seen);
    c.write_all(b"CAP END\r\n").unwrap();
    read_until(&mut c, " 001 capper ", &mut seen);
}
