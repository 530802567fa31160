//! Contract compatibility: components built against each released
//! contract (`imgate:policy@0.1.0`, `@0.2.0`, `@0.2.1`) and committed under
//! `tests/fixtures/contract-<version>/` — never rebuilt — load on today's
//! host and decide every event exactly as today's builds of the same
//! plugins do. A host change that breaks an old plugin fails here even
//! though every plugin built from today's WIT still passes.

use std::path::{Path, PathBuf};

use imgate_tests::{Outcome, replay_outcomes as replay, workspace};

/// The released contracts with golden components.
const RELEASES: [&str; 2] = ["0.1.0", "0.2.0"];

/// Every release's golden and today's build of `component` agree on
/// `transcript`; returns the outcomes.
fn assert_same(component: &str, grants: &str, settings: &str, transcript: &Path) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for release in RELEASES {
        outcomes = assert_same_as(release, component, grants, settings, transcript);
    }
    outcomes
}

fn assert_same_as(
    release: &str,
    component: &str,
    grants: &str,
    settings: &str,
    transcript: &Path,
) -> Vec<Outcome> {
    let golden = replay(
        &format!("{{golden-{release}:{component}}}"),
        grants,
        settings,
        transcript,
    );
    let today = replay(
        &format!("{{wasm:{component}}}"),
        grants,
        settings,
        transcript,
    );
    assert!(!today.is_empty(), "the transcript has events");
    assert_eq!(
        golden, today,
        "{component}: the {release} build decides otherwise"
    );
    today
}

const KEYWORDS: &str = r#"words = ["confidential", "project falcon", "insider", "secret"]
match = "whole-word"
case_insensitive = true
reason = "message blocked by compliance policy: \"{word}\" may not be sent""#;

/// Messages from one user, a millisecond apart, with some words to find.
fn transcript(dir: &Path, bodies: &[&str]) -> PathBuf {
    let mut text = String::new();
    for (i, body) in bodies.iter().enumerate() {
        let event = serde_json::json!({
            "id": format!("g-{i}"),
            "network": if i % 3 == 0 { "irc" } else { "xmpp" },
            "direction": "outbound",
            "session": {"id": "s1", "user": "alice@corp.example"},
            "timestamp": 1_764_075_600_000u64 + i as u64,
            "message": {"sender": "alice@corp.example", "recipient": "bob@partner.example", "body": body},
        });
        text.push_str(&event.to_string());
        text.push('\n');
    }
    let path = dir.join("golden.jsonl");
    std::fs::write(&path, text).expect("write transcript");
    path
}

const BODIES: &[&str] = &[
    "hello",
    "this is SECRET",
    "secretary duties",
    "the Project Falcon numbers",
    "Straßenbahn secret",
    "",
    "insider",
    "nothing to see",
];

#[test]
fn golden_keyword_blocks_in_rust_python_and_javascript_decide_as_todays_builds() {
    let dir = tempfile::tempdir().unwrap();
    let ours = transcript(dir.path(), BODIES);
    let sample = workspace().join("examples/transcript.jsonl");
    for component in ["keyword_block", "keyword_block_py", "keyword_block_js"] {
        // Today's Python and JavaScript builds match through the host.
        let grants = r#"["match"]"#;
        let outcomes = assert_same(component, grants, KEYWORDS, &ours);
        let blocked: Vec<&str> = outcomes
            .iter()
            .filter(|o| o.action == "block")
            .map(|o| o.event.as_str())
            .collect();
        assert_eq!(blocked, ["g-1", "g-3", "g-4", "g-6"], "{component}");
        let sample = assert_same(component, grants, KEYWORDS, &sample);
        assert!(sample.iter().any(|o| o.action == "block"), "{component}");
    }
}

#[test]
fn golden_rate_limit_keeps_its_kv_state_as_todays_build() {
    let dir = tempfile::tempdir().unwrap();
    let ours = transcript(dir.path(), &["a"; 6]);
    let outcomes = assert_same(
        "rate_limit",
        r#"["kv", "clock"]"#,
        "messages_per_minute = 1\nburst = 2",
        &ours,
    );
    let actions: Vec<&str> = outcomes.iter().map(|o| o.action.as_str()).collect();
    assert_eq!(
        actions,
        ["allow", "allow", "block", "block", "block", "block"],
        "a burst of 2, then blocks: the bucket is kept in kv across events"
    );
    assert!(outcomes[2].tags.contains(&"rate-limit:exceeded".to_owned()));
}

/// Room messages a relay heard, on both networks.
fn heard(dir: &Path) -> PathBuf {
    let mut text = String::new();
    for (i, (network, sender, room, body)) in [
        (
            "xmpp",
            "lobby@conference.corp.example/alice",
            "lobby@conference.corp.example",
            "hello irc",
        ),
        ("irc", "bob", "#lobby", "hello xmpp"),
        ("irc", "bob", "#elsewhere", "not linked"),
        (
            "xmpp",
            "lobby@conference.corp.example/alice",
            "lobby@conference.corp.example",
            "and again",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let event = serde_json::json!({
            "id": format!("h-{i}"),
            "network": network,
            "direction": "inbound",
            "timestamp": 1_764_075_600_000u64 + i as u64,
            "attributes": {"imgate.relay": "relay"},
            "message": {"sender": sender, "recipient": "relay", "room": room, "body": body},
        });
        text.push_str(&event.to_string());
        text.push('\n');
    }
    let path = dir.join("heard.jsonl");
    std::fs::write(&path, text).expect("write transcript");
    path
}

#[test]
fn golden_bridge_of_0_2_1_sends_the_copies_todays_build_sends() {
    let dir = tempfile::tempdir().unwrap();
    let outcomes = assert_same_as(
        "0.2.1",
        "bridge",
        r#"["bridge", "log"]"#,
        r##"links = [{ xmpp = "lobby@conference.corp.example", irc = "#lobby" }]"##,
        &heard(dir.path()),
    );
    // Four originals and three copies (one room is not linked), each copy
    // right after its original.
    assert_eq!(outcomes.len(), 7, "{outcomes:#?}");
}
