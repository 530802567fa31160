//! Memory across reloads (extism #890, opa #3099 report growth): reloads
//! the chain 1 000 times, alternating two plugin configs, and prints the
//! process's resident set size as it goes. A bench binary, not CI.
//!
//! `cargo bench -p imgate --bench reload_rss` (after `make plugins`).

use std::path::Path;

use imgate::{Config, LiveChain, Runtime};

fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4
}

fn config(dir: &Path, word: &str) -> Config {
    let wasm = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/wasm32-wasip2/plugin");
    let text = format!(
        r#"
[runtime]
cache_dir = "{cache}"

[[plugins]]
name = "allow-all"
path = "{wasm}/allow_all.wasm"

[[plugins]]
name = "keyword-block"
path = "{wasm}/keyword_block.wasm"
[plugins.config]
words = ["{word}"]
"#,
        cache = dir.join("cache").display(),
        wasm = wasm.display(),
    );
    Config::parse(&text, dir).unwrap_or_else(|e| panic!("{e:?}"))
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let configs = [config(dir.path(), "alpha"), config(dir.path(), "beta")];
    let Runtime { engine, chain } = Runtime::start(&configs[0]).unwrap_or_else(|e| panic!("{e}"));
    let live = LiveChain::new(chain, &configs[0]);
    let event = imgate::event::json::EventDoc {
        network: "xmpp".into(),
        message: Some(imgate::event::json::MessageDoc {
            sender: "a".into(),
            recipient: "b".into(),
            body: "hello beta".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
    .into_event("e", 0)
    .unwrap();
    let start = rss_kib();
    println!("reloads      rss_kib");
    println!("{:>7} {:>12}", 0, start);
    let mut after_warmup = 0;
    let started = std::time::Instant::now();
    for n in 1..=1000 {
        live.reload(&engine, &configs[n % 2])
            .unwrap_or_else(|e| panic!("{e}"));
        live.evaluate(event.clone());
        if n == 100 {
            after_warmup = rss_kib();
        }
        if n % 100 == 0 {
            println!("{n:>7} {:>12}", rss_kib());
        }
    }
    let took = started.elapsed();
    let end = rss_kib();
    println!(
        "1000 reloads in {took:?}: {:?} per reload (2 plugins, from the cache)",
        took / 1000
    );
    println!(
        "growth over 1000 reloads: {} KiB; from reload 100 to 1000: {} KiB",
        end as i64 - start as i64,
        end as i64 - after_warmup as i64
    );
}
