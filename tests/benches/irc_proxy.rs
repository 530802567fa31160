//! IRC through imgate against IRC straight to ngircd, in one run:
//! messages per second (each round at least 1,000,000 messages and 2 s),
//! p50/p99 latency at a fixed 1,000 msg/s, with no plugins and with
//! `keyword-block`; then a channel of 20 local members and one sender,
//! with the chain runs per line. Plain TCP on every hop, so the
//! difference is the gateway. Rounds interleave the paths; every figure
//! is the median [min–max] over them.
//!
//!     make bench-irc        (cargo bench -p imgate-tests --bench irc_proxy)
//!
//! `IMGATE_BIN=/path/to/imgate` measures another build of the gateway.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use imgate_tests::gateway::Imgate;
use imgate_tests::ngircd::Ngircd;
use imgate_tests::proxy_bench::{
    FILLER, Figures, LATENCY_SECONDS, Progress, RATE, ROUNDS, Rounds, Spread, Window, flood,
    keyword_chain, print_table, versus,
};
use imgate_tests::{ADMIN_TOKEN, TestConfig, admin_get, free_port, write_config};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

const WINDOW: Window = Window {
    min_messages: 1_000_000,
    min_time: Duration::from_secs(2),
};
/// Members of the fan-out channel besides the sender.
const MEMBERS: usize = 20;
/// Lines sent to the channel per round: each reaches every member.
const FANOUT_WINDOW: Window = Window {
    min_messages: 1_000_000 / MEMBERS,
    min_time: Duration::from_secs(2),
};
/// The line that ends a throughput round.
const END: &str = "END-OF-ROUND";

struct Gateway {
    _config: TestConfig,
    imgate: Imgate,
    admin: u16,
}

fn gateway(ngircd: &Ngircd, chain: &str) -> Gateway {
    let admin = free_port();
    let config = write_config(&format!(
        "[runtime]\ncache_dir = \"cache\"\n\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n\n\
         [irc]\nlisten = \"127.0.0.1:0\"\nflood_lines_per_s = 0\n\
         [irc.upstream]\naddress = \"127.0.0.1:{}\"\ntls = \"plain\"\n{chain}",
        ngircd.port
    ));
    let imgate = Imgate::start(
        &config,
        &[
            ("IMGATE_LOG", "warn,imgate::gateway=info"),
            ("IMGATE_ADMIN_TOKEN", ADMIN_TOKEN),
        ],
    );
    Gateway {
        _config: config,
        imgate,
        admin,
    }
}

/// Calls into keyword-block so far.
fn chain_runs(admin: u16) -> u64 {
    admin_get(admin, "/metrics")
        .lines()
        .find_map(|l| {
            l.strip_prefix("imgate_plugin_calls_total{plugin=\"keyword-block\"} ")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

type Reader = BufReader<OwnedReadHalf>;

/// Connects and registers as `nick`; returns the halves once 001 arrived.
async fn login(addr: SocketAddr, nick: &str) -> (Reader, OwnedWriteHalf) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let (r, mut w) = tcp.into_split();
    let mut r = BufReader::new(r);
    w.write_all(format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n").as_bytes())
        .await
        .unwrap();
    wait_for(&mut r, &mut w, |l| l.split(' ').nth(1) == Some("001")).await;
    (r, w)
}

/// Reads lines (answering PINGs) until one satisfies `done`.
async fn wait_for(r: &mut Reader, w: &mut OwnedWriteHalf, done: impl Fn(&str) -> bool) {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(r.read_line(&mut line).await.unwrap() > 0, "closed");
        if done(&line) {
            return;
        }
        if let Some(token) = line.strip_prefix("PING ") {
            w.write_all(format!("PONG {token}").as_bytes())
                .await
                .unwrap();
        }
    }
}

/// Counts PRIVMSGs until the END line; returns how many and when the last
/// arrived.
/// Lines that did not arrive: a plugin call that overran its deadline
/// (on a machine this loaded) fails closed, and its sender is told.
static LOST: AtomicUsize = AtomicUsize::new(0);

/// Counts PRIVMSGs until the END line; returns how many arrived and when
/// the last did (lines that did not arrive are added to [`LOST`]).
async fn count(mut r: Reader, progress: Progress) -> (usize, Instant) {
    let (mut received, mut next) = (0, 0);
    let mut line = String::new();
    let mut other = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await.unwrap() == 0 {
            panic!("receiver closed after {received} messages; last other line: {other}");
        }
        if !line.contains(" PRIVMSG ") {
            other.clone_from(&line);
            continue;
        }
        if line.contains(END) {
            return (received, Instant::now());
        }
        let Some(seq) = line
            .split_once(" :")
            .and_then(|(_, t)| t.split(' ').next()?.parse::<usize>().ok())
        else {
            continue;
        };
        LOST.fetch_add(seq.saturating_sub(next), Relaxed);
        progress.reach(seq + 1);
        next = seq + 1;
        received += 1;
    }
}

/// PRIVMSGs to `to` for the window, then the END line; returns how many.
async fn flood_to(
    w: &mut OwnedWriteHalf,
    to: &str,
    window: Window,
    receivers: &[Progress],
) -> usize {
    let line = |seq| format!("PRIVMSG {to} :{seq} 0 {FILLER}\r\n");
    flood(
        w,
        window,
        line,
        format!("PRIVMSG {to} :{END}\r\n"),
        receivers,
    )
    .await
}

async fn receive_latencies(mut r: Reader, n: usize, base: Instant) -> Vec<Duration> {
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
    let progress = Progress::default();
    let rx = tokio::spawn(count(bob_r, progress.clone()));
    let start = Instant::now();
    let sent = flood_to(&mut alice, &format!("b{tag}"), WINDOW, &[progress]).await;
    let (received, last) = rx.await.unwrap();
    assert!(received <= sent, "no message arrives twice");
    let msgs_per_s = received as f64 / last.duration_since(start).as_secs_f64();

    let (_ar, mut alice) = login(addr, &format!("c{tag}")).await;
    let (bob_r, _bw) = login(addr, &format!("d{tag}")).await;
    let to = format!("d{tag}");
    let n = (RATE * LATENCY_SECONDS) as usize;
    let base = Instant::now();
    let rx = tokio::spawn(receive_latencies(bob_r, n, base));
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

/// One sender and [`MEMBERS`] members in a channel: lines a second that
/// reach every member, and keyword-block's runs per line (with `admin`).
async fn fan_out(addr: SocketAddr, tag: &str, admin: Option<u16>) -> (f64, Option<f64>) {
    let channel = format!("#fan{tag}");
    let (mut sr, mut sender) = login(addr, &format!("s{tag}")).await;
    sender
        .write_all(format!("JOIN {channel}\r\n").as_bytes())
        .await
        .unwrap();
    wait_for(&mut sr, &mut sender, |l| l.contains(" 366 ")).await;
    let mut members = Vec::new();
    for i in 0..MEMBERS {
        let (mut r, mut w) = login(addr, &format!("m{i}x{tag}")).await;
        w.write_all(format!("JOIN {channel}\r\n").as_bytes())
            .await
            .unwrap();
        wait_for(&mut r, &mut w, |l| l.contains(" 366 ")).await;
        let progress = Progress::default();
        members.push((tokio::spawn(count(r, progress.clone())), w, progress));
    }
    // The sender's reader must drain the members' JOINs.
    let drain = tokio::spawn(async move {
        let mut line = String::new();
        while sr.read_line(&mut line).await.is_ok_and(|n| n > 0) {
            line.clear();
        }
    });
    let before = admin.map(chain_runs);
    let start = Instant::now();
    let receivers: Vec<Progress> = members.iter().map(|m| m.2.clone()).collect();
    let sent = flood_to(&mut sender, &channel, FANOUT_WINDOW, &receivers).await;
    let mut last = start;
    for (rx, _w, _) in members {
        let (received, at) = rx.await.unwrap();
        assert!(received <= sent, "no line arrives twice");
        last = last.max(at);
    }
    drain.abort();
    // Every line sent, the END line included.
    let per_line = admin
        .zip(before)
        .map(|(admin, before)| (chain_runs(admin) - before) as f64 / (sent + 1) as f64);
    (
        sent as f64 / last.duration_since(start).as_secs_f64(),
        per_line,
    )
}

fn main() {
    let ngircd = Ngircd::start();
    let none = gateway(&ngircd, "");
    let kw = gateway(&ngircd, &keyword_chain());
    let direct = SocketAddr::from(([127, 0, 0, 1], ngircd.port));
    let targets = [
        ("direct to ngircd", direct, None),
        ("imgate, no plugins", none.imgate.irc.unwrap(), None),
        (
            "imgate, keyword-block",
            kw.imgate.irc.unwrap(),
            Some(kw.admin),
        ),
    ];
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut runs: Vec<Rounds> = targets.iter().map(|_| Rounds::default()).collect();
    let mut fan: Vec<Spread> = targets.iter().map(|_| Spread::default()).collect();
    let mut runs_per_line = Spread::default();
    for round in 0..ROUNDS {
        for (i, (name, addr, _)) in targets.iter().enumerate() {
            eprintln!("round {round}: {name}");
            runs[i].push(rt.block_on(measure(*addr, &format!("{round}{i}"))));
        }
        for (i, (name, addr, admin)) in targets.iter().enumerate() {
            eprintln!("round {round}: {name}, fan-out to {MEMBERS}");
            let (lines_per_s, per_line) =
                rt.block_on(fan_out(*addr, &format!("{round}{i}"), *admin));
            fan[i].0.push(lines_per_s);
            runs_per_line.0.extend(per_line);
        }
    }
    let rows: Vec<(&str, Rounds)> = targets.iter().map(|(name, ..)| *name).zip(runs).collect();
    print_table(
        &format!(
            "IRC via ngircd — throughput: {}; latency: {RATE} msg/s for {LATENCY_SECONDS} s; median [min–max] of {ROUNDS} interleaved rounds",
            WINDOW.describe()
        ),
        &rows,
    );
    println!(
        "\nFan-out: 1 sender, {MEMBERS} local members in one channel ({} lines per round)\n",
        FANOUT_WINDOW.describe()
    );
    println!(
        "{:<26} {:>26} {:>30}",
        "path", "lines/s to all", "vs direct (per round)"
    );
    for ((name, ..), f) in targets.iter().zip(&fan) {
        println!("{:<26} {:>26} {:>30}", name, f.show(0), versus(f, &fan[0]));
    }
    println!(
        "\nkeyword-block chain runs per line, fan-out to {MEMBERS}: {}",
        runs_per_line.show(3)
    );
    let timeouts = admin_get(kw.admin, "/metrics")
        .lines()
        .find_map(|l| l.strip_prefix("imgate_plugin_timeouts_total{plugin=\"keyword-block\"} "))
        .map(|t| t.trim().to_owned())
        .unwrap_or_default();
    println!(
        "Lines that did not arrive: {} (keyword-block calls past their deadline, failed closed: {timeouts})",
        LOST.load(Relaxed)
    );
}
