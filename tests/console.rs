//! The compliance console in a real browser: Prosody behind `imgate run`
//! with the compliance chain and a reviewer's hold, real slixmpp clients
//! online throughout, and Debian's Chromium driven over WebDriver
//! (tests/clients/console_browser.py) through sign-in, search, a
//! conversation, held messages, a legal hold, an export and the chain.
//! Afterwards the archive must hold an entry for each view, decision and
//! export, and still verify.
//!
//! `IMGATE_SCREENSHOTS=DIR` copies the browser's screenshots there
//! (`make screenshots` refreshes docs/console/).

use std::io::Write;
use std::process::{Command, Stdio};

use imgate::archive::{Entry, Filter, Store};
use imgate_tests::gateway::Imgate;
use imgate_tests::prosody::{DOMAIN, Prosody};
use imgate_tests::{free_port, gateway_cert, imgate_bin, system_python, workspace, write_config};
use serde_json::{Value, json};

const ALICE: (&str, &str) = ("alice", "alice-secret");
const BOB: (&str, &str) = ("bob", "bob-secret");
const XSS: &str = "<script>alert(1)</script><img src=x onerror=alert(2)>";
const RELEASE: &str = "wire 10k to account 1";
const REJECT: &str = "wire 99k to account 2";

fn chain() -> String {
    // examples/compliance.toml's chain (its plugins and their settings),
    // plus a reviewer's hold on payment instructions.
    let compliance = std::fs::read_to_string(workspace().join("examples/compliance.toml"))
        .expect("examples/compliance.toml");
    let plugins = &compliance[compliance.find("[[plugins]]").expect("plugins")..];
    let plugins = plugins.replace(
        "../target/wasm32-wasip2/plugin/",
        &format!(
            "{}/",
            workspace().join("target/wasm32-wasip2/plugin").display()
        ),
    );
    format!(
        r#"
[[plugins]]
name = "payments-review"
path = "{{wasm:test_scripted}}"
grants = ["log", "kv", "metrics"]
[plugins.config]
hold_if_body_contains = "wire"

{plugins}"#
    )
}

fn add_account(config: &std::path::Path, name: &str, role: &str, password: &str) {
    let mut child = Command::new(imgate_bin())
        .args([
            "console", "user", "add", name, "--role", role, "--by", "setup", "--config",
        ])
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("imgate console user add");
    writeln!(child.stdin.take().expect("stdin"), "{password}").expect("password");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn a_compliance_officer_works_the_console_in_a_real_browser() {
    let prosody = Prosody::start(&[ALICE, BOB]);
    let config = write_config(&format!(
        r#"
[runtime]
cache_dir = "{{cache}}"

[archive]
path = "archive.db"

[console]
listen = "127.0.0.1:{console}"
tls_cert = "gateway.crt"
tls_key = "gateway.key"

[xmpp]
listen = "127.0.0.1:0"
listen_tls = "127.0.0.1:0"
cert = "gateway.crt"
key = "gateway.key"

[xmpp.upstream]
address = "127.0.0.1:{port}"
tls = "starttls"
ca_file = "{ca}"
{chain}"#,
        console = free_port(),
        port = prosody.port,
        ca = prosody.cert.display(),
        chain = chain(),
    ));
    let cert = gateway_cert(&config, &[DOMAIN, "127.0.0.1"]);

    // A morning at corp.example, judged and archived before the gateway starts.
    let replay = Command::new(imgate_bin())
        .args(["replay", "--config"])
        .arg(&config.path)
        .arg(workspace().join("examples/compliance-transcript.jsonl"))
        .output()
        .expect("imgate replay");
    assert!(replay.status.success(), "{replay:?}");
    add_account(&config.path, "carol", "admin", "carol's long passphrase");
    add_account(&config.path, "rita", "reviewer", "rita's long passphrase");
    add_account(&config.path, "gus", "reviewer", "gus's long passphrase");

    let mut imgate = Imgate::start(&config, &[]);
    let console = imgate.console.expect("the console listens");
    let shots = tempfile::tempdir().expect("tempdir");
    let downloads = tempfile::tempdir().expect("tempdir");
    let browser = json!({
        "base": format!("https://127.0.0.1:{}", console.port()),
        "admin": ["carol", "carol's long passphrase"],
        "reviewer": ["rita", "rita's long passphrase"],
        "guessed": ["gus", "gus's long passphrase"],
        "downloads": downloads.path(),
        "shots": shots.path(),
        "blocked": "the drug trial results are in",
        "blocked_words": "drug trial",
        "blocked_reason": "Research may not communicate with Trading",
        "blocked_decider": "ethical-wall",
        "xss": XSS,
        "xss_from": format!("alice@{DOMAIN}"),
        "release": RELEASE,
        "reject": REJECT,
        "hold_user": format!("alice@{DOMAIN}"),
    });
    let xmpp = imgate.xmpp.expect("XMPP listener");
    let args = json!({
        "server": ["127.0.0.1", xmpp.port()],
        "ca": cert,
        "users": {
            "alice": [format!("alice@{DOMAIN}"), ALICE.1],
            "bob": [format!("bob@{DOMAIN}"), BOB.1],
        },
        "send": [RELEASE, REJECT, XSS, "see you at lunch"],
        "held": 2,
        "browser": [system_python(), workspace().join("tests/clients/console_browser.py"), browser.to_string()],
        "expect_received": 3,
        "imgate": imgate_bin(),
        "config": config.path,
        "timeout": 240,
    });
    let out = Command::new(system_python())
        .arg(workspace().join("tests/clients/xmpp_client.py"))
        .arg("console")
        .arg(args.to_string())
        .output()
        .expect("run /usr/bin/python3 (make deps installs slixmpp, selenium, chromium)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}\n--- client stderr\n{}\n--- imgate\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        imgate.drain().join("\n"),
    );
    let out: Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let steps = out["browser"]["steps"].as_array().map_or(0, Vec::len);
    assert_eq!(steps, 12, "{out:#}");

    // The decisions reached the sessions holding the messages.
    let received: Vec<&str> = out["received"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    // (The disclaimer stamps what goes outside corp.example.)
    assert!(
        received.contains(&RELEASE) && received.iter().any(|r| r.starts_with(XSS)),
        "{out:#}"
    );
    assert!(!received.contains(&REJECT), "{out:#}");
    assert!(
        out["errors"].as_array().unwrap().iter().any(|e| e["text"]
            .as_str()
            .unwrap_or("")
            .contains("needs a second approver")),
        "{out:#}"
    );

    // Every view, decision and export is in the chain, by the account.
    let store = Store::open_read_only(&config.dir.path().join("archive.db")).expect("archive");
    let audit = |kind: &str| -> Vec<imgate::archive::AuditEntry> {
        store
            .search(&Filter {
                kind: Some(format!("audit:{kind}")),
                ..Default::default()
            })
            .expect("search")
            .into_iter()
            .filter_map(Entry::into_audit)
            .collect()
    };
    let views = audit("view");
    assert!(views.len() >= 6, "{views:#?}");
    // rita saw the newest messages on the search page she landed on, then
    // (JavaScript off) a search and a conversation.
    let rita: Vec<&str> = views
        .iter()
        .filter(|v| v.by == "rita")
        .filter_map(|v| v.details["page"].as_str())
        .collect();
    assert_eq!(
        rita,
        ["search", "search", "search", "conversation"],
        "{views:#?}"
    );
    assert!(views.iter().all(|v| v.by == "carol" || v.by == "rita"));
    for page in ["search", "conversation", "held"] {
        assert!(
            views.iter().any(|v| v.details["page"] == page),
            "a {page} view: {views:#?}"
        );
    }
    let hit = out["browser"]["conversation_entry"]
        .as_u64()
        .expect("entry");
    assert!(views.iter().any(|v| {
        v.details["page"] == "conversation"
            && v.details["entry"] == hit
            && v.details["shown"]
                .as_array()
                .is_some_and(|s| s.contains(&json!(hit)))
    }));
    let reviews = audit("review");
    assert_eq!(reviews.len(), 2, "{reviews:#?}");
    assert!(reviews.iter().all(|r| r.by == "carol"), "{reviews:#?}");
    let exports = audit("export");
    assert_eq!(exports.len(), 1, "{exports:#?}");
    assert_eq!(exports[0].by, "carol");
    assert_eq!(
        exports[0].details["manifest_sha256"],
        out["browser"]["export"]["manifest_sha256"]
    );
    assert_eq!(
        audit("hold-add")
            .iter()
            .map(|h| h.by.as_str())
            .collect::<Vec<_>>(),
        ["carol"]
    );
    let verifies = audit("verify");
    assert!(
        verifies.len() == 1 && verifies[0].details["ok"] == true,
        "{verifies:#?}"
    );
    assert_eq!(audit("user-add").len(), 3);
    // Who signed in and out: rita twice (JavaScript on and off), carol
    // once; gus, whose password was guessed at, never.
    let signed_in: Vec<String> = audit("sign-in").into_iter().map(|a| a.by).collect();
    assert_eq!(signed_in, ["rita", "carol", "rita"]);
    assert!(
        audit("sign-in")
            .iter()
            .all(|a| a.details["address"] == "127.0.0.1")
    );
    assert_eq!(audit("sign-out").len(), 3);
    assert_eq!(
        store.holds().expect("holds").len(),
        1,
        "the refused CSRF form placed no hold"
    );

    // The export's manifest names records of this chain, by their hashes.
    let stored: std::collections::HashMap<u64, String> = store
        .select(&Filter::default())
        .expect("select")
        .into_iter()
        .map(|s| (s.seq, s.hash.iter().map(|b| format!("{b:02x}")).collect()))
        .collect();
    let manifest = out["browser"]["export"]["records"]
        .as_array()
        .expect("manifest");
    assert!(!manifest.is_empty());
    for m in manifest {
        let seq = m["seq"].as_u64().expect("seq");
        assert_eq!(
            Some(m["hash"].as_str().unwrap_or("")),
            stored.get(&seq).map(String::as_str),
            "{m}"
        );
    }
    let verify = Command::new(imgate_bin())
        .args(["archive", "verify", "--config"])
        .arg(&config.path)
        .output()
        .expect("imgate archive verify");
    assert!(verify.status.success(), "{verify:?}");

    for name in ["search.png", "conversation.png", "held.png"] {
        let png = std::fs::read(shots.path().join(name)).expect(name);
        assert!(png.starts_with(b"\x89PNG"), "{name}");
        if let Some(dir) = std::env::var_os("IMGATE_SCREENSHOTS") {
            std::fs::write(std::path::Path::new(&dir).join(name), &png).expect("copy screenshot");
        }
    }
    drop(prosody);
}
