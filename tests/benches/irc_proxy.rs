//! IRC through imgate against IRC straight to ngircd, in one run: messages
//! per second, and p50/p99 latency at a fixed 1,000 msg/s, with no plugins
//! and with `keyword-block`. Plain TCP on every hop, so the difference is
//! the gateway. Prints a table and the ratios.
//!
//!     make bench-irc        (cargo bench -p imgate-tests --bench irc_proxy)

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use imgate_tests::gateway::Imgate;
use imgate_tests::ngircd::Ngircd;
use imgate_tests::proxy_bench::{
    FILLER, Figures, LATENCY_SECONDS, RATE, THROUGHPUT_MESSAGES, keyword_chain, print_table,
};
use imgate_tests::{TestConfig, write_config};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

fn gateway(ngircd: &Ngircd, chain: &str) -> (TestConfig, Imgate) {
    let config = write_config(&format!(
        "[runtime]\ncache_dir = \"cache\"\n\n[irc]\nlisten = \"127.0.0.1:0\"\nflood_lines_per_s = 0\n\
         [irc.upstream]\naddress = \"127.0.0.1:{}\"\ntls = \"plain\"\n{chain}",
        ngircd.port
    ));
    let imgate = Imgate::start(&config, &[("IMGATE_LOG", "warn,imgate::gateway=info")]);
    (config, imgate)
}

/// Connects and registers as `nick`; returns the halves once 001 arrived.
async fn login(addr: SocketAddr, nick: &str) -> (BufReader<OwnedReadHalf>, OwnedWriteHalf) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let (r, mut w) = tcp.into_split();
    let mut r = BufReader::new(r);
    w.write_all(format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n").as_bytes())
        .await
        .unwrap();
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            r.read_line(&mut line).await.unwrap() > 0,
            "closed before 001"
        );
        if line.split(' ').nth(1) == Some("001") {
            return (r, w);
        }
        if let Some(token) = line.strip_prefix("PING ") {
            w.write_all(format!("PONG {token}").as_bytes())
                .await
                .unwrap();
        }
    }
}

async fn receive(mut r: BufReader<OwnedReadHalf>, n: usize, base: Instant) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    let mut line = String::new();
    while out.len() < n {
        line.clear();
        if r.read_line(&mut line).await.unwrap() == 0 {
            panic!("receiver closed after {} messages", out.len());
        }
        let Some((_, text)) = line.split_once(" PRIVMSG ") else {
            continue;
        };
        let Some((_, text)) = text.split_once(" :") else {
            continue;
        };
        let mut parts = text.split(' ');
        let (Some(_), Some(sent)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Ok(sent) = sent.parse::<u128>() else {
            continue;
        };
        out.push(Duration::from_nanos(
            base.elapsed().as_nanos().saturating_sub(sent) as u64,
        ));
    }
    out
}

async fn measure(addr: SocketAddr, tag: &str) -> Figures {
    let (_ar, mut alice) = login(addr, &format!("a{tag}")).await;
    let (bob_r, _bw) = login(addr, &format!("b{tag}")).await;
    let to = format!("b{tag}");
    let base = Instant::now();
    let rx = tokio::spawn(receive(bob_r, THROUGHPUT_MESSAGES, base));
    let start = Instant::now();
    let mut batch = String::new();
    for seq in 0..THROUGHPUT_MESSAGES {
        batch.push_str(&format!(
            "PRIVMSG {to} :{seq} {} {FILLER}\r\n",
            base.elapsed().as_nanos()
        ));
        if seq % 100 == 99 {
            alice.write_all(batch.as_bytes()).await.unwrap();
            batch.clear();
        }
    }
    alice.write_all(batch.as_bytes()).await.unwrap();
    rx.await.unwrap();
    let msgs_per_s = THROUGHPUT_MESSAGES as f64 / start.elapsed().as_secs_f64();

    let (_ar, mut alice) = login(addr, &format!("c{tag}")).await;
    let (bob_r, _bw) = login(addr, &format!("d{tag}")).await;
    let to = format!("d{tag}");
    let n = (RATE * LATENCY_SECONDS) as usize;
    let base = Instant::now();
    let rx = tokio::spawn(receive(bob_r, n, base));
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
    for seq in 0..n {
        tick.tick().await;
        alice
            .write_all(
                format!(
                    "PRIVMSG {to} :{seq} {} {FILLER}\r\n",
                    base.elapsed().as_nanos()
                )
                .as_bytes(),
            )
            .await
            .unwrap();
    }
    Figures::new(msgs_per_s, rx.await.unwrap())
}

fn main() {
    let ngircd = Ngircd::start();
    let (_c1, none) = gateway(&ngircd, "");
    let (_c2, kw) = gateway(&ngircd, &keyword_chain());
    let targets = [
        (
            "direct to ngircd",
            SocketAddr::from(([127, 0, 0, 1], ngircd.port)),
        ),
        ("imgate, no plugins", none.irc.unwrap()),
        ("imgate, keyword-block", kw.irc.unwrap()),
    ];
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // Rounds interleave the paths, so a disturbance (ngircd generating its
    // DH parameters at start, say) hits all of them; each figure is the
    // median of its rounds.
    const ROUNDS: usize = 3;
    let mut runs: Vec<Vec<Figures>> = (0..targets.len()).map(|_| Vec::new()).collect();
    for round in 0..ROUNDS {
        for (i, (name, addr)) in targets.iter().enumerate() {
            eprintln!("round {round}: {name}");
            runs[i].push(rt.block_on(measure(*addr, &format!("{round}{i}"))));
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let results: Vec<Figures> = runs
        .iter()
        .map(|r| Figures {
            msgs_per_s: median(r.iter().map(|f| f.msgs_per_s).collect()),
            p50_us: median(r.iter().map(|f| f.p50_us).collect()),
            p99_us: median(r.iter().map(|f| f.p99_us).collect()),
        })
        .collect();
    let rows: Vec<(&str, Figures)> = targets.iter().map(|(name, _)| *name).zip(results).collect();
    print_table(
        &format!(
            "IRC via ngircd — {THROUGHPUT_MESSAGES} messages for throughput; {RATE} msg/s for {LATENCY_SECONDS} s for latency; median of {ROUNDS} rounds"
        ),
        &rows,
    );
}
