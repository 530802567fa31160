//! What the proxy benchmarks (tests/benches/xmpp_proxy.rs, irc_proxy.rs)
//! share: the message load, the measuring window, the figures of a path
//! over interleaved rounds, the chain under test and the table comparing
//! each path with the direct one.
//!
//! A figure is trusted only as far as its rounds agree: every table shows
//! the median and the min–max over rounds, and a path whose throughput
//! range overlaps the direct path's is reported as "no difference" rather
//! than as a gain or a loss.

use std::time::Duration;

/// Messages a second for the latency figures, and for how long.
pub const RATE: u64 = 1_000;
pub const LATENCY_SECONDS: u64 = 3;
/// Text every benchmark message carries.
pub const FILLER: &str = "the quarterly numbers look fine, see the attached sheet for the details";
/// Rounds per path, interleaved: a disturbance hits every path alike.
pub const ROUNDS: usize = 3;

/// How long a throughput figure is measured: until both hold.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub min_messages: usize,
    pub min_time: Duration,
}

impl Window {
    /// Whether a sender that has sent `sent` for `elapsed` may stop.
    pub fn done(&self, sent: usize, elapsed: Duration) -> bool {
        sent >= self.min_messages && elapsed >= self.min_time
    }

    pub fn describe(&self) -> String {
        format!(
            "at least {} messages and {:.0} s per round",
            self.min_messages,
            self.min_time.as_secs_f64()
        )
    }
}

/// How far a receiver has got, so the sender keeps within [`AHEAD`] of
/// the slowest one. A server buffers only so much for a client that reads
/// slower than another writes (ngircd drops it past its write buffer), so
/// an unpaced flood measures the server's buffer, not the path.
#[derive(Clone, Default)]
pub struct Progress(std::sync::Arc<std::sync::atomic::AtomicUsize>);

/// Messages a sender may be ahead of its slowest receiver.
pub const AHEAD: usize = 5_000;

impl Progress {
    pub fn one_more(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The receiver is at message `n` (messages before it that did not
    /// arrive will not).
    pub fn reach(&self, n: usize) {
        self.0.fetch_max(n, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn get(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits until `sent` is within [`AHEAD`] of every receiver.
    pub async fn pace(receivers: &[Progress], sent: usize) {
        while receivers.iter().any(|r| sent > r.get() + AHEAD) {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
}

/// Sends `make(seq)` in batches of 100 for the window, kept within
/// [`AHEAD`] of `receivers`, then `end`; returns how many were sent.
pub async fn flood(
    w: &mut (impl tokio::io::AsyncWrite + Unpin),
    window: Window,
    make: impl Fn(usize) -> String,
    end: String,
    receivers: &[Progress],
) -> usize {
    use tokio::io::AsyncWriteExt;
    let start = std::time::Instant::now();
    let mut sent = 0;
    let mut batch = String::new();
    while !window.done(sent, start.elapsed()) {
        Progress::pace(receivers, sent).await;
        batch.clear();
        for _ in 0..100 {
            batch.push_str(&make(sent));
            sent += 1;
        }
        w.write_all(batch.as_bytes()).await.unwrap();
    }
    w.write_all(end.as_bytes()).await.unwrap();
    w.flush().await.unwrap();
    sent
}

/// One path's figures in one round.
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

/// One figure over rounds.
#[derive(Clone, Debug, Default)]
pub struct Spread(pub Vec<f64>);

impl Spread {
    pub fn median(&self) -> f64 {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    }
    pub fn min(&self) -> f64 {
        self.0.iter().copied().fold(f64::INFINITY, f64::min)
    }
    pub fn max(&self) -> f64 {
        self.0.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    }
    pub fn overlaps(&self, other: &Spread) -> bool {
        self.min() <= other.max() && other.min() <= self.max()
    }
    /// `median [min–max]`, each with `decimals`.
    pub fn show(&self, decimals: usize) -> String {
        format!(
            "{:.d$} [{:.d$}–{:.d$}]",
            self.median(),
            self.min(),
            self.max(),
            d = decimals
        )
    }
}

/// A path's figures over every round.
#[derive(Default)]
pub struct Rounds {
    pub msgs_per_s: Spread,
    pub p50_us: Spread,
    pub p99_us: Spread,
}

impl Rounds {
    pub fn push(&mut self, f: Figures) {
        self.msgs_per_s.0.push(f.msgs_per_s);
        self.p50_us.0.push(f.p50_us);
        self.p99_us.0.push(f.p99_us);
    }
}

/// Round by round ratio of `path` to `direct` (rounds are interleaved, so
/// round i of both ran back to back).
pub fn ratios(path: &Spread, direct: &Spread) -> Spread {
    Spread(path.0.iter().zip(&direct.0).map(|(p, d)| p / d).collect())
}

/// `path` against `direct` as people should read it: "no difference"
/// when their ranges overlap, else the median ratio and its range.
pub fn versus(path: &Spread, direct: &Spread) -> String {
    let r = ratios(path, direct);
    if path.overlaps(direct) {
        format!(
            "no difference ({:.0}% [{:.0}–{:.0}%])",
            100.0 * r.median(),
            100.0 * r.min(),
            100.0 * r.max()
        )
    } else {
        format!(
            "{:.0}% [{:.0}–{:.0}%]",
            100.0 * r.median(),
            100.0 * r.min(),
            100.0 * r.max()
        )
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
/// the others are compared with. Throughput in msg/s, latency in µs: each
/// the median [min–max] over rounds.
pub fn print_table(heading: &str, rows: &[(&str, Rounds)]) {
    let d = &rows[0].1;
    println!("\n{heading}\n");
    println!(
        "{:<26} {:>26} {:>30} {:>18} {:>20}",
        "path", "msg/s", "vs direct (per round)", "p50 µs", "p99 µs"
    );
    for (name, r) in rows {
        println!(
            "{:<26} {:>26} {:>30} {:>18} {:>20}",
            name,
            r.msgs_per_s.show(0),
            versus(&r.msgs_per_s, &d.msgs_per_s),
            r.p50_us.show(0),
            r.p99_us.show(0),
        );
    }
    println!(
        "\nTargets: imgate with no plugins >= 70% of direct throughput; <= 2000 µs added p99 at {RATE} msg/s."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_ranges_are_no_difference() {
        let direct = Spread(vec![100.0, 110.0, 105.0]);
        assert!(versus(&Spread(vec![108.0, 120.0, 115.0]), &direct).starts_with("no difference"));
        assert_eq!(
            versus(&Spread(vec![50.0, 55.0, 52.5]), &direct),
            "50% [50–50%]"
        );
        assert_eq!(direct.show(0), "105 [100–110]");
    }
}
