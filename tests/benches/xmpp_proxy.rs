//! XMPP through imgate against XMPP straight to Prosody, in one run:
//! messages per second (each round at least 2 s), p50/p99 latency at a
//! fixed 1,000 msg/s, with no plugins and with `keyword-block`; then a MUC
//! room of 20 local occupants and one sender. Rounds interleave the paths;
//! every figure is the median [min–max] over them.
//!
//! `IMGATE_BIN=/path/to/imgate` measures another build of the gateway.
//!
//!     make bench-xmpp        (cargo bench -p imgate-tests --bench xmpp_proxy)
//!
//! Needs Prosody (make deps) and the plugin components (make plugins).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use imgate::adapters::xmpp::codec::{Element, Frame};
use imgate_tests::gateway::Imgate;
use imgate_tests::prosody::MUC;
use imgate_tests::prosody::{DOMAIN, Prosody};
use imgate_tests::proxy_bench::{
    FILLER, Figures, LATENCY_SECONDS, Progress, RATE, ROUNDS, Rounds, Spread, Window, flood,
    keyword_chain, print_table, versus,
};
use imgate_tests::rawxmpp::RawClient;
use imgate_tests::{TestConfig, gateway_cert, write_config};
use tokio::io::{AsyncRead, AsyncWrite};

struct Target {
    name: &'static str,
    addr: SocketAddr,
    ca: PathBuf,
}

fn gateway(prosody: &Prosody, chain: &str) -> (TestConfig, Imgate, PathBuf) {
    let config = write_config(&format!(
        r#"
[runtime]
cache_dir = "cache"

[xmpp]
listen = "127.0.0.1:0"
cert = "gateway.crt"
key = "gateway.key"

[xmpp.upstream]
address = "127.0.0.1:{}"
ca_file = "{}"
{chain}
"#,
        prosody.port,
        prosody.cert.display()
    ));
    let cert_path = gateway_cert(&config, &[DOMAIN]);
    let imgate = Imgate::start(&config, &[("IMGATE_LOG", "warn,imgate::gateway=info")]);
    (config, imgate, cert_path)
}

async fn pair(t: &Target, tag: &str) -> (RawClient, RawClient) {
    let login = |user: &'static str, pw: &'static str, res: String| {
        let ca = t.ca.clone();
        let addr = t.addr;
        async move { RawClient::login(addr, &ca, DOMAIN, user, pw, &res).await }
    };
    let alice = login("alice", "alice-pw", format!("a-{tag}"))
        .await
        .expect("alice logs in");
    let bob = login("bob", "bob-pw", format!("b-{tag}"))
        .await
        .expect("bob logs in");
    (alice, bob)
}

fn message(to: &str, seq: usize, sent_ns: u128) -> String {
    format!(
        "<message to='{to}' type='chat' id='m{seq}'><body>{seq} {sent_ns} {FILLER}</body></message>"
    )
}

/// Receives `n` messages; returns each one's latency.
async fn receive(mut bob: RawClient, n: usize, base: Instant) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(n);
    while latencies.len() < n {
        let Ok(Some(Frame::Element(raw))) = bob.frame().await else {
            panic!("receiver's stream ended after {} messages", latencies.len());
        };
        let Ok(el) = Element::parse(&raw) else {
            continue;
        };
        let Some(body) = el.child("body", "jabber:client").map(Element::text) else {
            continue;
        };
        let mut parts = body.split(' ');
        let (Some(_), Some(sent)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Ok(sent) = sent.parse::<u128>() else {
            continue;
        };
        let now = base.elapsed().as_nanos();
        latencies.push(Duration::from_nanos((now.saturating_sub(sent)) as u64));
    }
    latencies
}

const WINDOW: Window = Window {
    min_messages: 20_000,
    min_time: Duration::from_secs(2),
};
/// Occupants of the fan-out room besides the sender.
const MEMBERS: usize = 20;
/// The body that ends a throughput round.
const END: &str = "END-OF-ROUND";

/// Counts messages with a body until the END one; returns how many and
/// when the last arrived.
async fn count<S: AsyncRead + AsyncWrite + Unpin>(
    mut c: RawClient<S>,
    progress: Progress,
) -> (usize, Instant) {
    let mut n = 0;
    loop {
        let Ok(Some(Frame::Element(raw))) = c.frame().await else {
            panic!("receiver's stream ended after {n} messages");
        };
        let Ok(el) = Element::parse(&raw) else {
            continue;
        };
        match el.child("body", "jabber:client").map(Element::text) {
            Some(body) if body == END => return (n, Instant::now()),
            Some(_) => {
                n += 1;
                progress.one_more();
            }
            None => {}
        }
    }
}

async fn measure(t: &Target, tag: &str) -> Figures {
    // Throughput: everything as fast as the path takes it.
    let (mut alice, bob) = pair(t, &format!("tp{tag}")).await;
    let to = bob.jid.clone();
    let progress = Progress::default();
    let rx = tokio::spawn(count(bob, progress.clone()));
    let start = Instant::now();
    let sent = flood(
        &mut alice.io,
        WINDOW,
        |seq| message(&to, seq, 0),
        format!("<message to='{to}' type='chat'><body>{END}</body></message>"),
        &[progress],
    )
    .await;
    let (received, last) = rx.await.unwrap();
    assert_eq!(received, sent, "every message arrives");
    let msgs_per_s = received as f64 / last.duration_since(start).as_secs_f64();
    drop(alice);
    // Latency: a steady 1,000 msg/s.
    let (mut alice, bob) = pair(t, &format!("lat{tag}")).await;
    let to = bob.jid.clone();
    let n = (RATE * LATENCY_SECONDS) as usize;
    let base = Instant::now();
    let rx = tokio::spawn(receive(bob, n, base));
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
    for seq in 0..n {
        tick.tick().await;
        alice
            .send(&message(&to, seq, base.elapsed().as_nanos()))
            .await
            .unwrap();
    }
    Figures::new(msgs_per_s, rx.await.unwrap())
}

/// Joins `room` as `nick` and waits for the room's own presence.
async fn join(c: &mut RawClient, room: &str, nick: &str) {
    c.send(&format!(
        "<presence to='{room}/{nick}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>"
    ))
    .await
    .unwrap();
    loop {
        let el = c.element().await.expect("joining the room");
        let from = el.attr("from").unwrap_or_default();
        if el.local_name() == "presence" && from == format!("{room}/{nick}") {
            return;
        }
    }
}

/// One sender and [`MEMBERS`] occupants in a room: messages a second that
/// reach every occupant.
async fn fan_out(t: &Target, tag: &str) -> f64 {
    let room = format!("fan{tag}@{MUC}");
    let login = |user: &'static str, pw: &'static str, res: String| {
        let ca = t.ca.clone();
        let addr = t.addr;
        async move { RawClient::login(addr, &ca, DOMAIN, user, pw, &res).await }
    };
    let mut sender = login("alice", "alice-pw", format!("fan-{tag}"))
        .await
        .expect("alice logs in");
    join(&mut sender, &room, "sender").await;
    let mut members = Vec::new();
    for i in 0..MEMBERS {
        let mut c = login("bob", "bob-pw", format!("m{i}-{tag}"))
            .await
            .expect("bob logs in");
        join(&mut c, &room, &format!("m{i}")).await;
        let progress = Progress::default();
        members.push((tokio::spawn(count(c, progress.clone())), progress));
    }
    // The room echoes the sender's own messages: count them too, so its
    // stream is read.
    let (echo, mut sender) = sender.split();
    let echo = tokio::spawn(count(echo, Progress::default()));
    let receivers: Vec<Progress> = members.iter().map(|m| m.1.clone()).collect();
    let start = Instant::now();
    let sent = flood(
        &mut sender,
        WINDOW,
        |seq| {
            format!("<message to='{room}' type='groupchat' id='f{seq}'><body>{seq} 0 {FILLER}</body></message>")
        },
        format!("<message to='{room}' type='groupchat'><body>{END}</body></message>"),
        &receivers,
    )
    .await;
    let mut last = start;
    for (rx, _) in members {
        let (received, at) = rx.await.unwrap();
        assert_eq!(received, sent, "every occupant gets every message");
        last = last.max(at);
    }
    echo.abort();
    sent as f64 / last.duration_since(start).as_secs_f64()
}

fn main() {
    let prosody = Prosody::start(&[("alice", "alice-pw"), ("bob", "bob-pw")]);
    let direct = Target {
        name: "direct to Prosody",
        addr: SocketAddr::from(([127, 0, 0, 1], prosody.port)),
        ca: prosody.cert.clone(),
    };
    let (_c1, gw_none, ca_none) = gateway(&prosody, "");
    let (_c2, gw_kw, ca_kw) = gateway(&prosody, &keyword_chain());
    let targets = [
        direct,
        Target {
            name: "imgate, no plugins",
            addr: gw_none.xmpp.unwrap(),
            ca: ca_none,
        },
        Target {
            name: "imgate, keyword-block",
            addr: gw_kw.xmpp.unwrap(),
            ca: ca_kw,
        },
    ];
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut runs: Vec<Rounds> = targets.iter().map(|_| Rounds::default()).collect();
    let mut fan: Vec<Spread> = targets.iter().map(|_| Spread::default()).collect();
    for round in 0..ROUNDS {
        for (i, t) in targets.iter().enumerate() {
            eprintln!("round {round}: {}", t.name);
            runs[i].push(rt.block_on(measure(t, &format!("{round}{i}"))));
        }
        for (i, t) in targets.iter().enumerate() {
            eprintln!("round {round}: {}, fan-out to {MEMBERS}", t.name);
            fan[i]
                .0
                .push(rt.block_on(fan_out(t, &format!("{round}{i}"))));
        }
    }
    let rows: Vec<(&str, Rounds)> = targets.iter().map(|t| t.name).zip(runs).collect();
    print_table(
        &format!(
            "XMPP via Prosody {} — throughput: {}; latency: {RATE} msg/s for {LATENCY_SECONDS} s; median [min–max] of {ROUNDS} interleaved rounds",
            prosody_version(),
            WINDOW.describe()
        ),
        &rows,
    );
    println!(
        "\nFan-out: 1 sender, {MEMBERS} local occupants of one MUC room ({})\n",
        WINDOW.describe()
    );
    println!(
        "{:<26} {:>26} {:>30}",
        "path", "msgs/s to all", "vs direct (per round)"
    );
    for (t, f) in targets.iter().zip(&fan) {
        println!(
            "{:<26} {:>26} {:>30}",
            t.name,
            f.show(0),
            versus(f, &fan[0])
        );
    }
}

fn prosody_version() -> String {
    std::process::Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", "prosody"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}
