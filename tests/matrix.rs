//! The Matrix adapter against a real Synapse, with matrix-nio clients:
//! what the chain allows arrives, what it blocks is refused with
//! M_FORBIDDEN and never stored, rewrites reach body and formatted_body,
//! edits, reactions and uploads are judged, retries are not judged twice,
//! and bad requests get Matrix errors while clean ones go on.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use imgate_tests::bridge::RoomClient;
use imgate_tests::gateway::Imgate;
use imgate_tests::ngircd::Ngircd;
use imgate_tests::synapse::{Synapse, matrix_client};
use imgate_tests::{archive_records, free_port, gateway_cert, imgate_bin, write_config};
use serde_json::{Value, json};

const USERS: [(&str, &str); 3] = [("alice", "a-pw"), ("bob", "b-pw"), ("carol", "c-pw")];

fn users() -> Value {
    json!({"alice": ["alice", "a-pw"], "bob": ["bob", "b-pw"], "carol": ["carol", "c-pw"]})
}

fn config(synapse: &Synapse, listen: &str, extra: &str) -> imgate_tests::TestConfig {
    let config = write_config(&format!(
        r#"
[admin]
listen = "127.0.0.1:{}"
token_file = "admin.token"

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
hold_if_body_contains = "review me"

[[plugins]]
name = "recorder"
path = "{{wasm:test_recorder}}"
grants = ["archive"]
"#,
        free_port(),
        synapse.port
    ));
    std::fs::write(config.dir.path().join("admin.token"), "review-token\n").unwrap();
    config
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
            "outsider": ["carol says hi", "carol's confidential numbers"],
            "expect": 8,
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
        stored.contains("hello bob")
            && !stored.contains("this is confidential")
            && !stored.contains("hello confidential"),
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

    // carol's confidential line, said around imgate, reaches bob and alice
    // as a redacted stub: in the sync and in history.
    let from_carol = |list: &Value| -> Vec<Value> {
        list.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["sender"] == "@carol:localhost")
            .cloned()
            .collect()
    };
    for list in ["timeline", "history", "alice_timeline"] {
        let carol = from_carol(&seen[list]);
        assert_eq!(carol.len(), 2, "{list}: {carol:?}");
        let hi = carol
            .iter()
            .find(|e| e["content"]["body"] == "carol says hi");
        assert!(hi.is_some(), "{list}: {carol:?}");
        let stub = carol
            .iter()
            .find(|e| e["content"]["body"].is_null())
            .unwrap();
        assert_eq!(stub["content"], json!({}), "{list}");
        assert_eq!(
            stub["unsigned"]["redacted_because"]["content"]["reason"],
            "blocked by policy: confidential",
            "{list}"
        );
    }
    assert!(
        serde_json::to_string(&seen["stored"])
            .unwrap()
            .contains("carol's confidential")
    );

    let records = matrix_records(&config);
    // Judged once, inbound, however many clients saw it.
    let inbound: Vec<&Value> = records
        .iter()
        .filter(|r| r["event"]["message"]["sender"] == "@carol:localhost")
        .collect();
    assert_eq!(inbound.len(), 2, "{inbound:?}");
    assert!(inbound.iter().all(|r| r["event"]["direction"] == "inbound"));
    // alice's own messages are not judged again on their way to bob.
    let hello = records
        .iter()
        .filter(|r| r["event"]["message"]["body"] == "hello bob");
    assert_eq!(hello.count(), 1);
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
    let token = room["token"].as_str().unwrap().to_owned();
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
    // Held sends: the client is told they were sent; a reviewer releases
    // one (it reaches the room, as alice's) and rejects the other.
    let held = matrix_client(
        "raw",
        &json!({"server": server, "users": users(), "requests": [
            {"method": "PUT", "path": send("h1"), "body": "{\"msgtype\":\"m.text\",\"body\":\"review me: the merger\"}", "headers": json_header},
            {"method": "PUT", "path": send("h2"), "body": "{\"msgtype\":\"m.text\",\"body\":\"review me: the layoffs\"}", "headers": json_header},
        ]}),
    );
    for answer in held["answers"].as_array().unwrap() {
        let id = answer["json"]["event_id"].as_str().unwrap_or_default();
        assert!(id.starts_with("$imgate-held-"), "{held}");
    }
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(imgate_bin())
            .args(args)
            .arg("--config")
            .arg(&config.path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let listed: Vec<Value> = cli(&["archive", "held", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let id_of = |text: &str| {
        listed
            .iter()
            .find(|h| h["body"] == text)
            .and_then(|h| h["event_id"].as_str())
            .unwrap_or_else(|| panic!("{text} in {listed:?}"))
            .to_owned()
    };
    cli(&[
        "archive",
        "release",
        &id_of("review me: the merger"),
        "--by",
        "carol",
    ]);
    cli(&[
        "archive",
        "reject",
        &id_of("review me: the layoffs"),
        "--note",
        "no",
        "--by",
        "carol",
    ]);
    let history = matrix_client(
        "raw",
        &json!({"server": server, "users": users(), "requests": [
            {"method": "GET", "path": format!("/_matrix/client/v3/rooms/{room_id}/messages?dir=b&limit=50")},
        ]}),
    );
    let said = history["answers"][0]["json"].to_string();
    assert!(said.contains("review me: the merger"), "{said}");
    assert!(!said.contains("the layoffs"), "{said}");

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
    // Nor one that never finishes the body of a request imgate judges.
    let mut slow = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = format!(
        "PUT {} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"body\":",
        send("slow")
    );
    slow.write_all(head.as_bytes()).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = slow.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    // The gateway still serves.
    let versions = matrix_client(
        "raw",
        &json!({"server": server, "users": users(), "requests": [
            {"method": "GET", "path": "/_matrix/client/versions"},
        ]}),
    );
    assert_eq!(versions["answers"][0]["status"], 200, "{versions}");
}

/// A Matrix room linked to an IRC channel through the gateway's relays: a
/// bot account on Synapse and a nick on ngircd.
#[test]
fn a_matrix_room_and_an_irc_channel_are_one_conversation() {
    let synapse = Synapse::start(&[("alice", "a-pw"), ("bob", "b-pw"), ("relay", "relay-pw")]);
    let ngircd = Ngircd::start();
    // alice's room, public so the relay can join it.
    let created = matrix_client(
        "raw",
        &json!({"server": synapse.url(), "users": users(), "requests": [
            {"method": "POST", "path": "/_matrix/client/v3/createRoom", "body": "{\"preset\": \"public_chat\"}", "headers": {"Content-Type": "application/json"}},
        ]}),
    );
    let room_id = created["answers"][0]["json"]["room_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let config = write_config(&format!(
        r##"
[archive]
path = "archive.db"

[irc]
listen = "127.0.0.1:0"
[irc.upstream]
address = "127.0.0.1:{irc}"
tls = "plain"

[matrix]
listen = "127.0.0.1:0"
[matrix.upstream]
address = "127.0.0.1:{mx}"
tls = "plain"

[bridge]
reconnect_first_ms = 100
[bridge.irc]
nick = "relay"
channels = ["#lobby"]
[bridge.matrix]
user = "relay"
password = "relay-pw"
rooms = ["{room_id}"]

[[plugins]]
name = "irc-words"
path = "{{wasm:keyword_block}}"
networks = ["irc"]
directions = ["outbound"]
[plugins.config]
words = ["secret"]

[[plugins]]
name = "bridge"
path = "{{wasm:bridge}}"
grants = ["bridge", "log"]
[plugins.config]
links = [{{ matrix = "{room_id}", irc = "#lobby" }}]

[[plugins]]
name = "recorder"
path = "{{wasm:test_recorder}}"
grants = ["archive"]
"##,
        irc = ngircd.port,
        mx = synapse.port,
    ));
    let mut imgate = Imgate::start(&config, &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while imgate
        .drain()
        .iter()
        .filter(|l| l.contains("relay connected"))
        .count()
        < 2
    {
        assert!(
            std::time::Instant::now() < deadline,
            "relays not up:\n{}",
            imgate.lines.join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let server = format!("http://127.0.0.1:{}", imgate.matrix.unwrap().port());
    let mut bob = RoomClient::start(
        "irc",
        json!({"server": ["127.0.0.1", ngircd.port], "room": "#lobby", "nick": "bob"}),
    );
    assert!(
        bob.wait(|v| v["ready"] == true, Duration::from_secs(20))
            .is_some()
    );

    // alice joins through imgate and speaks; bob hears it on IRC.
    let send = |txn: &str, content: Value| {
        json!({"method": "PUT", "path": format!("/_matrix/client/v3/rooms/{room_id}/send/m.room.message/{txn}"),
               "body": content.to_string(), "headers": {"Content-Type": "application/json"}})
    };
    let said = matrix_client(
        "raw",
        &json!({"server": server, "users": users(), "requests": [
            {"method": "POST", "path": format!("/_matrix/client/v3/join/{room_id}"), "body": "{}", "headers": {"Content-Type": "application/json"}},
            send("m1", json!({"msgtype": "m.text", "body": "hello irc"})),
            send("m2", json!({"msgtype": "m.text", "body": "the secret plan"})),
        ]}),
    );
    let first = said["answers"][1]["json"]["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        bob.heard("<alice@matrix> hello irc", Duration::from_secs(15))
            .is_some(),
        "{:?} {said}\n{}",
        bob.log,
        imgate.drain().join("\n")
    );
    // An edit follows its message across: IRC has no edits.
    matrix_client(
        "raw",
        &json!({"server": server, "users": users(), "requests": [
            send("m3", json!({"msgtype": "m.text", "body": "* hello again",
                "m.new_content": {"msgtype": "m.text", "body": "hello again"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": first}})),
        ]}),
    );
    let corrected = bob.wait(
        |v| {
            v["body"]
                .as_str()
                .is_some_and(|b| b.contains("hello again"))
        },
        Duration::from_secs(15),
    );
    assert!(
        corrected.unwrap()["body"]
            .as_str()
            .unwrap()
            .contains("corrected"),
        "{:?}",
        bob.log
    );
    // What IRC forbids does not reach IRC.
    let seen = bob.settle(Duration::from_millis(500));
    assert!(
        !seen
            .iter()
            .any(|v| v["body"].as_str().is_some_and(|b| b.contains("secret"))),
        "{seen:?}"
    );

    // ...and alice is told so, privately, in a direct room from the relay.
    let mut told = String::new();
    for _ in 0..40 {
        let sync = matrix_client(
            "raw",
            &json!({"server": server, "users": users(), "requests": [
                {"method": "GET", "path": "/_matrix/client/v3/sync?timeout=0"},
            ]}),
        );
        let invited = sync["answers"][0]["json"]["rooms"]["invite"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        if let Some(dm) = invited.keys().next() {
            let read = matrix_client(
                "raw",
                &json!({"server": server, "users": users(), "requests": [
                    {"method": "POST", "path": format!("/_matrix/client/v3/join/{dm}"), "body": "{}", "headers": {"Content-Type": "application/json"}},
                    {"method": "GET", "path": format!("/_matrix/client/v3/rooms/{dm}/messages?dir=b&limit=10")},
                ]}),
            );
            told = read["answers"][1]["json"].to_string();
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(told.contains("Not bridged to irc #lobby"), "{told}");
    assert!(told.contains("m.notice"), "{told}");

    // bob speaks on IRC; the relay's copy reaches the Matrix room.
    bob.say("hello matrix");
    let mut found = false;
    for _ in 0..40 {
        let history = matrix_client(
            "raw",
            &json!({"server": server, "users": users(), "requests": [
                {"method": "GET", "path": format!("/_matrix/client/v3/rooms/{room_id}/messages?dir=b&limit=20")},
            ]}),
        );
        let text = history["answers"][0]["json"].to_string();
        if text.contains("[irc] bob: hello matrix") {
            assert!(text.contains("@relay:localhost"), "{text}");
            found = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        found,
        "bob's line never reached the Matrix room:\n{}",
        imgate.drain().join("\n")
    );
    // Each copy was judged on its own network and archived with its origin.
    let copies: Vec<Value> = archive_records(&config.dir.path().join("archive.db"))
        .into_iter()
        .filter(|r| {
            r["event"]["attributes"]
                .to_string()
                .contains("imgate.origin")
        })
        .collect();
    let networks: Vec<&str> = copies
        .iter()
        .filter_map(|r| r["event"]["network"].as_str())
        .collect();
    assert!(
        networks.contains(&"irc") && networks.contains(&"matrix"),
        "{networks:?}"
    );
}
