//! The hostile-plugin corpus: each attack ends in its defined outcome,
//! within its bound, and the host serves the next event.

use std::time::{Duration, Instant};

use imgate::{Action, CallFailure, Config, Runtime};
use imgate_tests::{attack, failure, message, start, write_config};

fn hostile_chain(extra: &str) -> (imgate_tests::TestConfig, Runtime) {
    start(&format!(
        r#"
[runtime]
cache_dir = "cache"

[[plugins]]
name = "hostile"
path = "{{wasm:test_hostile}}"
grants = ["kv"]
{extra}
"#
    ))
}

#[test]
fn an_endless_loop_is_stopped_by_the_deadline_and_fails_closed() {
    let (_cfg, rt) = hostile_chain("");
    let (d, took) = attack(&rt, "loop");
    assert!(
        matches!(failure(&d), CallFailure::Timeout(_)),
        "{:?}",
        d.failures
    );
    assert!(matches!(d.verdict.action, Action::Block(_)));
    assert_eq!(d.verdict.decided_by.as_ref().unwrap().plugin, "hostile");
    assert!(
        d.verdict
            .tags
            .contains(&"imgate:failed:hostile".to_string())
    );
    assert!(took < Duration::from_millis(500), "took {took:?}");
    let stats = &rt.engine.shared().metrics.plugin("hostile").stats;
    assert_eq!(stats.timeouts.load(std::sync::atomic::Ordering::Relaxed), 1);
}

#[test]
fn fail_open_skips_a_looping_plugin() {
    let (_cfg, rt) = hostile_chain("failure = \"fail-open\"");
    let (d, _) = attack(&rt, "loop");
    assert_eq!(d.verdict.action, Action::Allow);
    assert!(
        d.verdict
            .tags
            .contains(&"imgate:failed:hostile".to_string())
    );
    let text = rt.engine.shared().metrics.render_prometheus();
    assert!(
        text.contains("imgate_plugin_fail_open_skips_total{plugin=\"hostile\"} 1"),
        "{text}"
    );
}

#[test]
fn a_memory_bomb_hits_the_cap() {
    // A generous deadline, so the cap (not the clock) is what stops it.
    let (_cfg, rt) = hostile_chain("memory_mib = 32\ndeadline_ms = 2000");
    let (d, took) = attack(&rt, "bomb");
    assert_eq!(
        failure(&d),
        &CallFailure::MemoryLimit(32),
        "{:?}",
        d.failures
    );
    assert!(matches!(d.verdict.action, Action::Block(_)));
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[test]
fn a_panic_is_a_trap() {
    let (_cfg, rt) = hostile_chain("");
    let (d, _) = attack(&rt, "panic");
    match failure(&d) {
        CallFailure::Trap(msg) => assert!(msg.contains("unreachable"), "{msg}"),
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn a_stack_overflow_is_a_trap() {
    let (_cfg, rt) = hostile_chain("");
    let (d, _) = attack(&rt, "recurse");
    assert!(
        matches!(failure(&d), CallFailure::Trap(_)),
        "{:?}",
        d.failures
    );
}

#[test]
fn a_100_mb_rewrite_is_refused_by_the_host() {
    // Room for the plugin to build the body: the host's limit must catch it.
    let (_cfg, rt) = hostile_chain("memory_mib = 400\ndeadline_ms = 5000");
    let (d, took) = attack(&rt, "huge");
    match failure(&d) {
        CallFailure::InvalidVerdict(msg) => {
            assert!(
                msg.contains("104857600") && msg.contains("exceeds"),
                "{msg}"
            )
        }
        other => panic!("expected an invalid verdict, got {other:?}"),
    }
    assert!(matches!(d.verdict.action, Action::Block(_)));
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn a_100_mb_rewrite_under_the_default_cap_hits_the_memory_limit() {
    let (_cfg, rt) = hostile_chain("deadline_ms = 5000");
    let (d, _) = attack(&rt, "huge");
    assert_eq!(failure(&d), &CallFailure::MemoryLimit(64));
}

#[test]
fn too_many_tags_are_refused() {
    let (_cfg, rt) = hostile_chain("");
    let (d, _) = attack(&rt, "tags");
    assert!(
        matches!(failure(&d), CallFailure::InvalidVerdict(_)),
        "{:?}",
        d.failures
    );
}

#[test]
fn an_ungranted_import_fails_to_load_naming_plugin_and_import() {
    let cfg = write_config(
        r#"
[[plugins]]
name = "hostile"
path = "{wasm:test_hostile}"
grants = ["log"]
"#,
    );
    let config = Config::load(&cfg.path).unwrap();
    let err = match Runtime::start(&config) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("loaded without the kv grant"),
    };
    assert!(err.contains("plugin `hostile`"), "{err}");
    assert!(err.contains("imgate:policy/kv@0.2.2"), "{err}");
    assert!(err.contains("not granted `kv`"), "{err}");
}

#[test]
fn a_granted_capability_works_and_is_shared_across_instances() {
    let (_cfg, rt) = hostile_chain("");
    for n in 1..=3 {
        let d = rt.chain.evaluate(message("kv"));
        assert!(
            d.verdict.tags.contains(&format!("hits:{n}")),
            "{:?}",
            d.verdict
        );
    }
}

#[test]
fn an_init_that_loops_or_refuses_fails_the_load_in_bounded_time() {
    for (mode, expect) in [("loop", "deadline"), ("fail", "configured to refuse")] {
        let cfg = write_config(&format!(
            r#"
[[plugins]]
name = "hostile"
path = "{{wasm:test_hostile}}"
grants = ["kv"]
[plugins.config]
init = "{mode}"
"#
        ));
        let config = Config::load(&cfg.path).unwrap();
        let started = Instant::now();
        let err = match Runtime::start(&config) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("init {mode} loaded"),
        };
        assert!(err.contains(expect), "{mode}: {err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}

#[test]
fn a_crash_loop_is_backed_off_and_counted() {
    let (_cfg, rt) = hostile_chain("");
    let stats = &rt.engine.shared().metrics.plugin("hostile").stats;
    for _ in 0..3 {
        rt.chain.evaluate(message("panic"));
    }
    let d = rt.chain.evaluate(message("panic"));
    assert!(
        matches!(failure(&d), CallFailure::BackingOff { failures: 3, .. }),
        "{:?}",
        d.failures
    );
    assert!(matches!(d.verdict.action, Action::Block(_)));
    assert_eq!(stats.traps.load(std::sync::atomic::Ordering::Relaxed), 3);
    // The backoff lapses and a clean event is served again.
    std::thread::sleep(imgate::plugins::BACKOFF_BASE + Duration::from_millis(20));
    let d = rt.chain.evaluate(message("hello"));
    assert_eq!(d.verdict.action, Action::Allow, "{:?}", d.failures);
}

#[test]
fn wasi_is_deny_all() {
    let (_cfg, rt) = hostile_chain("");
    let d = rt.chain.evaluate(message("probe-wasi"));
    assert_eq!(d.verdict.action, Action::Allow, "{:?}", d.failures);
    for tag in ["fs:denied", "env:0", "write:denied"] {
        assert!(
            d.verdict.tags.contains(&tag.to_string()),
            "{:?}",
            d.verdict.tags
        );
    }
    assert!(!std::path::Path::new("/tmp/imgate-hostile-escape").exists());
}

#[test]
fn a_wasi_sleep_ends_at_the_deadline() {
    // The epoch interrupts wasm code only; the sleep waits in the host,
    // where the bounded `wasi:io/poll` ends it.
    let (_cfg, rt) = hostile_chain("deadline_ms = 50");
    let (d, took) = attack(&rt, "sleep");
    assert!(
        matches!(failure(&d), CallFailure::Timeout(_)),
        "{:?}",
        d.failures
    );
    assert!(matches!(d.verdict.action, Action::Block(_)));
    assert!(
        took >= Duration::from_millis(45) && took < Duration::from_millis(1000),
        "took {took:?}"
    );
}

#[test]
fn many_sleeping_calls_at_once_each_end_at_their_deadline() {
    // More concurrent sleepers than tokio's blocking pool has threads
    // (512): each is ended at its deadline, so none is left parked.
    let (_cfg, rt) = hostile_chain("deadline_ms = 100\npool = 8");
    let rt = std::sync::Arc::new(rt);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let n: usize = std::env::var("IMGATE_SLEEPERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    let started = Instant::now();
    let took: Vec<Duration> = tokio.block_on(async {
        let calls: Vec<_> = (0..n)
            .map(|_| {
                let rt = rt.clone();
                tokio::spawn(async move {
                    let t = Instant::now();
                    let d = tokio::task::block_in_place(|| rt.chain.evaluate(message("sleep")));
                    assert!(
                        matches!(d.verdict.action, Action::Block(_)),
                        "{:?}",
                        d.failures
                    );
                    t.elapsed()
                })
            })
            .collect();
        let mut out = Vec::new();
        for c in calls {
            out.push(c.await.unwrap());
        }
        out
    });
    let longest = took.iter().max().unwrap();
    let stats = &rt.engine.shared().metrics.plugin("hostile").stats;
    let timeouts = stats.timeouts.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "{n} concurrent sleeping calls: all ended in {:?}, longest {longest:?}; \
         {timeouts} ran into their deadline, the rest met the crash-loop backoff",
        started.elapsed()
    );
    assert!(*longest < Duration::from_secs(5), "longest {longest:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let stats = &rt.engine.shared().metrics.plugin("hostile").stats;
    let timeouts = stats.timeouts.load(std::sync::atomic::Ordering::Relaxed);
    assert!(timeouts >= 1, "{timeouts}");
}

#[test]
fn a_million_printed_lines_are_bounded_by_the_deadline() {
    let (_cfg, rt) = hostile_chain("deadline_ms = 50");
    let started = Instant::now();
    let d = rt.chain.evaluate(message("println"));
    let took = started.elapsed();
    // Either the loop finished within the budget or the deadline ended it.
    assert!(took < Duration::from_millis(500), "took {took:?}");
    if let Some(f) = d.failures.first() {
        assert!(matches!(f.failure, CallFailure::Timeout(_)), "{f:?}");
    }
}

#[test]
fn text_a_network_cannot_carry_is_an_invalid_verdict() {
    let (_cfg, rt) = hostile_chain("");
    for body in ["rewrite-nul", "rewrite-ctl"] {
        let (d, _) = attack(&rt, body);
        match failure(&d) {
            CallFailure::InvalidVerdict(msg) => assert!(msg.contains("cannot carry"), "{msg}"),
            other => panic!("{body}: expected an invalid verdict, got {other:?}"),
        }
        assert!(matches!(d.verdict.action, Action::Block(_)));
    }
}

#[test]
fn tags_in_the_hosts_namespace_or_with_line_breaks_are_refused() {
    let (_cfg, rt) = hostile_chain("");
    for (body, says) in [("tag-host", "namespace"), ("tag-crlf", "control character")] {
        let (d, _) = attack(&rt, body);
        match failure(&d) {
            CallFailure::InvalidVerdict(msg) => assert!(msg.contains(says), "{msg}"),
            other => panic!("{body}: expected an invalid verdict, got {other:?}"),
        }
        // The only `imgate:` tag is the host's own failure tag.
        assert_eq!(
            d.verdict
                .tags
                .iter()
                .filter(|t| t.starts_with("imgate:"))
                .collect::<Vec<_>>(),
            vec!["imgate:failed:hostile"]
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_sleep_ends_at_the_deadline_inside_a_single_threaded_runtime() {
    // An embedder calling the chain from a current-thread runtime: the
    // bounded wait needs no runtime of the caller's.
    let (_cfg, rt) = hostile_chain("deadline_ms = 50");
    let started = Instant::now();
    let d = rt.chain.evaluate(message("sleep"));
    assert!(
        matches!(failure(&d), CallFailure::Timeout(_)),
        "{:?}",
        d.failures
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}
