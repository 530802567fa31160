//! The store on both backends, side by side in one run: SQLite (a file)
//! and PostgreSQL (a throwaway cluster on loopback, started here with
//! `initdb` and `pg_ctl`, `fsync` on).
//!
//! - durable appends per second: one record per commit; through the
//!   archive's group-commit writer (64 appenders, 2 ms window) from one
//!   gateway, and from two (two writers, each with its own connections,
//!   appending to the same chain);
//! - search over 1,000,000 records: by participant, by keyword, by both;
//! - verify of the 1,000,000 records.
//!
//!     make bench-store     (cargo bench -p imgate-tests --bench store)
//!
//! `RECORDS` (default 1,000,000) changes the size. Not run in CI.

use std::sync::Arc;
use std::time::{Duration, Instant};

use imgate::archive::{ArchiveConfig, ArchiveRecord, ArchiveWriter, Filter, Store};
use imgate::capabilities::metrics::HostStats;
use imgate::event::json::{EventDoc, MessageDoc};
use imgate::store::StoreConfig;
use imgate_tests::postgres::Postgres;

const WORDS: [&str; 16] = [
    "quarterly",
    "numbers",
    "merger",
    "lunch",
    "deploy",
    "invoice",
    "meeting",
    "report",
    "pricing",
    "contract",
    "review",
    "budget",
    "roadmap",
    "hiring",
    "launch",
    "audit",
];

fn record(i: u64) -> ArchiveRecord {
    let w = |k: u64| WORDS[((i.wrapping_mul(2654435761) >> k) % 16) as usize];
    // One record in 2,000 names a rare project.
    let rare = if i % 2_000 == 7 { " falcon" } else { "" };
    ArchiveRecord {
        seq: 0,
        plugin: "archiver".into(),
        appended_ms: 1_764_000_000_000 + i * 100,
        event: EventDoc {
            id: Some(format!("ev-{i}")),
            network: "xmpp".into(),
            message: Some(MessageDoc {
                sender: format!("user{}@corp.example", i % 10_000),
                recipient: format!("peer{}@example.net", i % 7_000),
                body: format!("about the {} {} and the {}{rare} ({i})", w(3), w(7), w(11)),
                ..Default::default()
            }),
            ..Default::default()
        },
        verdict: None,
        annotations: Vec::new(),
    }
}

struct Figures {
    single: f64,
    group_one: f64,
    group_two: f64,
    fill: Duration,
    searches: Vec<(String, Duration, usize)>,
    verify: Duration,
    records: u64,
}

/// Appends through `writers` (one per gateway), 64 appenders in all.
fn group_commit(stores: &[StoreConfig]) -> f64 {
    let mut config = ArchiveConfig::in_store();
    config.group_commit_ms = 2;
    let writers: Vec<Arc<ArchiveWriter>> = stores
        .iter()
        .map(|s| Arc::new(ArchiveWriter::open(&config, s, Arc::new(HostStats::default())).unwrap()))
        .collect();
    let per_thread = 300;
    let start = Instant::now();
    let threads: Vec<_> = (0..64u64)
        .map(|t| {
            let w = writers[t as usize % writers.len()].clone();
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    w.append(record(t * 10_000 + i)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    (64 * per_thread) as f64 / start.elapsed().as_secs_f64()
}

fn measure(make: &mut dyn FnMut(&str) -> StoreConfig, total: u64) -> Figures {
    // One record per commit: every append pays a full commit.
    let mut store = Store::connect(&make("single")).unwrap();
    let n = 500;
    let start = Instant::now();
    for i in 0..n {
        store.append(&mut [record(i)]).unwrap();
    }
    let single = n as f64 / start.elapsed().as_secs_f64();
    drop(store);

    let group_one = group_commit(&[make("group1")]);
    let two = make("group2");
    let second = make_second(&two);
    let group_two = group_commit(&[two, second]);

    let mut big = Store::connect(&make("big")).unwrap();
    let start = Instant::now();
    let mut i = 0;
    while i < total {
        let mut batch: Vec<_> = (i..(i + 10_000).min(total)).map(record).collect();
        big.append(&mut batch).unwrap();
        i += 10_000;
    }
    let fill = start.elapsed();
    let queries = [
        (
            "participant (all its ~100 records)",
            Filter {
                participant: Some("user42@corp.example".into()),
                ..Default::default()
            },
        ),
        (
            "keyword, rare (all ~500 records)",
            Filter {
                text: Some("falcon".into()),
                ..Default::default()
            },
        ),
        (
            "keyword, common (first 100)",
            Filter {
                text: Some("merger".into()),
                limit: Some(100),
                ..Default::default()
            },
        ),
        (
            "two keywords AND participant",
            Filter {
                text: Some("merger budget".into()),
                participant: Some("user42@corp.example".into()),
                ..Default::default()
            },
        ),
    ];
    let searches = queries
        .iter()
        .map(|(name, f)| {
            let hits = big.search(f).unwrap().len();
            let mut runs: Vec<Duration> = (0..5)
                .map(|_| {
                    let s = Instant::now();
                    std::hint::black_box(big.search(f).unwrap().len());
                    s.elapsed()
                })
                .collect();
            runs.sort();
            ((*name).to_owned(), runs[2], hits)
        })
        .collect();
    let start = Instant::now();
    let records = big.verify().unwrap().records;
    let verify = start.elapsed();
    Figures {
        single,
        group_one,
        group_two,
        fill,
        searches,
        verify,
        records,
    }
}

/// A second gateway's view of the same store: for PostgreSQL another pool
/// (a URL that differs), for SQLite another connection to the file.
fn make_second(first: &StoreConfig) -> StoreConfig {
    if first.url.starts_with("postgres") {
        StoreConfig::at(format!("{}?application_name=imgate-second", first.url))
    } else {
        first.clone()
    }
}

fn main() {
    let total: u64 = std::env::var("RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let sqlite = measure(
        &mut |name| StoreConfig::sqlite(&dir.path().join(format!("{name}.db"))),
        total,
    );
    let pg = Postgres::start();
    let postgres = measure(
        &mut |name| {
            pg.psql("postgres", &format!("CREATE DATABASE {name}"));
            StoreConfig::at(pg.url_of(name))
        },
        total,
    );
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("\nThe store, SQLite and PostgreSQL side by side ({cores} cores, one machine)\n");
    println!(
        "{:<44} {:>12} {:>12} {:>9}",
        "", "SQLite", "PostgreSQL", "PG/SQLite"
    );
    let row = |name: &str, a: f64, b: f64, unit: &str| {
        println!(
            "{name:<44} {:>10.0}{unit} {:>10.0}{unit} {:>8.2}x",
            a,
            b,
            b / a
        );
    };
    row(
        "durable appends/s, one per commit",
        sqlite.single,
        postgres.single,
        "  ",
    );
    row(
        "durable appends/s, group commit, 1 gateway",
        sqlite.group_one,
        postgres.group_one,
        "  ",
    );
    row(
        "durable appends/s, group commit, 2 gateways",
        sqlite.group_two,
        postgres.group_two,
        "  ",
    );
    println!(
        "\nsearch over {} records (filled in {:.0} s / {:.0} s), median of 5:",
        sqlite.records,
        sqlite.fill.as_secs_f64(),
        postgres.fill.as_secs_f64()
    );
    for ((name, a, hits), (_, b, pg_hits)) in sqlite.searches.iter().zip(&postgres.searches) {
        println!(
            "  {name:<42} {:>8.2} ms {:>9.2} ms   ({hits} / {pg_hits} hits)",
            a.as_secs_f64() * 1000.0,
            b.as_secs_f64() * 1000.0
        );
    }
    println!(
        "\nverify {} records: {:>8.1} s {:>9.1} s",
        sqlite.records,
        sqlite.verify.as_secs_f64(),
        postgres.verify.as_secs_f64()
    );
    let worst = sqlite
        .searches
        .iter()
        .chain(&postgres.searches)
        .map(|s| s.1)
        .max()
        .unwrap_or_default();
    println!(
        "\ntargets: PostgreSQL group commit within 2x of SQLite's: {:.2}x; every search at most 100 ms: worst {:.1} ms",
        sqlite.group_one / postgres.group_one,
        worst.as_secs_f64() * 1000.0
    );
}
