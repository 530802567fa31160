use criterion::{Criterion, criterion_group, criterion_main};
use imgate::capabilities::{Grants, PluginCapabilities, SharedCapabilities, config::Settings};
use imgate::config::RuntimeConfig;
use imgate::plugins::PluginEngine;
use std::time::Duration;

wasmtime::component::bindgen!({ path: "/tmp/scratch-guest/wit", world: "probe-world" });
use exports::probe::bench::probe::Msg;

fn b(c: &mut Criterion) {
    let rt = RuntimeConfig {
        cache_dir: Default::default(),
        ..Default::default()
    };
    let engine = PluginEngine::new(&rt, SharedCapabilities::default()).unwrap();
    let bytes =
        std::fs::read("/tmp/scratch-target/wasm32-wasip2/release/scratch_guest.wasm").unwrap();
    let component = wasmtime::component::Component::new(engine.engine(), &bytes).unwrap();
    let pre = engine.linker().instantiate_pre(&component).unwrap();
    let caps = PluginCapabilities::new(
        &SharedCapabilities::default(),
        "p",
        Grants::default(),
        Settings::new(Default::default()),
    );
    let mut store = imgate::plugins::instance::bare_store(engine.engine(), &caps, 64);
    let inst = pre.instantiate(&mut store).unwrap();
    let p = exports::probe::bench::probe::GuestIndices::new(&pre)
        .unwrap()
        .load(&mut store, &inst)
        .unwrap();
    store.set_epoch_deadline(u64::MAX / 4);
    let body: String = "x".repeat(200);
    let m = Msg {
        sender: "alice@corp.example/laptop".into(),
        recipient: "bob@partner.example".into(),
        body: body.clone(),
    };
    let mut g = c.benchmark_group("probe");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    g.bench_function("ping", |bch| bch.iter(|| p.call_ping(&mut store).unwrap()));
    g.bench_function("body_only", |bch| {
        bch.iter(|| p.call_body_only(&mut store, &body).unwrap())
    });
    g.bench_function("msg_in", |bch| {
        bch.iter(|| p.call_msg_in(&mut store, &m).unwrap())
    });
    g.bench_function("msg_verdict", |bch| {
        bch.iter(|| p.call_msg_verdict(&mut store, &m).unwrap())
    });
    g.finish();
}
criterion_group!(probe, b);
criterion_main!(probe);
