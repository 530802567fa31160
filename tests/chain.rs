//! The chain with real components: order, rewrites, tags, observers, the
//! archive capability, concurrency and the compiled-artifact cache.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use imgate::event::EventKind;
use imgate::plugins::CompileSource;
use imgate::{Action, Config, Runtime};
use imgate_tests::{message, start, wasm, write_config};

fn sha(name: &str) -> String {
    imgate::plugins::sha256_hex(&std::fs::read(wasm(name)).unwrap())
}

#[test]
fn a_rewrite_feeds_the_next_plugin_and_tags_are_visible() {
    let (_cfg, rt) = start(
        r#"
[[plugins]]
name = "rewriter"
path = "{wasm:test_scripted}"
grants = ["log", "kv", "metrics"]
[plugins.config]
replace = ["foo", "bar"]
tag = "rewritten"

[[plugins]]
name = "tag-reader"
path = "{wasm:test_scripted}"
grants = ["log", "kv", "metrics"]
[plugins.config]
block_if_tag = "rewritten"
block_if_body_contains = "never"
"#,
    );
    let d = rt.chain.evaluate(message("say foo"));
    assert_eq!(d.verdict.action, Action::Block("saw tag rewritten".into()));
    assert_eq!(d.verdict.decided_by.as_ref().unwrap().plugin, "tag-reader");
    assert_eq!(
        d.verdict.decided_by.as_ref().unwrap().sha256,
        sha("test_scripted")
    );
    assert_eq!(d.verdict.tags, vec!["rewritten".to_string()]);
}

#[test]
fn the_rewritten_body_is_what_later_plugins_judge() {
    let (_cfg, rt) = start(
        r#"
[[plugins]]
name = "rewriter"
path = "{wasm:test_scripted}"
grants = ["log", "kv", "metrics"]
[plugins.config]
replace = ["foo", "bar"]

[[plugins]]
name = "bar-blocker"
path = "{wasm:test_scripted}"
grants = ["log", "kv", "metrics"]
[plugins.config]
block_if_body_contains = "bar"
"#,
    );
    let d = rt.chain.evaluate(message("foo"));
    assert_eq!(d.verdict.action, Action::Block("body has bar".into()));
    // Observers and callers see the body as attempted.
    let EventKind::Message(m) = &d.event.kind else {
        panic!()
    };
    assert_eq!(m.body, "foo");
}

#[test]
fn the_first_block_or_drop_wins_and_later_plugins_are_not_called() {
    let (_cfg, rt) = start(
        r#"
[[plugins]]
name = "dropper"
path = "{wasm:test_scripted}"
grants = ["log", "kv", "metrics"]
[plugins.config]
drop_if_body_contains = "spam"

[[plugins]]
name = "counter"
path = "{wasm:test_scripted}"
grants = ["log", "kv", "metrics"]
[plugins.config]
count = "n"
"#,
    );
    let d = rt.chain.evaluate(message("buy spam"));
    assert_eq!(d.verdict.action, Action::Drop);
    assert_eq!(d.verdict.decided_by.unwrap().plugin, "dropper");
    let counter = rt.engine.shared().metrics.plugin("counter");
    assert_eq!(counter.stats.calls(), 0);
    let d = rt.chain.evaluate(message("hello"));
    assert_eq!(d.verdict.action, Action::Allow);
    assert_eq!(d.verdict.decided_by, None);
    assert_eq!(counter.stats.calls(), 1);
    assert_eq!(counter.counter("calls"), Some(1));
}

#[test]
fn a_final_rewrite_is_delivered_and_named() {
    let (_cfg, rt) = start(
        r#"
[[plugins]]
name = "masker"
path = "{wasm:test_scripted}"
grants = ["log", "kv", "metrics"]
[plugins.config]
replace = ["4111 1111 1111 1111", "**** **** **** 1111"]
"#,
    );
    let d = rt.chain.evaluate(message("card 4111 1111 1111 1111 ok"));
    assert_eq!(d.delivered_body(), Some("card **** **** **** 1111 ok"));
    assert_eq!(d.verdict.decided_by.unwrap().plugin, "masker");
}

const ARCHIVED: &str = r#"
[archive]
path = "archive.db"
group_commit_ms = 1

[[plugins]]
name = "kw"
path = "{wasm:keyword_block}"
failure = "fail-open"
[plugins.config]
words = ["secret"]

[[plugins]]
name = "recorder"
path = "{wasm:test_recorder}"
grants = ["archive"]
"#;

fn archive_lines(cfg: &imgate_tests::TestConfig) -> Vec<serde_json::Value> {
    imgate_tests::archive_records(&cfg.dir.path().join("archive.db"))
}

#[test]
fn an_observer_archives_blocked_messages_durably_with_the_decider() {
    let (cfg, rt) = start(ARCHIVED);
    let d = rt.chain.evaluate(message("the secret plan"));
    assert!(matches!(d.verdict.action, Action::Block(_)));
    // `evaluate` returned, so the append was acknowledged: it is on disk.
    let lines = archive_lines(&cfg);
    assert_eq!(lines.len(), 1);
    let rec = &lines[0];
    assert_eq!(rec["seq"], 1);
    assert_eq!(rec["plugin"], "recorder");
    assert_eq!(rec["event"]["message"]["body"], "the secret plan");
    assert_eq!(rec["verdict"]["action"], "block");
    assert_eq!(rec["verdict"]["decided_by"]["plugin"], "kw");
    assert_eq!(rec["verdict"]["decided_by"]["sha256"], sha("keyword_block"));
    assert_eq!(
        rec["verdict"]["tags"],
        serde_json::json!(["keyword:blocked"])
    );
    assert_eq!(rec["annotations"], serde_json::json!([["recorder", "v1"]]));
    let metrics = rt.engine.shared().metrics.render_prometheus();
    assert!(
        metrics.contains("imgate_archive_appends_total{result=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("imgate_archive_append_seconds_count{} 1"),
        "{metrics}"
    );
}

#[test]
fn a_fail_closed_observer_that_cannot_record_stops_delivery() {
    let (cfg, rt) = start(ARCHIVED);
    let d = rt.chain.evaluate(message("please refuse-archive this"));
    assert_eq!(
        d.verdict.action,
        Action::Block("message could not be recorded by `recorder`".into())
    );
    assert!(archive_lines(&cfg).is_empty());
}

#[test]
fn a_fail_open_observer_failure_is_tagged_and_delivery_goes_on() {
    let toml = ARCHIVED.replace(
        "grants = [\"archive\"]",
        "grants = [\"archive\"]\nfailure = \"fail-open\"",
    );
    let (_cfg, rt) = start(&toml);
    let d = rt.chain.evaluate(message("refuse-archive"));
    assert_eq!(d.verdict.action, Action::Allow);
    assert!(
        d.verdict
            .tags
            .contains(&"imgate:failed:recorder".to_string())
    );
}

/// The archive's records of the message events, in order: (plugin,
/// action, tags).
fn recorded(cfg: &imgate_tests::TestConfig) -> Vec<(String, String, serde_json::Value)> {
    archive_lines(cfg)
        .iter()
        .map(|r| {
            (
                r["plugin"].as_str().unwrap_or_default().to_owned(),
                r["verdict"]["action"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                r["verdict"]["tags"].clone(),
            )
        })
        .collect()
}

#[test]
fn observers_that_can_veto_go_first_so_no_observer_records_a_verdict_that_did_not_stand() {
    // The fail-open logger is listed first; before, it recorded "allow"
    // and then the archiver's failure turned the message into a block.
    let (cfg, rt) = start(
        r#"
[archive]
path = "archive.db"
group_commit_ms = 1

[[plugins]]
name = "logger"
path = "{wasm:test_recorder}"
grants = ["archive"]
failure = "fail-open"
[plugins.config]
refuse_if_body_contains = "never"

[[plugins]]
name = "archiver"
path = "{wasm:test_recorder}"
grants = ["archive"]
"#,
    );
    let d = rt.chain.evaluate(message("please refuse-archive this"));
    assert_eq!(
        d.verdict.action,
        Action::Block("message could not be recorded by `archiver`".into())
    );
    let records = recorded(&cfg);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        (records[0].0.as_str(), records[0].1.as_str()),
        ("logger", "block")
    );
    assert_eq!(
        records[0].2,
        serde_json::json!(["imgate:failed:archiver"]),
        "the logger sees why"
    );
}

#[test]
fn an_observer_that_saw_a_verdict_before_a_veto_is_shown_the_one_that_stood() {
    let (cfg, rt) = start(
        r#"
[archive]
path = "archive.db"
group_commit_ms = 1

[[plugins]]
name = "first"
path = "{wasm:test_recorder}"
grants = ["archive"]
[plugins.config]
refuse_if_body_contains = "never"

[[plugins]]
name = "second"
path = "{wasm:test_recorder}"
grants = ["archive"]
"#,
    );
    let d = rt.chain.evaluate(message("refuse-archive"));
    assert!(matches!(d.verdict.action, Action::Block(_)));
    let records = recorded(&cfg);
    let actions: Vec<(&str, &str)> = records
        .iter()
        .map(|(p, a, _)| (p.as_str(), a.as_str()))
        .collect();
    assert_eq!(actions, [("first", "allow"), ("first", "block")]);
    let observed = d
        .timings
        .iter()
        .filter(|t| t.stage == imgate::plugins::Stage::Observe)
        .count();
    assert_eq!(observed, 3, "first, second, first again");
}

const WALLED_AND_CARD: &str = r#"
[archive]
path = "archive.db"
group_commit_ms = 1

[[plugins]]
name = "wall"
path = "{wasm:keyword_block}"
[plugins.config]
words = ["merger"]

[[plugins]]
name = "card-finder"
path = "{wasm:test_scripted}"
grants = ["log", "kv", "metrics"]
[plugins.config]
tag = "dlp:card-number"
replace = ["4111", "****"]

[[plugins]]
name = "recorder"
path = "{wasm:test_recorder}"
grants = ["archive"]
"#;

#[test]
fn the_record_of_a_blocked_message_carries_the_tags_of_the_plugins_after_the_blocker() {
    let (cfg, rt) = start(WALLED_AND_CARD);
    let d = rt
        .chain
        .evaluate(message("merger card 4111 1111 1111 1111"));
    assert!(matches!(d.verdict.action, Action::Block(_)));
    assert_eq!(d.verdict.decided_by.as_ref().unwrap().plugin, "wall");
    let tags = serde_json::json!(["keyword:blocked", "dlp:card-number"]);
    assert_eq!(serde_json::json!(d.verdict.tags), tags);
    let after: Vec<_> = d
        .timings
        .iter()
        .filter(|t| t.stage == imgate::plugins::Stage::AfterBlock)
        .map(|t| (&*t.plugin, t.outcome))
        .collect();
    assert_eq!(
        after,
        [("card-finder", "rewrite")],
        "run, its rewrite ignored"
    );
    let lines = archive_lines(&cfg);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["verdict"]["action"], "block");
    assert_eq!(lines[0]["verdict"]["tags"], tags);
    assert_eq!(
        lines[0]["event"]["message"]["body"], "merger card 4111 1111 1111 1111",
        "the body as attempted"
    );

    // Off: the chain stops at the block, as it does with no archiver.
    let (cfg, rt) = start(&format!(
        "[chain]\ntags_after_block = false\n{WALLED_AND_CARD}"
    ));
    let d = rt.chain.evaluate(message("merger card 4111"));
    assert_eq!(d.verdict.tags, ["keyword:blocked"]);
    assert_eq!(
        archive_lines(&cfg)[0]["verdict"]["tags"],
        serde_json::json!(["keyword:blocked"])
    );
}

#[test]
fn many_events_run_concurrently_with_correct_verdicts_and_shared_state() {
    let (_cfg, rt) = start(
        r#"
# Eight threads on two cores: a call can wait past a 10 ms wall-clock
# deadline while descheduled, so this test gives them room.
[[plugins]]
name = "kw"
path = "{wasm:keyword_block}"
pool = 4
deadline_ms = 1000
[plugins.config]
words = ["secret"]

[[plugins]]
name = "counter"
path = "{wasm:test_scripted}"
grants = ["log", "kv", "metrics"]
pool = 4
deadline_ms = 1000
[plugins.config]
count = "n"
"#,
    );
    let rt = Arc::new(rt);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let rt = rt.clone();
            std::thread::spawn(move || {
                for i in 0..250 {
                    let secret = (t + i) % 3 == 0;
                    let body = if secret { "a secret" } else { "hello" };
                    let d = rt.chain.evaluate(message(body));
                    assert!(d.failures.is_empty(), "{:?}", d.failures);
                    assert_eq!(matches!(d.verdict.action, Action::Block(_)), secret);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // The counter only ran for allowed events; kv saw every one of them.
    let allowed = (0..8)
        .flat_map(|t| (0..250).map(move |i| (t + i) % 3 != 0))
        .filter(|a| *a)
        .count() as i64;
    let ns = rt.engine.shared().kv.namespace("counter");
    assert_eq!(ns.increment("n", 0).unwrap(), allowed);
    let kw = &rt.chain.plugins()[0];
    assert!(kw.idle_instances() <= 4);
}

#[test]
fn a_second_start_loads_from_the_compiled_cache() {
    let cfg = write_config(
        r#"
[runtime]
cache_dir = "cache"

[[plugins]]
name = "kw"
path = "{wasm:keyword_block}"
[plugins.config]
words = ["x"]
"#,
    );
    let config = Config::load(&cfg.path).unwrap();
    let first = Runtime::start(&config).unwrap();
    assert_eq!(
        first.chain.plugins()[0].compiled_from,
        CompileSource::Compiled
    );
    drop(first);
    let second = Runtime::start(&config).unwrap();
    assert_eq!(
        second.chain.plugins()[0].compiled_from,
        CompileSource::Cache
    );
    // A corrupted artifact is detected and recompiled, not trusted.
    for entry in std::fs::read_dir(cfg.dir.path().join("cache")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "cwasm") {
            let mut bytes = std::fs::read(&path).unwrap();
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0xff;
            std::fs::write(&path, bytes).unwrap();
        }
    }
    drop(second);
    let third = Runtime::start(&config).unwrap();
    assert_eq!(
        third.chain.plugins()[0].compiled_from,
        CompileSource::Compiled
    );
}

#[test]
fn a_pinned_hash_that_differs_refuses_the_plugin() {
    let cfg = write_config(&format!(
        r#"
[[plugins]]
name = "kw"
path = "{{wasm:keyword_block}}"
sha256 = "{}"
[plugins.config]
words = ["x"]
"#,
        "0".repeat(64)
    ));
    let config = Config::load(&cfg.path).unwrap();
    let err = Runtime::start(&config)
        .err()
        .expect("pin mismatch")
        .to_string();
    assert!(err.contains("plugin `kw`") && err.contains("pins"), "{err}");
}

#[test]
fn an_archive_wait_does_not_stall_the_tokio_worker() {
    // Each append waits out a 25 ms group-commit window. With one tokio
    // worker, a ticker task must keep running while the chain waits.
    let toml = ARCHIVED.replace("group_commit_ms = 1", "group_commit_ms = 25");
    let (cfg, rt) = start(&toml);
    let rt = Arc::new(rt);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .unwrap();
    let ticks = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = std::time::Instant::now();
    tokio.block_on(async {
        let t = ticks.clone();
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                t.fetch_add(1, Relaxed);
            }
        });
        let chain = rt.clone();
        let work = tokio::spawn(async move {
            for _ in 0..10 {
                chain.chain.evaluate(message("hello"));
                tokio::task::yield_now().await;
            }
        });
        work.await.unwrap();
        ticker.abort();
    });
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(200),
        "{waited:?}"
    );
    assert_eq!(archive_lines(&cfg).len(), 10);
    let ticks = ticks.load(Relaxed);
    assert!(
        ticks >= 50,
        "ticker ran {ticks} times in {waited:?}: the worker was blocked"
    );
}
