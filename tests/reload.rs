//! Hot reload of the chain under a steady stream of events: no event lost
//! or judged twice, every verdict traceable to exactly one plugin version,
//! and a reload that fails keeps the old chain.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use imgate::event::json::{EventDoc, MessageDoc};
use imgate::plugins::sha256_hex;
use imgate::{Action, Config, LiveChain, Runtime};
use imgate_tests::wasm;

/// Two builds of the same plugin with different hashes: v2 is v1 with a
/// custom section appended (valid wasm, same behaviour).
fn two_versions(dir: &Path) -> [(PathBuf, String); 2] {
    let v1 = std::fs::read(wasm("test_scripted")).unwrap();
    let mut v2 = v1.clone();
    let name = b"imgate-test-version";
    let payload = b"2";
    v2.push(0); // custom section
    v2.push((1 + name.len() + payload.len()) as u8);
    v2.push(name.len() as u8);
    v2.extend_from_slice(name);
    v2.extend_from_slice(payload);
    let p1 = dir.join("versioned-v1.wasm");
    let p2 = dir.join("versioned-v2.wasm");
    std::fs::write(&p1, &v1).unwrap();
    std::fs::write(&p2, &v2).unwrap();
    [(p1, sha256_hex(&v1)), (p2, sha256_hex(&v2))]
}

fn write_config(dir: &Path, name: &str, component: &Path, extra: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            r#"
[runtime]
cache_dir = "cache"

[[plugins]]
name = "versioned"
path = "{}"
grants = ["log", "kv", "metrics"]
# Deadlines are wall-clock: with three busy threads on two cores a call can
# be descheduled past 10 ms. This test is about reloads, not deadlines.
deadline_ms = 1000
[plugins.config]
block_if_body_contains = "blockme"
count = "n"
{extra}
"#,
            component.display()
        ),
    )
    .unwrap();
    path
}

fn message(id: String, body: &str) -> imgate::Event {
    EventDoc {
        id: Some(id),
        network: "irc".into(),
        message: Some(MessageDoc {
            sender: "carol".into(),
            recipient: "#ops".into(),
            body: body.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
    .into_event("-", 0)
    .unwrap()
}

struct Setup {
    _dir: tempfile::TempDir,
    engine: imgate::PluginEngine,
    live: LiveChain,
    configs: [PathBuf; 2],
    shas: [String; 2],
    dir: PathBuf,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let [(p1, s1), (p2, s2)] = two_versions(&dir);
    let c1 = write_config(&dir, "v1.toml", &p1, "tag = \"v1\"");
    let c2 = write_config(&dir, "v2.toml", &p2, "tag = \"v2\"");
    let config = Config::load(&c1).unwrap();
    let Runtime { engine, chain } = Runtime::start(&config).unwrap();
    let live = LiveChain::new(chain, &config);
    Setup {
        _dir: tmp,
        engine,
        live,
        configs: [c1, c2],
        shas: [s1, s2],
        dir,
    }
}

#[test]
fn a_hundred_reloads_under_load_lose_nothing_and_every_verdict_has_one_version() {
    let s = Arc::new(setup());
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..2)
        .map(|t| {
            let (s, stop) = (s.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let body = if i.is_multiple_of(3) {
                        "blockme please"
                    } else {
                        "hello"
                    };
                    let d = s.live.evaluate(message(format!("t{t}-{i}"), body));
                    seen.push((i, body, d));
                    i += 1;
                }
                (i, seen)
            })
        })
        .collect();

    for n in 0..100 {
        std::thread::sleep(Duration::from_millis(2));
        let config = Config::load(&s.configs[(n + 1) % 2]).unwrap();
        let generation = s.live.reload(&s.engine, &config).unwrap();
        assert_eq!(generation, n as u64 + 2);
    }
    std::thread::sleep(Duration::from_millis(5));
    stop.store(true, Ordering::Relaxed);

    let mut ids = HashSet::new();
    let mut total = 0u64;
    let mut by_version = [0u64; 2];
    for (t, w) in workers.into_iter().enumerate() {
        let (sent, seen) = w.join().unwrap();
        assert_eq!(seen.len() as u64, sent, "every event sent came back");
        total += sent;
        for (i, body, d) in seen {
            assert!(d.failures.is_empty(), "{:?}", d.failures);
            assert!(ids.insert(format!("t{t}-{i}")), "event judged twice");
            assert_eq!(d.event.id, format!("t{t}-{i}"));
            let versions: Vec<usize> = ["v1", "v2"]
                .iter()
                .enumerate()
                .filter(|(_, tag)| d.verdict.tags.iter().any(|t| t == *tag))
                .map(|(v, _)| v)
                .collect();
            assert_eq!(
                versions.len(),
                1,
                "exactly one version: {:?}",
                d.verdict.tags
            );
            let v = versions[0];
            // Generation 1 is v1, and reloads alternate v2, v1, ...
            assert_eq!(
                v,
                (d.generation as usize + 1) % 2,
                "generation {}",
                d.generation
            );
            by_version[v] += 1;
            if body.starts_with("blockme") {
                assert!(matches!(d.verdict.action, Action::Block(_)));
                assert_eq!(d.verdict.decided_by.as_ref().unwrap().sha256, s.shas[v]);
            } else {
                assert_eq!(d.verdict.action, Action::Allow);
            }
        }
    }
    assert!(total > 100, "a steady stream ran: {total} events");
    assert!(by_version[0] > 0 && by_version[1] > 0, "{by_version:?}");
    // Each event went through the plugin's handle exactly once: the
    // counter in kv, shared across versions by plugin name, agrees.
    let counted = s
        .engine
        .shared()
        .kv
        .namespace("versioned")
        .increment("n", 0)
        .unwrap();
    assert_eq!(counted as u64, total);
    assert_eq!(s.live.reload_counts(), (100, 0));
    let metrics = s.engine.shared().metrics.render_prometheus();
    assert!(
        metrics.contains("imgate_reloads_total{result=\"ok\"} 100"),
        "{metrics}"
    );
    assert_eq!(s.live.current().generation(), 101);
}

#[test]
fn a_failed_reload_keeps_the_old_chain_and_says_why() {
    let s = setup();
    let before = s.live.current().generation();
    let tag_of = |live: &LiveChain| live.evaluate(message("x".into(), "hello")).verdict.tags;

    // A broken component.
    let junk = s.dir.join("junk.wasm");
    std::fs::write(&junk, b"\0asm broken").unwrap();
    let broken = write_config(&s.dir, "broken.toml", &junk, "tag = \"v9\"");
    let err = s
        .live
        .reload(&s.engine, &Config::load(&broken).unwrap())
        .unwrap_err();
    assert!(err.to_string().contains("plugin `versioned`"), "{err}");

    // An init that refuses (an unknown setting).
    let v2 = s.dir.join("versioned-v2.wasm");
    let bad_init = write_config(&s.dir, "bad-init.toml", &v2, "tagg = \"v2\"");
    let err = s
        .live
        .reload(&s.engine, &Config::load(&bad_init).unwrap())
        .unwrap_err();
    assert!(err.to_string().contains("refused to initialise"), "{err}");

    // A signature required but missing.
    let unsigned = write_config(&s.dir, "unsigned.toml", &v2, "tag = \"v2\"");
    let text = std::fs::read_to_string(&unsigned).unwrap();
    std::fs::write(
        &unsigned,
        format!("[signing]\nrequire_signed = true\n{text}"),
    )
    .unwrap();
    let err = s
        .live
        .reload(&s.engine, &Config::load(&unsigned).unwrap())
        .unwrap_err();
    assert!(err.to_string().contains("is unsigned"), "{err}");

    // An engine setting, which needs a restart.
    let engine_change = write_config(&s.dir, "engine.toml", &v2, "tag = \"v2\"");
    let text = std::fs::read_to_string(&engine_change).unwrap();
    std::fs::write(
        &engine_change,
        text.replace(
            "cache_dir = \"cache\"",
            "cache_dir = \"cache\"\nmax_tags = 3",
        ),
    )
    .unwrap();
    let err = s
        .live
        .reload(&s.engine, &Config::load(&engine_change).unwrap())
        .unwrap_err();
    assert!(
        err.to_string().contains("[runtime] changed; restart"),
        "{err}"
    );

    assert_eq!(s.live.current().generation(), before);
    assert_eq!(tag_of(&s.live), vec!["v1".to_string()]);
    assert_eq!(s.live.reload_counts(), (0, 4));
    let metrics = s.engine.shared().metrics.render_prometheus();
    assert!(
        metrics.contains("imgate_reloads_total{result=\"failed\"} 4"),
        "{metrics}"
    );
    assert!(s.live.last_error().unwrap().contains("restart"));

    // The signing policy of the failed reload did not stick: v2 unsigned
    // loads again without `require_signed`.
    let fine = Config::load(&s.configs[1]).unwrap();
    assert_eq!(s.live.reload(&s.engine, &fine).unwrap(), before + 1);
    assert_eq!(tag_of(&s.live), vec!["v2".to_string()]);
    assert_eq!(s.live.last_error(), None);
}
