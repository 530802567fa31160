//! The Matrix adapter against a real Synapse, with matrix-nio clients:
//! what the chain allows arrives, what it blocks is refused with
//! M_FORBIDDEN and never stored, rewrites reach body and formatted_body,
//! edits, reactions and uploads are judged, retries are not judged twice,
//! and bad requests get Matrix errors while clean ones go on.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use imgate_tests::gateway::Imgate;
use imgate_tests::synapse::{Synapse, matrix_client};
use imgate_tests::{archive_records, gateway_cert, write_config};
use serde_json::{Value, json};

const USERS: [(&str, &str); 2] = [("alice", "a-pw"), ("bob", "b-pw")];

fn users() -> Value {
    json!({"alice": ["alice", "a-pw"], "bob": ["bob", "b-pw"]})
}

fn config(synapse: &Synapse, listen: &str, extra: &str) -> imgate_tests::TestConfig {
    write_config(&format!(
        r#"
[runtime]
cache_dir = "cache"

[archive]
path = "archive.db"

[matrix]
{listen}
cert = "gateway.crt"
key = "gateway.key"
header_timeout_ms = 1000
{extra}
[matrix.upstream]
address = "127.0.0.1:{}"
tls = "plain"

[[plugins]]
name = "keyword-block"
path = "{{wasm:keyword_block}}"
[plugins.config]
words = ["confidential"]
reason = "blocked by policy: {{word}}"

[[plugins]]
name = "scripted"
path = "{{wasm:test_scripted}}"
grants = ["log", "kv", "metrics"]
[plugins.config]
replace = ["darn", "d**n"]
block_files_over = 1000

[[plugins]]
name = "recorder"
path = "{{wasm:test_recorder}}"
grants = ["archive"]
"#,
        synapse.port
    ))
}

fn bodies(events: &Value) -> Vec<String> {
    events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "m.room.message")
        .map(|e| e["content"]["body"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn matrix_records(config: &imgate_tests::TestConfig) -> Vec<Value> {
    std::thread::sleep(Duration::from_millis(300));
    archive_records(&config.dir.path().join("archive.db"))
        .into_iter()
        .filter(|r| r["event"]["network"] == "matrix")
        .collect()
}

#[test]
fn a_conversation_through_imgate_is_judged_on_the_way_to_synapse() {
    let synapse = Synapse::start(&USERS);
    let config = config(&synapse, "listen_tls = \"127.0.0.1:0\"", "");
    let ca = gateway_cert(&config, &["localhost"]);
    let imgate = Imgate::start(&config, &[]);
    let server = format!("https://localhost:{}", imgate.matrix_tls.unwrap().port());
    let text = |body: &str| json!({"type": "m.room.message", "content": {"msgtype": "m.text", "body": body}});
    let seen = matrix_client(
        "room",
        &json!({
            "server": server, "ca": ca, "users": users(), "direct": synapse.url(),
            "send": [
                text("hello bob"),
                text("this is confidential"),
                {"type": "m.room.message", "content": {"msgtype": "m.text", "body": "darn it", "format": "org.matrix.custom.html", "formatted_body": "<b>darn</b> it"}},
                {"type": "m.room.message", "content": {"msgtype": "m.text", "body": "* hello confidential",
                    "m.new_content": {"msgtype": "m.text", "body": "hello confidential"},
                    "m.relates_to": {"rel_type": "m.replace", "event_id": "$0"}}},
                {"type": "m.room.message", "content": {"msgtype": "m.text", "body": "* hello again",
                    "m.new_content": {"msgtype": "m.text", "body": "hello again"},
                    "m.relates_to": {"rel_type": "m.replace", "event_id": "$0"}}},
                {"type": "m.reaction", "content": {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$0", "key": "👍"}}},
                {"type": "m.room.redaction", "content": {"redacts": "$4", "reason": "typo"}},
                {"type": "m.room.encrypted", "content": {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgAEn", "sender_key": "k", "session_id": "s", "device_id": "D"}},
            ],
            "uploads": [{"name": "small.txt", "type": "text/plain", "size": 100}, {"name": "big.bin", "type": "application/octet-stream", "size": 5000}],
            "expect": 6,
        }),
    );
    let answers = seen["answers"].as_array().unwrap();
    assert!(answers[0]["event_id"].is_string(), "{seen}");
    assert_eq!(answers[1]["errcode"], "M_FORBIDDEN", "{seen}");
    assert_eq!(answers[1]["error"], "blocked by policy: confidential");
    assert_eq!(
        answers[3]["errcode"], "M_FORBIDDEN",
        "an edit is judged: {seen}"
    );
    for i in [2, 4, 5, 6, 7] {
        assert!(answers[i]["event_id"].is_string(), "send {i}: {seen}");
    }
    // What bob's client saw, and what the homeserver stored.
    let timeline = bodies(&seen["timeline"]);
    assert!(timeline.contains(&"hello bob".to_owned()), "{timeline:?}");
    assert!(timeline.contains(&"d**n it".to_owned()), "{timeline:?}");
    assert!(
        !timeline.iter().any(|b| b.contains("confidential")),
        "{timeline:?}"
    );
    let rewritten = seen["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["content"]["body"] == "d**n it")
        .unwrap();
    assert_eq!(rewritten["content"]["formatted_body"], "d**n it");
    let stored = serde_json::to_string(&seen["stored"]).unwrap();
    assert!(
        stored.contains("hello bob") && !stored.contains("confidential"),
        "{stored}"
    );
    assert!(
        stored.contains("m.room.encrypted") && stored.contains("m.reaction"),
        "{stored}"
    );
    assert!(seen["uploads"][0]["content_uri"].is_string(), "{seen}");
    assert_eq!(
        seen["uploads"][1]["status"], "M_FORBIDDEN",
        "{}",
        seen["uploads"]
    );
    assert_eq!(
        seen["uploads"][1]["error"],
        "big.bin is over the 1000-byte file limit"
    );

    let records = matrix_records(&config);
    let kinds: Vec<(String, String)> = records
        .iter()
        .map(|r| {
            let kind = [
                "message",
                "reaction",
                "file_offer",
                "session_start",
                "room_join",
                "subject",
            ]
            .into_iter()
            .find(|k| !r["event"][k].is_null())
            .unwrap_or("other");
            (
                kind.to_owned(),
                r["verdict"]["action"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    for want in [
        ("reaction", "allow"),
        ("file_offer", "block"),
        ("file_offer", "allow"),
        ("session_start", "allow"),
    ] {
        assert!(
            kinds.iter().any(|(k, a)| (k.as_str(), a.as_str()) == want),
            "{want:?} in {kinds:?}"
        );
    }
    let encrypted = records
        .iter()
        .find(|r| r["event"]["message"]["encrypted"] == true);
    assert!(encrypted.is_some(), "{records:?}");
    let edit = records.iter().find(|r| {
        r["event"]["message"]["edit_of"].is_string() && r["verdict"]["action"] == "block"
    });
    assert!(edit.is_some(), "{records:?}");
    assert!(
        records
            .iter()
            .all(|r| r["event"]["session"]["user"] == "@alice:localhost"
                || r["event"]["session"]["user"] == "@bob:localhost"),
        "{records:?}"
    );
}

#[test]
fn bad_requests_get_matrix_errors_retries_one_answer_and_clean_ones_go_on() {
    let synapse = Synapse::start(&USERS);
    let config = config(
        &synapse,
        "listen = \"127.0.0.1:0\"",
        "max_json_bytes = 4096\nmax_json_depth = 8",
    );
    gateway_cert(&config, &["localhost"]);
    let imgate = Imgate::start(&config, &[]);
    let port = imgate.matrix.unwrap().port();
    let server = format!("http://127.0.0.1:{port}");
    // A room for alice to talk in.
    let room = matrix_client(
        "raw",
        &json!({"server": server, "users": users(), "requests": [
            {"method": "POST", "path": "/_matrix/client/v3/createRoom", "body": "{}", "headers": {"Content-Type": "application/json"}},
        ]}),
    );
    let room_id = room["answers"][0]["json"]["room_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let send = |txn: &str| format!("/_matrix/client/v3/rooms/{room_id}/send/m.room.message/{txn}");
    let deep = format!("{}1{}", "{\"a\":".repeat(20), "}".repeat(20));
    let big = format!(
        "{{\"msgtype\":\"m.text\",\"body\":\"{}\"}}",
        "x".repeat(5000)
    );
    let json_header = json!({"Content-Type": "application/json"});
    let blocked = "{\"msgtype\":\"m.text\",\"body\":\"confidential plans\"}";
    let out = matrix_client(
        "raw",
        &json!({"server": server, "users": users(), "requests": [
            {"method": "PUT", "path": send("t1"), "body": "{\"body\": \"\u{ff}\"}", "headers": json_header},
            {"method": "PUT", "path": send("t2"), "body": "{\"msgtype\": \"m.text\", \"body\": ", "headers": json_header},
            {"method": "PUT", "path": send("t3"), "body": deep, "headers": json_header},
            {"method": "PUT", "path": send("t4"), "body": big, "headers": json_header},
            {"method": "PUT", "path": send("t5"), "body": "[\"not an object\"]", "headers": json_header},
            {"method": "PUT", "path": send("t6"), "body": blocked, "headers": json_header},
            {"method": "PUT", "path": send("t6"), "body": blocked, "headers": json_header},
            {"method": "PUT", "path": send("t7"), "body": "{\"msgtype\":\"m.text\",\"body\":\"still here\"}", "headers": json_header},
            {"method": "PUT", "path": send("t7"), "body": "{\"msgtype\":\"m.text\",\"body\":\"still here\"}", "headers": json_header},
        ]}),
    );
    let a = out["answers"].as_array().unwrap();
    let code = |i: usize| {
        (
            a[i]["status"].as_u64().unwrap(),
            a[i]["json"]["errcode"].as_str().unwrap_or("").to_owned(),
        )
    };
    assert_eq!(
        code(0),
        (400, "M_NOT_JSON".into()),
        "latin-1 is not UTF-8: {out}"
    );
    assert_eq!(code(1), (400, "M_NOT_JSON".into()), "{out}");
    assert_eq!(code(2), (400, "M_BAD_JSON".into()), "{out}");
    assert_eq!(code(3), (413, "M_TOO_LARGE".into()), "{out}");
    assert_eq!(code(4), (400, "M_BAD_JSON".into()), "{out}");
    assert_eq!(code(5), (403, "M_FORBIDDEN".into()), "{out}");
    assert_eq!(a[6], a[5], "a retry gets the same answer: {out}");
    assert_eq!(a[7]["status"], 200, "{out}");
    assert_eq!(
        a[7], a[8],
        "the homeserver answers a retry with the same event: {out}"
    );
    let records = matrix_records(&config);
    let judged = |body: &str| {
        records
            .iter()
            .filter(|r| r["event"]["message"]["body"] == body)
            .count()
    };
    assert_eq!(
        (judged("confidential plans"), judged("still here")),
        (1, 1),
        "{records:?}"
    );

    // A client that never finishes its headers is cut off.
    let mut slow = TcpStream::connect(("127.0.0.1", port)).unwrap();
    slow.write_all(b"GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    let head = String::from_utf8_lossy(&rest);
    assert!(
        head.is_empty() || head.starts_with("HTTP/1.1 408"),
        "{head}"
    );
    // The gateway still serves.
    let versions = matrix_client(
        "raw",
        &json!({"server": server, "users": users(), "requests": [
            {"method": "GET", "path": "/_matrix/client/versions"},
        ]}),
    );
    assert_eq!(versions["answers"][0]["status"], 200, "{versions}");
}
