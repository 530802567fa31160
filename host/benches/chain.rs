//! Cost per event of the plugin chain, with the floor measured in the same
//! run: a bare wasmtime call into the same component, no chain around it.
//!
//! Run with `make bench` (builds the plugins first). Medians are printed
//! at the end by `make bench`; criterion's reports are in target/criterion.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use imgate::capabilities::{Grants, PluginCapabilities, SharedCapabilities, config::Settings};
use imgate::contract::view::ViewData;
use imgate::contract::{handler, lifecycle};
use imgate::event::json::{EventDoc, MessageDoc};
use imgate::plugins::floor::HostState;
use imgate::{Config, Event, Runtime};
use wasmtime::Store;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn wasm(name: &str) -> String {
    let p = workspace().join(format!("target/wasm32-wasip2/plugin/{name}.wasm"));
    assert!(p.exists(), "{} missing: run `make plugins`", p.display());
    p.display().to_string()
}

/// A 200-byte message with no blocked word: every plugin runs in full.
fn message() -> Event {
    let body = "Morning team, the quarterly numbers look fine and the migration to the new \
                build cluster finished overnight. Please review the release notes before \
                the sync at ten, and send questions to the channel. Thanks!";
    let body = &body[..200];
    EventDoc {
        network: "xmpp".into(),
        session: imgate::event::json::SessionDoc {
            id: "s1".into(),
            user: "alice@corp.example".into(),
            peer: "10.0.0.5:51234".into(),
        },
        message: Some(MessageDoc {
            id: Some("m1".into()),
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

const KEYWORDS: &str = r#"words = ["confidential", "project falcon", "insider", "secret"]"#;

fn runtime(plugins: &[(&str, &str, &str)]) -> Runtime {
    runtime_with(plugins, "")
}

fn runtime_with(plugins: &[(&str, &str, &str)], sections: &str) -> Runtime {
    let mut toml = format!("[runtime]\ncache_dir = \"\"\n{sections}\n");
    for (name, file, extra) in plugins {
        toml.push_str(&format!(
            "[[plugins]]\nname = \"{name}\"\npath = \"{}\"\n{extra}\n",
            wasm(file)
        ));
    }
    let config = Config::parse(&toml, Path::new(".")).expect("config");
    Runtime::start(&config).unwrap_or_else(|e| panic!("{e}"))
}

/// A bare instance of `file`: store, instantiate, init once, then only
/// the typed `handle` call is measured.
fn bare(rt: &Runtime, file: &str, config_json: &str) -> (Store<HostState>, handler::Guest) {
    let engine = &rt.engine;
    let bytes = std::fs::read(wasm(file)).unwrap();
    let component = wasmtime::component::Component::new(engine.engine(), &bytes).unwrap();
    let pre = engine.linker().instantiate_pre(&component).unwrap();
    let map = serde_json::from_str(config_json).unwrap();
    let caps = PluginCapabilities::new(
        &SharedCapabilities::default(),
        "bare",
        Grants::default(),
        Settings::new(map),
    );
    let mut store = imgate::plugins::floor::bare_store(engine.engine(), &caps, 64);
    let instance = pre.instantiate(&mut store).unwrap();
    let life = lifecycle::GuestIndices::new(&pre)
        .unwrap()
        .load(&mut store, &instance)
        .unwrap();
    let h = handler::GuestIndices::new(&pre)
        .unwrap()
        .load(&mut store, &instance)
        .unwrap();
    store.set_epoch_deadline(u64::MAX / 2);
    life.call_init(&mut store, config_json).unwrap().unwrap();
    (store, h)
}

fn bare_call(
    store: &mut Store<HostState>,
    h: &handler::Guest,
    event: &Arc<Event>,
) -> imgate::contract::view::VerdictDraft {
    let view = store.data_mut().view.open(ViewData {
        event: event.clone(),
        verdict: None,
    });
    let out = store.data_mut().view.open_out();
    h.call_handle(&mut *store, view, out).unwrap();
    store.data_mut().view.close().unwrap()
}

fn benches(c: &mut Criterion) {
    let event = message();
    let kw_config = format!("[plugins.config]\n{KEYWORDS}");
    let kw_json = r#"{"words":["confidential","project falcon","insider","secret"]}"#;

    let noop = runtime(&[("allow-all", "allow_all", "")]);
    let kw = runtime(&[("keyword-block", "keyword_block", &kw_config)]);
    let three = runtime(&[
        ("allow-all", "allow_all", ""),
        ("keyword-block", "keyword_block", &kw_config),
        (
            "tagger",
            "test_scripted",
            "grants = [\"log\", \"kv\", \"metrics\"]\n[plugins.config]\ntag = \"seen\"",
        ),
    ]);

    let mut g = c.benchmark_group("per_event");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));

    // The floor: lend the event to the component and call `handle`, as
    // any embedder of this contract must, with no chain around it.
    let shared = Arc::new(event.clone());
    let (mut store, h) = bare(&noop, "allow_all", "{}");
    g.bench_function("floor_bare_call_allow_all", |b| {
        b.iter(|| bare_call(&mut store, &h, &shared))
    });
    let (mut store, h) = bare(&kw, "keyword_block", kw_json);
    g.bench_function("floor_bare_call_keyword_block", |b| {
        b.iter(|| bare_call(&mut store, &h, &shared))
    });

    // The layers between the floor and the chain, so the overhead can be
    // placed: an instance's own call (arm the deadline, open the view,
    // finish the verdict), then the plugin's (pool, health, limits,
    // metrics, clock).
    let deadline = std::time::Duration::from_millis(10);
    for (name, rt) in [
        ("layer_instance_allow_all", &noop),
        ("layer_instance_keyword_block", &kw),
    ] {
        let mut instance = rt.chain.plugins()[0].instantiate().unwrap();
        g.bench_function(name, |b| {
            b.iter(|| {
                instance
                    .handle(&shared, deadline, std::time::Instant::now())
                    .unwrap()
            })
        });
    }
    for (name, rt) in [
        ("layer_plugin_allow_all", &noop),
        ("layer_plugin_keyword_block", &kw),
    ] {
        let plugin = rt.chain.plugins()[0].clone();
        g.bench_function(name, |b| b.iter(|| plugin.handle(&shared).result.unwrap()));
    }

    for (name, rt) in [
        ("a_chain_allow_all", &noop),
        ("b_chain_keyword_block", &kw),
        ("c_chain_of_three", &three),
    ] {
        // The decision hands the event back, so it is fed to the next
        // iteration rather than cloned: only the chain is measured.
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut e = Arc::new(event.clone());
                let start = std::time::Instant::now();
                for _ in 0..iters {
                    e = rt.chain.evaluate(e).event;
                }
                start.elapsed()
            })
        });
    }

    let native = keyword_block_native(kw_json);
    g.bench_function("native_rust_keyword_scan", |b| {
        let imgate::EventKind::Message(m) = &event.kind else {
            unreachable!()
        };
        let body = m.body.as_str();
        b.iter(|| native.find(std::hint::black_box(body)))
    });
    g.finish();

    // The waiting import: an observer archiving every event; `append`
    // returns once the record is fsynced (no group-commit window).
    let dir = tempfile::tempdir().unwrap();
    let archived = runtime_with(
        &[("recorder", "test_recorder", "grants = [\"archive\"]")],
        &format!(
            "[archive]\npath = \"{}\"\ngroup_commit_ms = 0",
            dir.path().join("archive.db").display()
        ),
    );
    let mut g = c.benchmark_group("archive");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    g.sample_size(20);
    g.bench_function("e_chain_observer_durable_append", |b| {
        b.iter_custom(|iters| {
            let mut e = Arc::new(event.clone());
            let start = std::time::Instant::now();
            for _ in 0..iters {
                e = archived.chain.evaluate(e).event;
            }
            start.elapsed()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("instantiate");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    for (name, rt) in [("d_fresh_allow_all", &noop), ("d_fresh_keyword_block", &kw)] {
        let plugin = rt.chain.plugins()[0].clone();
        g.bench_function(name, |b| b.iter(|| plugin.instantiate().unwrap()));
    }
    g.finish();

    let mut g = c.benchmark_group("host_wait");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_secs(1));
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    g.bench_function("wait_off_worker_on_tokio_worker", |b| {
        b.iter_custom(|iters| {
            tokio.block_on(async move {
                tokio::spawn(async move {
                    let start = std::time::Instant::now();
                    for _ in 0..iters {
                        imgate::util::blocking::wait_off_worker(|| std::hint::black_box(1));
                    }
                    start.elapsed()
                })
                .await
                .unwrap()
            })
        })
    });
    g.finish();
}

fn keyword_block_native(config: &str) -> keyword_block::KeywordBlock {
    use imgate_sdk::Plugin;
    keyword_block::KeywordBlock::init(imgate_sdk::Config::from_json(config).unwrap()).unwrap()
}

criterion_group!(chain, benches);
criterion_main!(chain);
