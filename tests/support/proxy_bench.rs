//! What the proxy benchmarks (tests/benches/xmpp_proxy.rs, irc_proxy.rs)
//! share: the message load, the figures one path yields, the chain under
//! test and the table comparing each path with the direct one.

use std::time::Duration;

/// Messages sent as fast as possible for the throughput figure.
pub const THROUGHPUT_MESSAGES: usize = 20_000;
/// Messages a second for the latency figures, and for how long.
pub const RATE: u64 = 1_000;
pub const LATENCY_SECONDS: u64 = 5;
/// Text every benchmark message carries.
pub const FILLER: &str = "the quarterly numbers look fine, see the attached sheet for the details";

/// One path's figures.
pub struct Figures {
    pub msgs_per_s: f64,
    pub p50_us: f64,
    pub p99_us: f64,
}

impl Figures {
    /// From the throughput and every message's latency.
    pub fn new(msgs_per_s: f64, mut latencies: Vec<Duration>) -> Self {
        latencies.sort();
        let pct = |p: f64| {
            let i = ((latencies.len() as f64 * p) as usize).min(latencies.len() - 1);
            latencies[i].as_secs_f64() * 1e6
        };
        Figures {
            msgs_per_s,
            p50_us: pct(0.50),
            p99_us: pct(0.99),
        }
    }
}

/// The `[[plugins]]` section for keyword-block, the plugin the proxy
/// benchmarks measure.
pub fn keyword_chain() -> String {
    format!(
        "[[plugins]]\nname = \"keyword-block\"\npath = \"{}\"\n[plugins.config]\nwords = [\"confidential\", \"project falcon\", \"insider\"]\n",
        crate::wasm("keyword_block").display()
    )
}

/// Prints `heading` and one row per path; the first row is the direct path
/// the others are compared with.
pub fn print_table(heading: &str, rows: &[(&str, Figures)]) {
    let d = &rows[0].1;
    println!("\n{heading}\n");
    println!(
        "{:<24} {:>10} {:>9} {:>9} {:>10} {:>12} {:>12}",
        "path", "msg/s", "p50 µs", "p99 µs", "vs direct", "added p50", "added p99"
    );
    for (name, f) in rows {
        println!(
            "{:<24} {:>10.0} {:>9.0} {:>9.0} {:>9.0}% {:>9.0} µs {:>9.0} µs",
            name,
            f.msgs_per_s,
            f.p50_us,
            f.p99_us,
            100.0 * f.msgs_per_s / d.msgs_per_s,
            f.p50_us - d.p50_us,
            f.p99_us - d.p99_us
        );
    }
    println!(
        "\nTargets: imgate with no plugins >= 70% of direct throughput; <= 2000 µs added p99 at 1,000 msg/s."
    );
}
