//! The reference plugins as built components, in one chain (the logger
//! observing), through the
//! real runtime: their configs as the READMEs show them, their grants, and
//! their verdicts on the events they exist for.

use imgate::event::json::{EventDoc, FileOfferDoc, MessageDoc};
use imgate::{Action, Event};
use imgate_tests::start;

fn event(doc: EventDoc) -> Event {
    doc.into_event("test", 0).expect("a valid event")
}

fn message(from: &str, to: &str, body: &str) -> Event {
    let mut doc = EventDoc {
        network: "xmpp".into(),
        message: Some(MessageDoc {
            sender: from.into(),
            recipient: to.into(),
            body: body.into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    doc.session.user = from.into();
    doc.session.id = format!("s-{from}");
    event(doc)
}

#[test]
fn ethical_wall_rate_limit_and_disclaimer_in_one_chain() {
    let (_cfg, rt) = start(
        r#"
[[plugins]]
name = "ethical-wall"
path = "{wasm:ethical_wall}"
[plugins.config.groups.research]
members = ["@research.corp.example"]
[plugins.config.groups.trading]
members = ["@trading.corp.example"]
[plugins.config.groups.external]
except = ["@corp.example"]
[[plugins.config.rules]]
name = "research-trading"
from = "research"
to = "trading"
reason = "Research may not communicate with Trading"
[[plugins.config.rules]]
name = "no-files-out"
from = "*"
to = "external"
kinds = ["file-offer"]
directions = ["outbound"]
both_ways = false

[[plugins]]
name = "rate-limit"
path = "{wasm:rate_limit}"
grants = ["kv", "clock"]
[plugins.config]
messages_per_minute = 1
burst = 2

[[plugins]]
name = "disclaimer"
path = "{wasm:disclaimer}"
grants = ["kv"]
[plugins.config]
text = "[external: recorded]"
scope = "external"
internal_domains = ["corp.example"]
separator = " "

[[plugins]]
name = "logger"
path = "{wasm:logger}"
grants = ["log"]
[plugins.config]
body = "hash"
"#,
    );
    let d = rt.chain.evaluate(message(
        "ann@research.corp.example",
        "tom@trading.corp.example",
        "hi",
    ));
    assert_eq!(
        d.verdict.action,
        Action::Block("Research may not communicate with Trading".into())
    );
    assert_eq!(d.verdict.decided_by.unwrap().plugin, "ethical-wall");
    // The logger observed it without failing.
    assert!(d.failures.is_empty(), "{:?}", d.failures);

    let mut offer = EventDoc {
        network: "xmpp".into(),
        file_offer: Some(FileOfferDoc {
            sender: "dan@corp.example".into(),
            recipient: "eve@example.net".into(),
            name: "plan.pdf".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    offer.session.user = "dan@corp.example".into();
    assert!(matches!(
        rt.chain.evaluate(event(offer)).verdict.action,
        Action::Block(_)
    ));

    // External: the first message gets the disclaimer, the second not;
    // the third is over dan's rate (burst 2).
    let first = rt
        .chain
        .evaluate(message("dan@corp.example", "eve@example.net", "hello"));
    assert_eq!(
        first.verdict.action,
        Action::Rewrite("hello [external: recorded]".into())
    );
    let second = rt
        .chain
        .evaluate(message("dan@corp.example", "eve@example.net", "again"));
    assert_eq!(second.verdict.action, Action::Allow);
    let third = rt
        .chain
        .evaluate(message("dan@corp.example", "eve@example.net", "more"));
    assert_eq!(
        third.verdict.action,
        Action::Block("rate limit: at most 1 messages a minute".into())
    );
    // Internal conversations get no disclaimer.
    let internal = rt
        .chain
        .evaluate(message("kim@corp.example", "lee@corp.example", "hi"));
    assert_eq!(internal.verdict.action, Action::Allow);
}

#[test]
fn dlp_redacts_then_blocks_as_configured() {
    let (_cfg, rt) = start(
        r#"
[[plugins]]
name = "dlp"
path = "{wasm:dlp}"
grants = ["match"]
[plugins.config.detectors]
email = "tag"
[[plugins.config.custom]]
name = "project-code"
regex = "PRJ-[0-9]{4}"
action = "block"
"#,
    );
    let d = rt.chain.evaluate(message(
        "a@corp.example",
        "b@example.net",
        "card 4111-1111-1111-1111, mail b@example.net",
    ));
    assert_eq!(
        d.verdict.action,
        Action::Rewrite("card ****-****-****-1111, mail b@example.net".into())
    );
    assert_eq!(
        d.verdict.tags,
        vec!["dlp:card".to_string(), "dlp:email".to_string()]
    );
    let d = rt
        .chain
        .evaluate(message("a@corp.example", "b@example.net", "re PRJ-0042"));
    assert!(matches!(d.verdict.action, Action::Block(ref r) if r.contains("project-code")));
}

/// Issue 5's sample: the compliance chain over a transcript with `imgate
/// replay`, checking each verdict and what the archive recorded.
#[test]
fn the_compliance_chain_over_the_sample_transcript() {
    let dir = tempfile::tempdir().unwrap();
    let root = imgate_tests::workspace();
    let config = std::fs::read_to_string(root.join("examples/compliance.toml"))
        .unwrap()
        .replace("../target/compliance-archive.db", "archive.db")
        .replace("../target/imgate-cache", "cache")
        .replace("../target/", &format!("{}/target/", root.display()));
    std::fs::write(dir.path().join("compliance.toml"), config).unwrap();
    let verdicts = imgate_tests::replay(
        &dir.path().join("compliance.toml"),
        &root.join("examples/compliance-transcript.jsonl"),
    );
    let actions: Vec<(&str, &str)> = verdicts
        .iter()
        .map(|v| (v["event"].as_str().unwrap(), v["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("c-1", "block"),
            ("c-2", "rewrite"),
            ("c-3", "rewrite"),
            ("c-4", "block"),
            ("c-5", "block"),
            ("c-6", "allow"),
        ]
    );
    assert_eq!(verdicts[0]["decided_by"]["plugin"], "ethical-wall");
    assert_eq!(
        verdicts[1]["body"],
        "hello Eve, invoice attached soon [Corp records this conversation.]"
    );
    // The second message to eve: no second disclaimer, card masked.
    assert_eq!(
        verdicts[2]["body"],
        "card **** **** **** 1111 for the deposit"
    );
    assert_eq!(verdicts[3]["decided_by"]["plugin"], "dlp");

    let records = imgate_tests::archive_records(&dir.path().join("archive.db"));
    assert_eq!(
        records.len(),
        6,
        "every message and file offer, blocked ones included"
    );
    let c4 = records.iter().find(|r| r["event"]["id"] == "c-4").unwrap();
    assert_eq!(c4["verdict"]["action"], "block");
    assert_eq!(c4["verdict"]["decided_by"]["plugin"], "dlp");
    assert!(
        c4["verdict"]["decided_by"]["sha256"]
            .as_str()
            .unwrap()
            .len()
            == 64
    );
    assert_eq!(c4["verdict"]["tags"], serde_json::json!(["dlp:ssn"]));
    // The original text is kept: the record is of what was attempted.
    assert_eq!(c4["event"]["message"]["body"], "new hire ssn 123-45-6789");
}
