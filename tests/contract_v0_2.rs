//! Contract 0.2 in the chain with real components: `verdict-out`'s
//! actions (hold, attributes), the rewrite rules, `interest`, open kinds,
//! and 0.1 plugins running beside 0.2 ones.

use imgate::event::json::EventDoc;
use imgate::{Action, Event};
use imgate_tests::{message, start};

fn event(json: &str) -> Event {
    serde_json::from_str::<EventDoc>(json)
        .expect("event json")
        .into_event("t", 0)
        .expect("an event")
}

fn reaction(key: &str) -> Event {
    event(&format!(
        r#"{{"network":"xmpp","direction":"outbound","session":{{"user":"alice@corp.example"}},
            "reaction":{{"sender":"alice@corp.example","room":"desk@muc.example","target":"m1","keys":["{key}"]}}}}"#
    ))
}

fn subject(text: &str) -> Event {
    event(&format!(
        r##"{{"network":"irc","direction":"outbound","session":{{"user":"alice"}},
            "subject":{{"sender":"alice","room":"#desk","text":"{text}"}}}}"##
    ))
}

const KEYWORDS: &str = r#"[plugins.config]
words = ["secret"]"#;

#[test]
fn hold_is_an_action_that_stops_delivery_and_observers_see_it() {
    let (cfg, rt) = start(
        r#"
[archive]
path = "archive.sqlite"

[[plugins]]
name = "reviewer"
path = "{wasm:test_scripted}"
grants = ["log", "kv", "metrics"]
[plugins.config]
hold_if_body_contains = "wire"

[[plugins]]
name = "recorder"
path = "{wasm:test_recorder}"
grants = ["archive"]
failure = "fail-closed"
"#,
    );
    let d = rt.chain.evaluate(message("please wire the money"));
    assert_eq!(
        d.verdict.action,
        Action::Hold("held for review by scripted".into())
    );
    assert_eq!(d.verdict.decided_by.as_ref().unwrap().plugin, "reviewer");
    assert_eq!(d.delivered_body(), None);
    let records = imgate_tests::archive_records(&cfg.dir.path().join("archive.sqlite"));
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["verdict"]["action"], "hold");
    assert_eq!(
        records[0]["verdict"]["reason"],
        "held for review by scripted"
    );
    assert!(rt.chain.evaluate(message("hello")).verdict.action == Action::Allow);
}

#[test]
fn attributes_reach_later_plugins_and_the_hosts_namespace_is_refused() {
    let (_cfg, rt) = start(
        r#"
[[plugins]]
name = "scorer"
path = "{wasm:test_scripted}"
grants = ["log", "kv", "metrics"]
[plugins.config]
attribute = ["dlp.score", "7"]
"#,
    );
    let d = rt.chain.evaluate(message("hi"));
    assert_eq!(d.verdict.action, Action::Allow);
    assert!(
        d.event
            .attributes
            .contains(&("dlp.score".to_owned(), "7".to_owned()))
    );

    let (_cfg, rt) = start(
        r#"
[[plugins]]
name = "forger"
path = "{wasm:test_scripted}"
grants = ["log", "kv", "metrics"]
failure = "fail-closed"
[plugins.config]
attribute = ["imgate.archived", "yes"]
"#,
    );
    let d = rt.chain.evaluate(message("hi"));
    assert!(matches!(d.verdict.action, Action::Block(_)), "{d:?}");
    assert_eq!(d.failures[0].failure.kind(), "invalid-verdict");
    assert!(
        !d.event
            .attributes
            .iter()
            .any(|(k, _)| k == "imgate.archived")
    );
}

#[test]
fn rewriting_encrypted_content_or_an_event_without_text_is_the_plugins_failure() {
    let (_cfg, rt) = start(
        r#"
[[plugins]]
name = "rewriter"
path = "{wasm:test_scripted}"
grants = ["log", "kv", "metrics"]
failure = "fail-closed"
[plugins.config]
rewrite_to = "[redacted]"
"#,
    );
    let mut encrypted = message("");
    if let imgate::event::EventKind::Message(m) = &mut encrypted.kind {
        m.encrypted = true;
    }
    let d = rt.chain.evaluate(encrypted);
    assert!(matches!(d.verdict.action, Action::Block(_)), "{d:?}");
    let failure = d.failures[0].failure.to_string();
    assert!(failure.contains("encrypted"), "{failure}");
    assert!(
        d.verdict
            .tags
            .contains(&"imgate:failed:rewriter".to_owned())
    );

    let d = rt.chain.evaluate(reaction("👍"));
    assert!(matches!(d.verdict.action, Action::Block(_)), "{d:?}");
    assert!(
        d.failures[0].failure.to_string().contains("no text"),
        "{:?}",
        d.failures
    );

    // A subject has text: it is rewritten.
    let d = rt.chain.evaluate(subject("q3 numbers"));
    assert_eq!(d.verdict.action, Action::Rewrite("[redacted]".into()));
    assert_eq!(d.delivered_body(), Some("[redacted]"));
}

#[test]
fn interest_keeps_a_plugin_from_other_kinds() {
    let (_cfg, rt) = start(
        r#"
[[plugins]]
name = "rate"
path = "{wasm:rate_limit}"
grants = ["kv", "clock"]
[plugins.config]
messages_per_minute = 1
burst = 1
"#,
    );
    let d = rt.chain.evaluate(reaction("👍"));
    assert!(d.timings.is_empty(), "not called for a reaction: {d:?}");
    let d = rt.chain.evaluate(message("one"));
    assert_eq!(d.timings.len(), 1);
    assert_eq!(d.verdict.action, Action::Allow);
}

#[test]
fn reactions_and_subjects_are_judged_by_0_2_plugins_and_not_shown_to_0_1_ones() {
    let config = |path: &str| {
        format!(
            r#"
[[plugins]]
name = "kw"
path = "{path}"
{KEYWORDS}
"#
        )
    };
    let (_cfg, today) = start(&config("{wasm:keyword_block}"));
    let (_cfg, golden) = start(&config("{golden-0.1.0:keyword_block}"));
    for e in [reaction("secret"), subject("the secret plan")] {
        let d = today.chain.evaluate(e.clone());
        assert!(matches!(d.verdict.action, Action::Block(_)), "{d:?}");
        assert_eq!(d.verdict.tags, vec!["keyword:blocked".to_owned()]);
        let d = golden.chain.evaluate(e);
        assert_eq!(d.verdict.action, Action::Allow);
        assert!(d.timings.is_empty(), "a 0.1 plugin is not shown it");
    }
    // On what 0.1 names, both decide alike.
    for body in ["a secret", "hello"] {
        let (a, b) = (
            today.chain.evaluate(message(body)).verdict,
            golden.chain.evaluate(message(body)).verdict,
        );
        assert_eq!((a.action, a.tags), (b.action, b.tags), "{body}");
    }
}

#[test]
fn an_attachment_can_be_removed_and_the_delivered_message_is_a_rewrite() {
    let (_cfg, rt) = start(
        r#"
[[plugins]]
name = "no-uploads"
path = "{wasm:test_scripted}"
grants = ["log", "kv", "metrics"]
failure = "fail-closed"
[plugins.config]
remove_attachments_containing = "files.example"
"#,
    );
    let url = "https://files.example/q3.xlsx";
    let e = event(&format!(
        r#"{{"network":"xmpp","direction":"outbound","session":{{"user":"alice@corp.example"}},
            "message":{{"sender":"alice@corp.example","recipient":"bob@partner.example","body":"{url}",
              "attachments":[{{"url":"{url}"}},{{"url":"https://ok.example/a.png"}}]}}}}"#
    ));
    let d = rt.chain.evaluate(e);
    assert_eq!(d.verdict.action, Action::Rewrite(String::new()), "{d:?}");
    assert_eq!(d.verdict.removed_attachments, [url.to_owned()]);
    // Observers see the message as attempted.
    let m = d.event.message().unwrap();
    assert_eq!(m.attachments.len(), 2);
    assert_eq!(m.body, url);

    // A message without it: nothing removed, allowed as it was.
    let d = rt.chain.evaluate(message("no files"));
    assert_eq!(d.verdict.action, Action::Allow);
    assert!(d.verdict.removed_attachments.is_empty());
}
