//! keyword-block written in Rust, Python (componentize-py) and JavaScript
//! (componentize-js), side by side in one run: component size, first load
//! (compile), load from the compiled-artifact cache, one fresh
//! instantiation (with `init`), cost per event through the chain on a
//! 200-byte message without a listed word (most messages: Python and
//! JavaScript match through the host's `match`, which calls them only on a
//! hit) and on one with a word at its end (the plugin is called and
//! blocks it), and linear memory per instance.
//!
//! Run with `make bench-languages` (builds the plugins first).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use imgate::capabilities::{
    Capability, Grants, PluginCapabilities, SharedCapabilities, config::Settings,
};
use imgate::config::RuntimeConfig;
use imgate::contract::view::ViewData;
use imgate::contract::{handler, lifecycle};
use imgate::event::json::{EventDoc, MessageDoc};
use imgate::plugins::PluginEngine;
use imgate::plugins::{CompileSource, sha256_hex};
use imgate::{Config, Event, Runtime};

const LANGUAGES: [(&str, &str); 3] = [
    ("Rust", "keyword_block"),
    ("Python", "keyword_block_py"),
    ("JavaScript", "keyword_block_js"),
];

const WORDS: &str = r#"["confidential", "project falcon", "insider", "secret"]"#;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn wasm(name: &str) -> PathBuf {
    let p = workspace().join(format!("target/wasm32-wasip2/plugin/{name}.wasm"));
    assert!(p.exists(), "{} missing: run `make plugins`", p.display());
    p
}

const BODY: &str = "Morning team, the quarterly numbers look fine and the migration to the new \
                build cluster finished overnight. Please review the release notes before \
                the sync at ten, and send questions to the channel. Thanks!";

/// A 200-byte message with no blocked word: the plugin scans all of it.
fn message() -> Event {
    message_with(&BODY[..200])
}

/// 200 bytes that end in a blocked word.
fn message_with_word() -> Event {
    message_with(&format!("{} secret", &BODY[..193]))
}

fn message_with(body: &str) -> Event {
    EventDoc {
        network: "xmpp".into(),
        message: Some(MessageDoc {
            sender: "alice@corp.example/laptop".into(),
            recipient: "bob@partner.example".into(),
            body: body.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
    .into_event("ev-1", 1_764_075_600_000)
    .expect("event")
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn us(d: Duration) -> String {
    format!("{:.2} µs", d.as_secs_f64() * 1e6)
}

struct Row {
    language: &'static str,
    size: usize,
    compile: Duration,
    cached: Duration,
    instantiate: Duration,
    per_event: Duration,
    per_hit: Duration,
    memory: usize,
}

fn measure(language: &'static str, file: &str, cache: &Path) -> Row {
    let bytes = std::fs::read(wasm(file)).expect("read component");
    let sha = sha256_hex(&bytes);
    let runtime = RuntimeConfig {
        cache_dir: cache.to_path_buf(),
        ..RuntimeConfig::default()
    };
    let engine = PluginEngine::new(&runtime, SharedCapabilities::default()).expect("engine");

    let started = Instant::now();
    let (component, source) = engine.compile(&bytes, &sha).expect("compile");
    let compile = started.elapsed();
    assert_eq!(source, CompileSource::Compiled, "the cache starts empty");
    let cached = median(
        (0..5)
            .map(|_| {
                let started = Instant::now();
                let (_, source) = engine.compile(&bytes, &sha).expect("load");
                assert_eq!(source, CompileSource::Cache);
                started.elapsed()
            })
            .collect(),
    );

    // A fresh instance as the pool makes one: store, instantiate, init.
    let pre = engine
        .linker()
        .instantiate_pre(&component)
        .expect("instantiate_pre");
    let config_json = format!(r#"{{"words":{WORDS}}}"#);
    let caps = PluginCapabilities::new(
        engine.shared(),
        "bench",
        // Python and JavaScript match through the host; Rust matches itself.
        Grants::new([Capability::Match]),
        Settings::new(serde_json::from_str(&config_json).expect("settings")),
    );
    let lifecycle_idx = lifecycle::GuestIndices::new(&pre).expect("lifecycle");
    let handler_idx = handler::GuestIndices::new(&pre).expect("handler");
    let event = Arc::new(message());
    let mut memory = 0;
    let instantiate = median(
        (0..11)
            .map(|_| {
                let started = Instant::now();
                let mut store = imgate::plugins::floor::bare_store(engine.engine(), &caps, 64);
                store.set_epoch_deadline(u64::MAX / 2);
                let instance = pre.instantiate(&mut store).expect("instantiate");
                let life = lifecycle_idx.load(&mut store, &instance).expect("load");
                life.call_init(&mut store, &config_json)
                    .expect("init call")
                    .expect("init");
                let took = started.elapsed();
                // Memory after one event, as a pooled instance holds it.
                let h = handler_idx.load(&mut store, &instance).expect("handler");
                let view = store.data_mut().view.open(ViewData {
                    event: event.clone(),
                    verdict: None,
                });
                let out = store.data_mut().view.open_out();
                h.call_handle(&mut store, view, out).expect("handle");
                store.data_mut().view.close();
                memory = store.data().limiter.linear_bytes;
                took
            })
            .collect(),
    );

    // Per event through the chain, as the adapters call it.
    let toml = format!(
        "[runtime]\ncache_dir = \"{}\"\n[[plugins]]\nname = \"kb\"\npath = \"{}\"\ngrants = [\"match\"]\n[plugins.config]\nwords = {WORDS}\n",
        cache.display(),
        wasm(file).display()
    );
    let rt = Runtime::start(&Config::parse(&toml, Path::new(".")).expect("config"))
        .unwrap_or_else(|e| panic!("{e}"));
    let batch = if language == "Rust" { 20_000 } else { 2_000 };
    let per = |event: &Arc<Event>, blocked: bool| {
        for _ in 0..batch / 10 {
            rt.chain.evaluate(event.clone());
        }
        median(
            (0..9)
                .map(|_| {
                    let started = Instant::now();
                    for _ in 0..batch {
                        let d = rt.chain.evaluate(event.clone());
                        assert!(d.failures.is_empty(), "{:?}", d.failures);
                        assert_eq!(d.verdict.action.stops(), blocked, "{language}");
                    }
                    started.elapsed() / batch
                })
                .collect(),
        )
    };
    let per_event = per(&event, false);
    let per_hit = per(&Arc::new(message_with_word()), true);

    Row {
        language,
        size: bytes.len(),
        compile,
        cached,
        instantiate,
        per_event,
        per_hit,
        memory,
    }
}

fn main() {
    // `cargo bench` passes --bench; nothing to parse.
    let cache = tempfile::tempdir().expect("tempdir");
    let rows: Vec<Row> = LANGUAGES
        .iter()
        .map(|(language, file)| measure(language, file, cache.path()))
        .collect();
    let rust = rows[0].per_event.as_secs_f64();
    let rust_hit = rows[0].per_hit.as_secs_f64();
    println!("\nkeyword-block by language (2-core machine; medians; 200-byte message, 4 words)\n");
    println!(
        "| language | component | first load (compile) | cached load | fresh instance + init | per event, no word | × Rust | per event, a word (blocked) | × Rust | linear memory per instance |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {:.1} MB | {} | {} | {} | {} | {:.1}× | {} | {:.1}× | {:.1} MiB |",
            r.language,
            r.size as f64 / 1e6,
            ms(r.compile),
            ms(r.cached),
            us(r.instantiate),
            us(r.per_event),
            r.per_event.as_secs_f64() / rust,
            us(r.per_hit),
            r.per_hit.as_secs_f64() / rust_hit,
            r.memory as f64 / (1 << 20) as f64
        );
    }
}
