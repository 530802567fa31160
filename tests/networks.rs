//! One `imgate run` serving XMPP, IRC and Matrix at once, with one chain:
//! the same `keyword-block` component, unchanged, blocks on all three
//! networks, each in its own protocol's terms, and the archive names the
//! same component hash for every verdict.

use std::process::Command;
use std::time::Duration;

use imgate_tests::gateway::Imgate;
use imgate_tests::ngircd::Ngircd;
use imgate_tests::prosody::{DOMAIN, Prosody};
use imgate_tests::synapse::{Synapse, matrix_client};
use imgate_tests::{system_python, workspace, write_config};
use serde_json::{Value, json};

fn run_client(script: &str, scenario: &str, args: &Value) -> Value {
    let out = Command::new(system_python())
        .arg(workspace().join("tests/clients").join(script))
        .arg(scenario)
        .arg(args.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap()
}

#[test]
fn the_same_component_blocks_on_xmpp_irc_and_matrix() {
    let prosody = Prosody::start(&[("alice", "a-pw"), ("bob", "b-pw")]);
    let ngircd = Ngircd::start();
    let synapse = Synapse::start(&[("alice", "a-pw"), ("bob", "b-pw")]);
    let config = write_config(&format!(
        r#"
[runtime]
cache_dir = "cache"

[archive]
path = "archive.db"

[xmpp]
listen = "127.0.0.1:0"
cert = "gateway.crt"
key = "gateway.key"
[xmpp.upstream]
address = "127.0.0.1:{}"
ca_file = "{}"

[irc]
listen_tls = "127.0.0.1:0"
cert = "gateway.crt"
key = "gateway.key"
[irc.upstream]
address = "127.0.0.1:{}"
tls = "plain"

[matrix]
listen_tls = "127.0.0.1:0"
cert = "gateway.crt"
key = "gateway.key"
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
name = "recorder"
path = "{{wasm:test_recorder}}"
grants = ["archive"]
"#,
        prosody.port,
        prosody.cert.display(),
        ngircd.port,
        synapse.port,
    ));
    let gateway_cert = imgate_tests::gateway_cert(&config, &[DOMAIN]);
    let imgate = Imgate::start(&config, &[]);

    let xmpp = run_client(
        "xmpp_client.py",
        "chat",
        &json!({
            "server": ["127.0.0.1", imgate.xmpp.unwrap().port()],
            "ca": gateway_cert,
            "users": {"alice": ["alice@localhost", "a-pw"], "bob": ["bob@localhost", "b-pw"]},
            "send": ["this is confidential", "this is fine"],
            "expect": 1,
        }),
    );
    assert_eq!(xmpp["received"], json!(["this is fine"]), "{xmpp}");
    assert!(
        xmpp["errors"][0]["xml"]
            .as_str()
            .unwrap()
            .contains("policy-violation")
    );

    let irc = run_client(
        "irc_client.py",
        "chat",
        &json!({
            "server": ["127.0.0.1", imgate.irc_tls.unwrap().port()],
            "tls": true,
            "ca": gateway_cert,
            "channel": "#lobby",
            "send": [["msg", "channel", "this is confidential"], ["msg", "channel", "this is fine"]],
            "expect": 1,
        }),
    );
    let got: Vec<&str> = irc["bob_messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(got, vec!["this is fine"], "{irc}");
    assert_eq!(
        irc["alice_notices"][0]["text"],
        "blocked by policy: confidential"
    );

    let matrix = matrix_client(
        "room",
        &json!({
            "server": format!("https://localhost:{}", imgate.matrix_tls.unwrap().port()),
            "ca": gateway_cert,
            "users": {"alice": ["alice", "a-pw"], "bob": ["bob", "b-pw"]},
            "send": [
                {"type": "m.room.message", "content": {"msgtype": "m.text", "body": "this is confidential"}},
                {"type": "m.room.message", "content": {"msgtype": "m.text", "body": "this is fine"}},
            ],
            "expect": 1,
        }),
    );
    assert_eq!(matrix["answers"][0]["errcode"], "M_FORBIDDEN", "{matrix}");
    assert_eq!(
        matrix["answers"][0]["error"],
        "blocked by policy: confidential"
    );
    let bodies: Vec<&str> = matrix["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["content"]["body"].as_str())
        .collect();
    assert_eq!(bodies, vec!["this is fine"], "{matrix}");

    std::thread::sleep(Duration::from_millis(500));
    let archive = imgate_tests::archive_records(&config.dir.path().join("archive.db"));
    let blocked: Vec<Value> = archive
        .iter()
        .filter(|r| r["verdict"]["action"] == "block")
        .cloned()
        .collect();
    let networks: Vec<&str> = blocked
        .iter()
        .map(|r| r["event"]["network"].as_str().unwrap())
        .collect();
    // Only the two messages are blocked: a plugin call the busy machine
    // was slow to run is not a failure.
    let why: Vec<String> = blocked
        .iter()
        .map(|r| format!("{} {}", r["event"]["kind"], r["verdict"]))
        .collect();
    assert_eq!(networks, vec!["xmpp", "irc", "matrix"], "{why:#?}");
    let hash = |r: &Value| r["verdict"]["decided_by"]["sha256"].clone();
    assert_eq!(hash(&blocked[0]), hash(&blocked[1]));
    assert_eq!(hash(&blocked[0]), hash(&blocked[2]));
    assert_eq!(
        blocked[0]["verdict"]["decided_by"]["plugin"],
        "keyword-block"
    );
    // Each network's sessions started under the user's own name there.
    let starts: Vec<(String, String)> = archive
        .iter()
        .filter(|r| !r["event"]["session_start"].is_null())
        .map(|r| {
            (
                r["event"]["network"].as_str().unwrap().to_owned(),
                r["event"]["session"]["user"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for want in [
        ("xmpp", "alice@localhost"),
        ("irc", "alice"),
        ("irc", "bob"),
        ("matrix", "@alice:localhost"),
        ("matrix", "@bob:localhost"),
    ] {
        assert!(
            starts.iter().any(|(n, u)| (n.as_str(), u.as_str()) == want),
            "{want:?} in {starts:?}"
        );
    }
}
