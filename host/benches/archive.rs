//! The compliance archive: durable appends per second, one record per
//! commit and with group commit, and search latency on 1 million records.
//!
//!     make bench-archive    (cargo bench -p imgate --bench archive)
//!
//! A bench binary that prints figures; not run in CI.

use std::sync::Arc;
use std::time::{Duration, Instant};

use imgate::archive::{ArchiveConfig, ArchiveRecord, ArchiveWriter};
use imgate::archive::{Filter, Store};
use imgate::capabilities::metrics::HostStats;
use imgate::event::json::{EventDoc, MessageDoc};

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
    ArchiveRecord {
        seq: 0,
        plugin: "archiver".into(),
        appended_ms: 1_764_000_000_000 + i * 100,
        event: EventDoc {
            id: Some(format!("ev-{i}")),
            network: "xmpp".into(),
            message: Some(MessageDoc {
                sender: format!("user{}@corp.example", i % 5000),
                recipient: format!("peer{}@example.net", i % 7000),
                body: format!("about the {} {} and the {} ({i})", w(3), w(7), w(11)),
                ..Default::default()
            }),
            ..Default::default()
        },
        verdict: None,
        annotations: Vec::new(),
    }
}

fn main() {
    let dir = tempfile::tempdir().unwrap();

    // One record per commit: every append pays a full fsync.
    let mut store = Store::open(&dir.path().join("single.db")).unwrap();
    let n = 1000;
    let start = Instant::now();
    for i in 0..n {
        store.append(&mut [record(i)]).unwrap();
    }
    let single = n as f64 / start.elapsed().as_secs_f64();

    // Through the capability's writer with 64 concurrent appenders and a
    // 2 ms group-commit window: each commit carries many appends.
    let config = ArchiveConfig::at(dir.path().join("group.db"));
    let writer = Arc::new(ArchiveWriter::open(&config, Arc::new(HostStats::default())).unwrap());
    let per_thread = 300;
    let start = Instant::now();
    let threads: Vec<_> = (0..64u64)
        .map(|t| {
            let w = writer.clone();
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
    let group = (64 * per_thread) as f64 / start.elapsed().as_secs_f64();
    drop(writer);

    // Search on 1M records.
    let mut big = Store::open(&dir.path().join("big.db")).unwrap();
    let total = 1_000_000u64;
    let start = Instant::now();
    let mut i = 0;
    while i < total {
        let mut batch: Vec<_> = (i..i + 10_000).map(record).collect();
        big.append(&mut batch).unwrap();
        i += 10_000;
    }
    let fill = start.elapsed();
    let time = |f: &Filter| {
        let mut runs: Vec<Duration> = (0..5)
            .map(|_| {
                let s = Instant::now();
                let hits = big.search(f).unwrap();
                std::hint::black_box(hits.len());
                s.elapsed()
            })
            .collect();
        runs.sort();
        let hits = big.search(f).unwrap().len();
        (runs[2], hits)
    };
    let queries = [
        (
            "participant (user42@…), all",
            Filter {
                participant: Some("user42@corp.example".into()),
                ..Default::default()
            },
        ),
        (
            "keyword \"merger\", first 100",
            Filter {
                text: Some("merger".into()),
                limit: Some(100),
                ..Default::default()
            },
        ),
        (
            "keyword AND participant",
            Filter {
                text: Some("merger AND budget".into()),
                participant: Some("user42@corp.example".into()),
                ..Default::default()
            },
        ),
        (
            "time range (1 minute)",
            Filter {
                since_ms: Some(1_764_000_000_000 + 500_000 * 100),
                until_ms: Some(1_764_000_000_000 + 500_000 * 100 + 60_000),
                ..Default::default()
            },
        ),
    ];
    println!("\nArchive (SQLite WAL, synchronous=FULL)\n");
    println!("durable appends, one per commit:          {single:>8.0} /s");
    println!("durable appends, group commit (64 appenders, 2 ms): {group:>8.0} /s");
    println!("ratio: {:.1}x\n", group / single);
    println!(
        "search on {total} records (filled in {:.1} s), median of 5:",
        fill.as_secs_f64()
    );
    for (name, f) in &queries {
        let (t, hits) = time(f);
        println!(
            "  {name:<34} {:>8.2} ms  ({hits} hits)",
            t.as_secs_f64() * 1000.0
        );
    }
    let verify = Instant::now();
    let v = big.verify().unwrap();
    println!(
        "\nverify {} records: {:.1} s",
        v.records,
        verify.elapsed().as_secs_f64()
    );
}
