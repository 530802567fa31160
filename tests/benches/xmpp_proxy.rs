//! XMPP through imgate against XMPP straight to Prosody, in one run:
//! messages per second, and p50/p99 latency at a fixed 1,000 msg/s, with
//! no plugins and with `keyword-block`. Prints a table and the ratios.
//!
//!     make bench-xmpp        (cargo bench -p imgate-tests --bench xmpp_proxy)
//!
//! Needs Prosody (make deps) and the plugin components (make plugins).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use imgate::adapters::xmpp::codec::{Element, Frame};
use imgate_tests::gateway::Imgate;
use imgate_tests::prosody::{DOMAIN, Prosody};
use imgate_tests::proxy_bench::{
    FILLER, Figures, LATENCY_SECONDS, RATE, THROUGHPUT_MESSAGES, keyword_chain, print_table,
};
use imgate_tests::rawxmpp::RawClient;
use imgate_tests::{TestConfig, write_config};
use tokio::io::AsyncWriteExt;

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
    let (cert, key) = imgate::tls::self_signed(&[DOMAIN.into()]).unwrap();
    let cert_path = config.dir.path().join("gateway.crt");
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(config.dir.path().join("gateway.key"), key).unwrap();
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

async fn measure(t: &Target) -> Figures {
    eprintln!("measuring: {}", t.name);
    // Throughput: everything as fast as the path takes it.
    let (mut alice, bob) = pair(t, "tp").await;
    let to = bob.jid.clone();
    let base = Instant::now();
    let rx = tokio::spawn(receive(bob, THROUGHPUT_MESSAGES, base));
    let start = Instant::now();
    let mut batch = String::new();
    for seq in 0..THROUGHPUT_MESSAGES {
        batch.push_str(&message(&to, seq, base.elapsed().as_nanos()));
        if seq % 100 == 99 {
            alice.io.write_all(batch.as_bytes()).await.unwrap();
            batch.clear();
        }
    }
    alice.io.write_all(batch.as_bytes()).await.unwrap();
    alice.io.flush().await.unwrap();
    rx.await.unwrap();
    let msgs_per_s = THROUGHPUT_MESSAGES as f64 / start.elapsed().as_secs_f64();
    drop(alice);

    // Latency: a steady 1,000 msg/s.
    let (mut alice, bob) = pair(t, "lat").await;
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
    let results: Vec<Figures> = targets.iter().map(|t| rt.block_on(measure(t))).collect();
    let rows: Vec<(&str, Figures)> = targets.iter().map(|t| t.name).zip(results).collect();
    print_table(
        &format!(
            "XMPP via Prosody {} — {THROUGHPUT_MESSAGES} messages for throughput; {RATE} msg/s for {LATENCY_SECONDS} s for latency",
            prosody_version()
        ),
        &rows,
    );
}

fn prosody_version() -> String {
    std::process::Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", "prosody"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}
