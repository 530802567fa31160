//! Plugins written in Python (componentize-py) and JavaScript
//! (componentize-js) against the same WIT contract as the Rust ones:
//! the same verdicts as Rust's keyword-block event by event, host
//! capabilities called from Python, and the limits (deadline, memory cap,
//! traps) holding for both language runtimes.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use imgate::{Action, CallFailure, Runtime};
use imgate_tests::{
    Outcome, attack, failure, imgate_bin, message, replay_outcomes, replay_with, start, workspace,
    write_config,
};

/// The three builds of keyword-block, by component name.
const KEYWORD_BLOCKS: [&str; 3] = ["keyword_block", "keyword_block_py", "keyword_block_js"];

/// `imgate replay` of `transcript` through one build of keyword-block.
/// The Python and JavaScript builds match through the host: granted `match`.
fn replay(component: &str, settings: &str, transcript: &Path) -> Vec<Outcome> {
    replay_outcomes(
        &format!("{{wasm:{component}}}"),
        r#"["match"]"#,
        settings,
        transcript,
    )
}

/// Asserts the three keyword-blocks agree on every event of `transcript`,
/// and returns the (shared) outcomes.
fn assert_parity(settings: &str, transcript: &Path) -> Vec<Outcome> {
    let [rust, python, js] = KEYWORD_BLOCKS.map(|c| replay(c, settings, transcript));
    assert!(!rust.is_empty(), "the transcript has events");
    for (i, r) in rust.iter().enumerate() {
        assert_eq!(
            Some(r),
            python.get(i),
            "Python differs from Rust ({settings})"
        );
        assert_eq!(
            Some(r),
            js.get(i),
            "JavaScript differs from Rust ({settings})"
        );
    }
    assert_eq!((python.len(), js.len()), (rust.len(), rust.len()));
    rust
}

/// Messages that probe word boundaries, case folding and Unicode.
const TRICKY_BODIES: &[&str] = &[
    "this is SECRET",
    "about project x, tomorrow",
    "secretary duties",
    "topsecret",
    "nothing to see",
    "a secret",
    "the secretary",
    "Die STRASSE? nein: die Straße!",
    "Straßenbahn",
    "SeCrEt stuff",
    "über SECRET",
    "projekt x",
    "ünsecret",
    "secret_underscore",
    "secret2",
    "x secret١",
    "日本secret",
    "🙂secret🙂",
    "ACME deal",
    "acme deal",
    "Ωsecret",
    // Combining marks Unicode counts as alphabetic (U+0345, a Devanagari
    // vowel sign) glue to the word, as letters do.
    "secret\u{345} and secretा",
    "x secret\u{301} y",
    "a secret and a project x",
    "Secret plans",
    "",
];

fn tricky_transcript(dir: &Path) -> std::path::PathBuf {
    let mut text = String::new();
    for (i, body) in TRICKY_BODIES.iter().enumerate() {
        let event = serde_json::json!({
            "id": format!("t-{i}"),
            "network": "xmpp",
            "direction": if i % 2 == 0 { "outbound" } else { "inbound" },
            "session": {"id": "s1", "user": "alice@corp.example"},
            "timestamp": 1_764_075_600_000u64 + i as u64,
            "message": {"sender": "alice@corp.example", "recipient": "bob@partner.example", "body": body},
        });
        text.push_str(&event.to_string());
        text.push('\n');
    }
    let path = dir.join("tricky.jsonl");
    std::fs::write(&path, text).expect("write transcript");
    path
}

#[test]
fn rust_python_and_javascript_keyword_block_agree_on_the_sample_transcript() {
    let outcomes = assert_parity(
        r#"words = ["confidential", "project falcon", "insider"]
match = "whole-word"
case_insensitive = true
reason = "message blocked by compliance policy: \"{word}\" may not be sent""#,
        &workspace().join("examples/transcript.jsonl"),
    );
    let blocked: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.action == "block")
        .map(|o| o.event.as_str())
        .collect();
    assert_eq!(blocked, ["ev-3", "ev-4", "ev-7"]);
    let ev3 = outcomes.iter().find(|o| o.event == "ev-3").expect("ev-3");
    assert_eq!(
        ev3.reason.as_deref(),
        Some("message blocked by compliance policy: \"project falcon\" may not be sent")
    );
    assert_eq!(ev3.tags, ["keyword:blocked"]);
}

#[test]
fn the_three_agree_on_word_boundaries_case_and_unicode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let transcript = tricky_transcript(dir.path());
    for settings in [
        r#"words = ["secret", "Project X", "straße", "secretary"]
reason = "no {word} here""#,
        r#"words = ["secret"]
match = "substring""#,
        r#"words = ["ACME", "Secret"]
case_insensitive = false"#,
    ] {
        let outcomes = assert_parity(settings, &transcript);
        let blocks = outcomes.iter().filter(|o| o.action == "block").count();
        assert!(
            blocks >= 2 && blocks <= outcomes.len() - 2,
            "a mix of verdicts ({blocks} blocks) for {settings}"
        );
    }
}

/// The guides' link-guard in the three languages, by component name.
const LINK_GUARDS: [&str; 3] = ["examples/link_guard", "link_guard_py", "link_guard_js"];

/// Links that each language's own string functions read differently: a
/// control (U+001C), a next-line (U+0085) or a byte-order mark (U+FEFF)
/// beside a link, the Kelvin sign and `É` in a host. With `match` the host
/// reads them, once, for every language. (body, blocked?)
const LINK_PROBES: &[(&str, bool)] = &[
    ("see https://wiki.corp.example/page", false),
    ("see https://paste.example/x", true),
    ("https://evil.example\u{1C}.corp.example/", true),
    ("https://evil.example\u{85}.corp.example/", true),
    ("https://evil.example\u{FEFF}.corp.example/", true),
    ("\u{1C}https://evil.example", true),
    ("\u{85}https://wiki.corp.example/ ok", false),
    ("\u{FEFF}https://wiki.corp.example/\u{FEFF}", false),
    ("https://wi\u{212A}i.corp.example/", false),
    ("https://\u{212A}.evil.example/", true),
    ("https://École.corp.example/", false),
    ("https://école.test/", false),
    ("https://ÉCOLE.evil.example", true),
    ("https://corp.example.evil.example/", true),
    ("https://CORP.EXAMPLE./x", false),
    ("https://evil.example\\@corp.example/", true),
    ("http://me:pw@corp.example:8443/a", false),
    ("(www.partner.example)", false),
    ("www.evil.example.", true),
    ("https://%65vil.example/", true),
    ("no links here", false),
    ("xhttps://evil.example is not a link", false),
];

#[test]
fn link_guards_in_rust_python_and_javascript_agree_on_every_probe() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = String::new();
    for (i, (body, _)) in LINK_PROBES.iter().enumerate() {
        let event = serde_json::json!({
            "id": format!("l-{i}"),
            "network": "xmpp",
            "direction": "outbound",
            "session": {"id": "s1", "user": "alice@corp.example"},
            "timestamp": 1_764_075_600_000u64 + i as u64,
            "message": {"sender": "alice@corp.example", "recipient": "bob@partner.example", "body": body},
        });
        text.push_str(&event.to_string());
        text.push('\n');
    }
    let transcript = dir.path().join("links.jsonl");
    std::fs::write(&transcript, text).expect("write transcript");
    let settings = r#"allowed_domains = ["corp.example", "partner.example", "ÉCOLE.test"]"#;
    let [rust, python, js] = LINK_GUARDS.map(|c| {
        replay_outcomes(
            &format!("{{wasm:{c}}}"),
            r#"["match", "metrics"]"#,
            settings,
            &transcript,
        )
    });
    assert_eq!(rust.len(), LINK_PROBES.len());
    for (i, (body, blocked)) in LINK_PROBES.iter().enumerate() {
        assert_eq!(
            rust[i].action == "block",
            *blocked,
            "Rust on {body:?}: {:?}",
            rust[i]
        );
        assert_eq!(python.get(i), Some(&rust[i]), "Python on {body:?}");
        assert_eq!(js.get(i), Some(&rust[i]), "JavaScript on {body:?}");
    }
    let reason = rust[2].reason.as_deref();
    assert_eq!(reason, Some("links to evil.example may not be sent"));
}

/// `imgate check` refuses `component` with `settings`, saying `expected`.
fn assert_refused(component: &str, grants: &str, settings: &str, expected: &str) {
    let cfg = write_config(&format!(
        "[runtime]\ncache_dir = \"{{cache}}\"\n\n[[plugins]]\nname = \"p\"\npath = \"{{wasm:{component}}}\"\ngrants = {grants}\n\n[plugins.config]\n{settings}\n"
    ));
    let out = Command::new(imgate_bin())
        .args(["check", "--config"])
        .arg(&cfg.path)
        .output()
        .expect("run imgate check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{component} {settings}");
    assert!(
        stderr.contains("refused to initialise") && stderr.contains(expected),
        "{component} {settings}: {stderr}"
    );
}

#[test]
fn the_sdk_helpers_refuse_a_bad_config_with_the_reason() {
    for component in ["link_guard_py", "link_guard_js"] {
        for (settings, expected) in [
            ("", "missing field `allowed_domains`"),
            (
                "allowed_domains = \"corp.example\"",
                "`allowed_domains` must be",
            ),
            ("allowed_domains = []\ncolour = 1", "unknown field `colour`"),
            ("allowed_domains = [\"a b\"]", "`a b` is not a host name"),
        ] {
            assert_refused(component, r#"["match", "metrics"]"#, settings, expected);
        }
    }
}

#[test]
fn python_and_javascript_refuse_a_bad_config_with_the_reason() {
    for component in ["keyword_block_py", "keyword_block_js"] {
        for (settings, expected) in [
            ("words = []", "at least one"),
            ("words = [\"a\"]\nmtch = \"x\"", "mtch"),
            ("words = [\"a\"]\nmatch = \"fuzzy\"", "fuzzy"),
        ] {
            assert_refused(component, r#"["match"]"#, settings, expected);
        }
    }
}

fn rate_limit_transcript(dir: &Path) -> std::path::PathBuf {
    let mut text = String::new();
    let users = [
        ("alice@corp.example", 5),
        ("carol@corp.example", 1),
        ("bot@corp.example", 4),
    ];
    let mut n = 0;
    for (user, count) in users {
        for _ in 0..count {
            n += 1;
            let event = serde_json::json!({
                "id": format!("r-{n}"), "network": "xmpp", "direction": "outbound",
                "session": {"id": "s1", "user": user},
                "timestamp": 1_764_075_600_000u64 + n,
                "message": {"sender": user, "recipient": "bob@partner.example", "body": "hi"},
            });
            text.push_str(&event.to_string());
            text.push('\n');
        }
    }
    let path = dir.join("rate.jsonl");
    std::fs::write(&path, text).expect("write transcript");
    path
}

const RATE_LIMIT_PY: &str = r#"
[runtime]
cache_dir = "{cache}"

[[plugins]]
name = "rate-limit-py"
path = "{wasm:rate_limit_py}"
grants = ["config", "kv", "clock", "log"]
deadline_ms = 1000

[plugins.config]
messages_per_minute = 1
burst = 3
exempt = ["Bot@corp.example"]
"#;

/// rate-limit-py reads its settings through `config`, keeps buckets in
/// `kv` (compare-and-swap), refills by `clock` and reports through `log`.
#[test]
fn python_calls_the_config_kv_clock_and_log_capabilities() {
    let dir = tempfile::tempdir().expect("tempdir");
    let transcript = rate_limit_transcript(dir.path());
    let cfg = write_config(RATE_LIMIT_PY);
    let (replayed, stderr) = replay_with(&cfg.path, &transcript, &[("IMGATE_LOG", "info")]);
    let verdicts: Vec<(String, String)> = replayed
        .iter()
        .map(|v| {
            (
                v["action"].as_str().unwrap_or_default().to_owned(),
                v["tags"].to_string(),
            )
        })
        .collect();
    let actions: Vec<&str> = verdicts.iter().map(|(a, _)| a.as_str()).collect();
    // alice: a burst of 3, then limited; carol her own bucket; bot exempt.
    assert_eq!(
        actions,
        [
            "allow", "allow", "allow", "block", "block", "allow", "allow", "allow", "allow",
            "allow"
        ]
    );
    assert!(
        verdicts[3].1.contains("rate-limit:exceeded"),
        "{:?}",
        verdicts[3]
    );
    assert!(stderr.contains("limiting to 1/min, burst 3"), "{stderr}");
    assert!(
        stderr.contains("alice@corp.example is over the limit"),
        "{stderr}"
    );
    assert!(stderr.contains("plugin=\"rate-limit-py\""), "{stderr}");

    // Its world imports exactly the four capabilities, each a grant.
    let ungranted = write_config(&RATE_LIMIT_PY.replace(
        r#"grants = ["config", "kv", "clock", "log"]"#,
        r#"grants = ["config", "clock", "log"]"#,
    ));
    let out = Command::new(imgate_bin())
        .args(["check", "--config"])
        .arg(&ungranted.path)
        .output()
        .expect("run imgate check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("is not granted `kv`"), "{stderr}");
}

#[test]
fn inspect_reads_python_and_javascript_components() {
    for (component, capabilities, leftovers) in [
        ("keyword_block_py", vec!["match"], true),
        ("keyword_block_js", vec!["match"], false),
        ("rate_limit_py", vec!["config", "kv", "clock", "log"], true),
    ] {
        let out = Command::new(imgate_bin())
            .args(["plugin", "inspect", "--json"])
            .arg(imgate_tests::wasm(component))
            .output()
            .expect("run imgate plugin inspect");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("inspect --json");
        assert_eq!(v["policy"], true, "{component}");
        let granted: Vec<&str> = v["imports"]
            .as_array()
            .expect("imports")
            .iter()
            .filter(|i| i["kind"] == "capability")
            .filter_map(|i| i["capability"].as_str())
            .collect();
        assert_eq!(granted, capabilities, "{component}");
        // WASI is linked deny-all, never a grant; nothing is unknown.
        assert!(
            v["imports"]
                .as_array()
                .expect("imports")
                .iter()
                .all(|i| i["kind"] != "unknown"),
            "{component}: {v}"
        );
        // componentize-py leaves an export outside the contract; it is
        // listed as ignored (and the tests above show it is never called).
        let ignored = v["ignored_exports"].as_array().expect("ignored_exports");
        assert_eq!(!ignored.is_empty(), leftovers, "{component}: {v}");
        // lifecycle and handler, and rate-limit-py's interest.
        let interest = component == "rate_limit_py";
        assert_eq!(v["interest"], interest, "{component}: {v}");
        assert_eq!(
            v["exports"].as_array().map(Vec::len),
            Some(2 + usize::from(interest)),
            "{component}: {v}"
        );
    }
}

/// `max_instances` counts plugin instances whatever their language:
/// a Python instance links 14 core modules, and the engine's pool makes
/// room for them.
#[test]
fn max_instances_holds_for_python_instances() {
    let (_cfg, rt) = start(
        r#"
[runtime]
cache_dir = "{cache}"
max_instances = 2

[[plugins]]
name = "kb"
path = "{wasm:keyword_block_py}"
grants = ["match"]
pool = 1

[plugins.config]
words = ["secret"]
"#,
    );
    // One instance waits in the plugin's pool; a second may exist beside it.
    let plugin = &rt.chain.plugins()[0];
    let second = plugin.instantiate();
    assert!(second.is_ok(), "{:?}", second.err());
    // A third is over the cap, and says so.
    let third = plugin.instantiate();
    let err = third.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("concurrent limit"), "{err}");
}

fn hostile(component: &str, extra: &str) -> (imgate_tests::TestConfig, Runtime) {
    start(&format!(
        r#"
[runtime]
cache_dir = "{{cache}}"

[[plugins]]
name = "hostile"
path = "{{wasm:{component}}}"
{extra}
"#
    ))
}

#[test]
fn endless_loops_in_python_and_javascript_are_stopped_by_the_deadline() {
    for component in ["test_hostile_py", "test_hostile_js"] {
        let (_cfg, rt) = hostile(component, "deadline_ms = 50");
        let (d, took) = attack(&rt, "loop");
        assert!(
            matches!(failure(&d), CallFailure::Timeout(_)),
            "{component}: {:?}",
            d.failures
        );
        assert!(
            matches!(d.verdict.action, Action::Block(_)),
            "{component}: fail-closed"
        );
        assert!(took < Duration::from_secs(1), "{component}: took {took:?}");
    }
}

#[test]
fn memory_bombs_in_python_and_javascript_hit_the_cap() {
    for component in ["test_hostile_py", "test_hostile_js"] {
        let (_cfg, rt) = hostile(component, "memory_mib = 96\ndeadline_ms = 5000");
        let (d, took) = attack(&rt, "bomb");
        assert!(
            matches!(failure(&d), CallFailure::MemoryLimit(96)),
            "{component}: {:?}",
            d.failures
        );
        assert!(took < Duration::from_secs(5), "{component}: took {took:?}");
    }
}

#[test]
fn exceptions_in_python_and_javascript_are_traps() {
    for (component, body) in [("test_hostile_py", "raise"), ("test_hostile_js", "throw")] {
        let (_cfg, rt) = hostile(component, "deadline_ms = 500");
        let (d, _) = attack(&rt, body);
        assert!(
            matches!(failure(&d), CallFailure::Trap(_)),
            "{component}: {:?}",
            d.failures
        );
    }
}

/// A Python plugin built against imgate:policy 0.1.1, which adds `kv.keys`:
/// componentize-py imports every function of the world, so before the host
/// stubbed what it lacks, this plugin could not load at all.
#[test]
fn a_python_plugin_built_for_a_newer_contract_loads_and_only_the_missing_function_fails() {
    let (_cfg, rt) = start(
        r#"
[runtime]
cache_dir = "{cache}"

[[plugins]]
name = "future"
path = "{wasm:test_future_py}"
grants = ["kv"]
failure = "fail-open"
deadline_ms = 2000
"#,
    );
    let d = rt.chain.evaluate(message("hello"));
    assert_eq!(d.verdict.action, Action::Allow);
    assert_eq!(d.verdict.tags, ["future:served"]);
    let d = rt.chain.evaluate(message("count"));
    assert_eq!(
        d.verdict.tags,
        ["future:count:1"],
        "the functions it shares with the host work"
    );
    let d = rt.chain.evaluate(message("keys"));
    assert_eq!(d.verdict.action, Action::Allow, "fail-open");
    assert_eq!(d.verdict.tags, ["imgate:failed:future"]);
    let CallFailure::Trap(why) = failure(&d) else {
        panic!("not a trap: {:?}", failure(&d))
    };
    assert!(
        why.contains("keys"),
        "the failure names the missing function: {why}"
    );
    // And the plugin serves the next event.
    let d = rt.chain.evaluate(message("hello"));
    assert_eq!(d.verdict.tags, ["future:served"]);
}
