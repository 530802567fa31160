//! Bridged messages against direct ones, in one run: Prosody with MUC and
//! ngircd, imgate with a relay on each, the reference `bridge` plugin, an
//! IRC-bound keyword-block and the archive (the id map is written there,
//! as in production). Clients are Rust, straight to the servers: alice and
//! carol in the XMPP room, bob and dave in the IRC channel.
//!
//! - latency, one message at a time: XMPP→IRC (alice to bob, bridged)
//!   against XMPP→XMPP (alice to carol, the same message), and IRC→XMPP
//!   (bob to alice) against IRC→IRC (bob to dave); p50 and p99, the added
//!   latency as the difference, rounds interleaved;
//! - throughput: a burst of messages from alice (and from bob), each
//!   reaching the room directly and the other network bridged: bridged
//!   messages per second against direct ones.
//!
//!     make bench-bridge     (cargo bench -p imgate-tests --bench bridge)
//!
//! `IMGATE_BIN=/path/to/imgate` measures another build of the gateway;
//! `MESSAGES=n` sets the burst (default 2,000); `ARCHIVER=0` leaves the
//! archiver plugin out (the id map is still written to the archive's
//! database), which shows what durable archiving of each original and
//! each copy costs.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use imgate_tests::bridge::{LIVE_BRIDGE, ROOM, WORDS_FOR_IRC, World, room};
use imgate_tests::prosody::DOMAIN;
use imgate_tests::proxy_bench::{Spread, ratios};
use imgate_tests::rawxmpp::RawClient;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const ROUNDS: usize = 3;
const PER_ROUND: usize = 200;

type Arrivals = mpsc::UnboundedReceiver<(String, Instant)>;

/// An XMPP client in the room: its writer, and what it hears (bodies).
async fn xmpp_member(
    world: &World,
    user: &str,
) -> (
    tokio::io::WriteHalf<Box<dyn imgate_tests::rawxmpp::Io>>,
    Arrivals,
) {
    let addr = format!("127.0.0.1:{}", world.prosody.port).parse().unwrap();
    let mut c = RawClient::login(
        addr,
        &world.prosody.cert,
        DOMAIN,
        user,
        &format!("{user}-pass"),
        "bench",
    )
    .await
    .expect("login");
    c.send(&format!(
        "<presence to='{}/{user}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>",
        room()
    ))
    .await
    .unwrap();
    // Until our own presence in the room comes back.
    loop {
        let e = c.element().await.expect("join");
        if e.local_name() == "presence"
            && e.to_xml().contains("code='110'") | e.to_xml().contains("code=\"110\"")
        {
            break;
        }
    }
    let (mut reader, writer) = c.split();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(e) = reader.element().await {
            if e.local_name() == "message"
                && let Some(body) = e.child("body", "jabber:client")
            {
                let _ = tx.send((body.text(), Instant::now()));
            }
        }
    });
    (writer, rx)
}

/// An IRC client in the channel: its writer, and what it hears (texts).
async fn irc_member(world: &World, nick: &str) -> (tokio::net::tcp::OwnedWriteHalf, Arrivals) {
    let tcp = TcpStream::connect(("127.0.0.1", world.ngircd.port))
        .await
        .unwrap();
    tcp.set_nodelay(true).unwrap();
    let (r, mut w) = tcp.into_split();
    w.write_all(format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\nJOIN {ROOM}\r\n").as_bytes())
        .await
        .unwrap();
    let mut lines = BufReader::new(r).lines();
    while let Some(line) = lines.next_line().await.unwrap() {
        if line.contains(" 366 ") {
            break;
        }
        if let Some(token) = line.strip_prefix("PING ") {
            w.write_all(format!("PONG {token}\r\n").as_bytes())
                .await
                .unwrap();
        }
    }
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some((_, text)) = line
                .split_once(" PRIVMSG ")
                .and_then(|(_, r)| r.split_once(" :"))
            {
                let _ = tx.send((text.to_owned(), Instant::now()));
            }
        }
    });
    (w, rx)
}

/// Waits until `rx` has seen every text of `wanted` (as a suffix), and
/// returns when each came.
async fn collect(rx: &mut Arrivals, wanted: &[String], path: &str) -> HashMap<String, Instant> {
    let mut got = HashMap::new();
    while got.len() < wanted.len() {
        let Ok(Some((text, at))) = tokio::time::timeout(Duration::from_secs(60), rx.recv()).await
        else {
            panic!("{path}: {} of {} arrived", got.len(), wanted.len());
        };
        if let Some(w) = wanted.iter().find(|w| text.ends_with(w.as_str())) {
            got.entry(w.clone()).or_insert(at);
        }
    }
    got
}

fn pct(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let burst: usize = std::env::var("MESSAGES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(2_000);
    // ARCHIVER=0: without the archiver plugin (the id map stays in the
    // archive's database).
    let plugins = match std::env::var("ARCHIVER").as_deref() {
        Ok("0") => &LIVE_BRIDGE[LIVE_BRIDGE.find("[[plugins]]\nname = \"bridge\"").unwrap()..],
        _ => LIVE_BRIDGE,
    };
    let mut world = World::new(&format!("{WORDS_FOR_IRC}{plugins}"));
    world.start();
    let (mut alice, mut alice_hears) = xmpp_member(&world, "alice").await;
    let (_carol, mut carol_hears) = xmpp_member(&world, "carol").await;
    let (mut bob, mut bob_hears) = irc_member(&world, "bob").await;
    let (_dave, mut dave_hears) = irc_member(&world, "dave").await;
    let say_xmpp = |text: &str| {
        format!(
            "<message to='{}' type='groupchat'><body>{text}</body></message>",
            room()
        )
    };

    // Latency: one message at a time; each reaches the sender's network
    // directly and the other bridged.
    let mut lat: HashMap<&str, Vec<Spread>> = HashMap::new();
    for round in 0..ROUNDS {
        let mut rows: HashMap<&str, Vec<f64>> = HashMap::new();
        for i in 0..PER_ROUND {
            let tag = format!("lx-{round}-{i}");
            let sent = Instant::now();
            alice.write_all(say_xmpp(&tag).as_bytes()).await.unwrap();
            alice.flush().await.unwrap();
            let direct =
                collect(&mut carol_hears, std::slice::from_ref(&tag), "xmpp direct").await[&tag];
            let bridged =
                collect(&mut bob_hears, std::slice::from_ref(&tag), "xmpp→irc").await[&tag];
            rows.entry("xmpp direct")
                .or_default()
                .push((direct - sent).as_secs_f64() * 1e6);
            rows.entry("xmpp→irc bridged")
                .or_default()
                .push((bridged - sent).as_secs_f64() * 1e6);

            let tag = format!("li-{round}-{i}");
            let sent = Instant::now();
            bob.write_all(format!("PRIVMSG {ROOM} :{tag}\r\n").as_bytes())
                .await
                .unwrap();
            let direct =
                collect(&mut dave_hears, std::slice::from_ref(&tag), "irc direct").await[&tag];
            let bridged =
                collect(&mut alice_hears, std::slice::from_ref(&tag), "irc→xmpp").await[&tag];
            rows.entry("irc direct")
                .or_default()
                .push((direct - sent).as_secs_f64() * 1e6);
            rows.entry("irc→xmpp bridged")
                .or_default()
                .push((bridged - sent).as_secs_f64() * 1e6);
        }
        for (name, v) in rows {
            let e = lat
                .entry(name)
                .or_insert_with(|| vec![Spread::default(), Spread::default()]);
            e[0].0.push(pct(v.clone(), 0.5));
            e[1].0.push(pct(v, 0.99));
        }
    }
    // Alice hears her own messages' room echo; drop what is queued.
    while alice_hears.try_recv().is_ok() {}

    // Throughput: a burst from each side.
    let mut rate: HashMap<&str, Spread> = HashMap::new();
    let done =
        |m: &HashMap<String, Instant>, started: Instant| *m.values().max().unwrap() - started;
    for round in 0..ROUNDS {
        let tags: Vec<String> = (0..burst).map(|i| format!("tx-{round}-{i}")).collect();
        let started = Instant::now();
        // One write: what a client sends in a burst (TLS needs the flush).
        let burst_xml: String = tags.iter().map(|t| say_xmpp(t)).collect();
        alice.write_all(burst_xml.as_bytes()).await.unwrap();
        alice.flush().await.unwrap();
        let direct = collect(&mut carol_hears, &tags, "xmpp direct burst").await;
        let bridged = collect(&mut bob_hears, &tags, "xmpp→irc burst").await;
        rate.entry("xmpp direct")
            .or_default()
            .0
            .push(burst as f64 / done(&direct, started).as_secs_f64());
        rate.entry("xmpp→irc bridged")
            .or_default()
            .0
            .push(burst as f64 / done(&bridged, started).as_secs_f64());

        let tags: Vec<String> = (0..burst).map(|i| format!("ti-{round}-{i}")).collect();
        let started = Instant::now();
        let mut lines = String::new();
        for t in &tags {
            lines.push_str(&format!("PRIVMSG {ROOM} :{t}\r\n"));
        }
        bob.write_all(lines.as_bytes()).await.unwrap();
        let direct = collect(&mut dave_hears, &tags, "irc direct burst").await;
        let bridged = collect(&mut alice_hears, &tags, "irc→xmpp burst").await;
        rate.entry("irc direct")
            .or_default()
            .0
            .push(burst as f64 / done(&direct, started).as_secs_f64());
        rate.entry("irc→xmpp bridged")
            .or_default()
            .0
            .push(burst as f64 / done(&bridged, started).as_secs_f64());
    }

    println!(
        "\nBridged against direct: {ROUNDS} rounds, {PER_ROUND} messages one at a time, bursts of {burst}; median [min–max] over rounds\n"
    );
    println!(
        "{:<20} {:>22} {:>24} {:>22} {:>18}",
        "path", "p50 µs", "p99 µs", "burst msg/s", "vs direct"
    );
    for (path, direct) in [
        ("xmpp direct", "xmpp direct"),
        ("xmpp→irc bridged", "xmpp direct"),
        ("irc direct", "irc direct"),
        ("irc→xmpp bridged", "irc direct"),
    ] {
        let l = &lat[path];
        let r = &rate[path];
        let vs = ratios(r, &rate[direct]);
        println!(
            "{:<20} {:>22} {:>24} {:>22} {:>17.0}%",
            path,
            l[0].show(0),
            l[1].show(0),
            r.show(0),
            100.0 * vs.median()
        );
    }
    for (path, direct) in [
        ("xmpp→irc bridged", "xmpp direct"),
        ("irc→xmpp bridged", "irc direct"),
    ] {
        let added = |i: usize| {
            Spread(
                lat[path][i]
                    .0
                    .iter()
                    .zip(&lat[direct][i].0)
                    .map(|(b, d)| b - d)
                    .collect(),
            )
        };
        println!(
            "{path}: adds {} µs at p50, {} µs at p99",
            added(0).show(0),
            added(1).show(0)
        );
    }
    if let Some(imgate) = world.imgate.as_mut() {
        imgate.terminate(Duration::from_secs(10));
    }
}
