//! Matrix through imgate against straight to Synapse, in one run: one
//! Synapse, and imgate in front of it twice (no plugins; keyword-block),
//! both on plain loopback HTTP so the figures are imgate's own work.
//! matrix-nio clients (tests/clients/matrix_client.py `bench`) measure,
//! for each path and round:
//!
//! - the send: a message's `PUT /send` round trip, one at a time (p50, p99);
//! - the delivery: from the send until the receiver's `/sync` shows it
//!   (p50, p99);
//! - messages per second from several senders at once.
//!
//! Rounds alternate between the paths; each figure is the median over
//! rounds, and throughput is also shown as a ratio to direct (the target
//! is at least 90%).
//!
//!     make bench-matrix     (cargo bench -p imgate-tests --bench matrix_proxy)
//!
//! `ROUNDS`, `LATENCY` (messages one at a time, default 200), `BURST`
//! (default 1,000) and `CONCURRENCY` (default 8) change the load.

use imgate_tests::gateway::Imgate;
use imgate_tests::proxy_bench::{Spread, versus};
use imgate_tests::synapse::{Synapse, matrix_client};
use imgate_tests::write_config;
use serde_json::{Value, json};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn gateway(synapse: &Synapse, plugins: &str) -> (imgate_tests::TestConfig, Imgate) {
    let config = write_config(&format!(
        "[runtime]\ncache_dir = \"{{cache}}\"\n\n[matrix]\nlisten = \"127.0.0.1:0\"\n\
         [matrix.upstream]\naddress = \"127.0.0.1:{}\"\ntls = \"plain\"\n{plugins}",
        synapse.port
    ));
    let imgate = Imgate::start(&config, &[]);
    (config, imgate)
}

fn main() {
    let rounds = env("ROUNDS", 3);
    let synapse = Synapse::start(&[("alice", "a-pw"), ("bob", "b-pw")]);
    let keyword = "\n[[plugins]]\nname = \"keyword-block\"\npath = \"{wasm:keyword_block}\"\n\
                   [plugins.config]\nwords = [\"confidential\"]\n";
    let (_c1, bare) = gateway(&synapse, "");
    let (_c2, filtered) = gateway(&synapse, keyword);
    let paths = [
        ("direct to Synapse", synapse.url()),
        (
            "imgate, no plugins",
            format!("http://127.0.0.1:{}", bare.matrix.unwrap().port()),
        ),
        (
            "imgate + keyword-block",
            format!("http://127.0.0.1:{}", filtered.matrix.unwrap().port()),
        ),
    ];
    let load = json!({
        "users": {"alice": ["alice", "a-pw"], "bob": ["bob", "b-pw"]},
        "latency": env("LATENCY", 200),
        "burst": env("BURST", 1000),
        "concurrency": env("CONCURRENCY", 8),
    });
    let mut figures: Vec<Vec<Value>> = vec![Vec::new(); paths.len()];
    for round in 0..rounds {
        for (i, (name, server)) in paths.iter().enumerate() {
            let mut args = load.clone();
            args["server"] = json!(server);
            let got = matrix_client("bench", &args);
            eprintln!("round {round} {name}: {got}");
            figures[i].push(got);
        }
    }
    let spread =
        |i: usize, key: &str| Spread(figures[i].iter().filter_map(|f| f[key].as_f64()).collect());
    println!("Matrix through imgate vs direct, {rounds} rounds (median; loopback, plain HTTP)");
    println!(
        "{:<24} {:>9} {:>10} {:>10} {:>12} {:>12}",
        "path", "msg/s", "send p50", "send p99", "deliver p50", "deliver p99"
    );
    for (i, (name, _)) in paths.iter().enumerate() {
        println!(
            "{:<24} {:>9.0} {:>8.2}ms {:>8.2}ms {:>10.2}ms {:>10.2}ms",
            name,
            spread(i, "per_s").median(),
            spread(i, "send_p50").median(),
            spread(i, "send_p99").median(),
            spread(i, "delivery_p50").median(),
            spread(i, "delivery_p99").median(),
        );
    }
    for (i, (name, _)) in paths.iter().enumerate().skip(1) {
        println!(
            "{name}: msg/s {}; added send p50 {:+.2} ms, p99 {:+.2} ms; added delivery p50 {:+.2} ms, p99 {:+.2} ms",
            versus(&spread(i, "per_s"), &spread(0, "per_s")),
            spread(i, "send_p50").median() - spread(0, "send_p50").median(),
            spread(i, "send_p99").median() - spread(0, "send_p99").median(),
            spread(i, "delivery_p50").median() - spread(0, "delivery_p50").median(),
            spread(i, "delivery_p99").median() - spread(0, "delivery_p99").median(),
        );
    }
}
