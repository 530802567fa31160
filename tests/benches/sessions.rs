//! Idle sessions: what each costs imgate in memory, and how many it holds,
//! in front of a real Prosody and a real ngircd with TLS on both sides
//! (client ⇄ imgate and imgate ⇄ server).
//!
//!     make bench-sessions          (SESSIONS=n holds n per network; default 5,000;
//!                                   NETWORKS=xmpp or irc runs one)
//!
//! Each session is opened as far as an idle user's would be: XMPP past
//! STARTTLS to the login offer, IRC over TLS past registration (001). The
//! sessions are then left quiet for longer than imgate's quiet period, and
//! imgate's resident memory is compared with before they opened. While
//! they are held, a clean exchange (two users logging in, one message)
//! must still work.
//!
//! Every session costs imgate two open files. The bench raises its own
//! soft limit to the hard one (imgate and the servers it starts inherit
//! it); when the hard limit cannot hold SESSIONS, it says so and holds as
//! many as fit.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use imgate::util::open_files;
use imgate_tests::gateway::Imgate;
use imgate_tests::ngircd::Ngircd;
use imgate_tests::prosody::{DOMAIN, Prosody};
use imgate_tests::rawxmpp::{Io, RawClient};
use imgate_tests::{gateway_cert, rss_kib, write_config};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_rustls::TlsConnector;

/// Sessions opening at once.
const OPENING: usize = 64;
/// Longer than imgate's quiet period (2 s), after which buffers go back.
const SETTLE: Duration = Duration::from_secs(4);
/// Sessions opened and closed first, so that what start-up allocates
/// once (TLS, allocator arenas, the tables) is not counted per session.
const WARM: usize = 200;

/// Opens `n` sessions with `open`, `OPENING` at a time; returns them and
/// how long it took.
async fn open_all<F, Fut>(n: usize, open: F) -> (Vec<Box<dyn Io>>, Duration)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<Box<dyn Io>>> + Send + 'static,
{
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(OPENING));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let permit = gate.clone().acquire_owned().await.expect("semaphore");
        let opening = open(i);
        tasks.push(tokio::spawn(async move {
            let session = tokio::time::timeout(Duration::from_secs(60), opening).await;
            drop(permit);
            match session {
                Ok(Ok(io)) => io,
                Ok(Err(e)) => panic!("session {i} did not open: {e}"),
                Err(_) => panic!("session {i} did not open within 60 s"),
            }
        }));
    }
    let mut sessions = Vec::with_capacity(n);
    for t in tasks {
        sessions.push(t.await.expect("opening task"));
    }
    (sessions, started.elapsed())
}

struct Held {
    network: &'static str,
    sessions: usize,
    open_per_s: f64,
    imgate_kib: f64,
    server_kib: f64,
    server: &'static str,
    exchange: Duration,
}

/// Opens `n` sessions, lets them go quiet and measures; `exchange` then
/// proves the gateway still relays while they are held.
async fn hold<F, Fut, X, XFut>(
    network: &'static str,
    server: &'static str,
    pids: (u32, u32),
    n: usize,
    open: F,
    exchange: X,
) -> Held
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<Box<dyn Io>>> + Send + 'static,
    X: Fn() -> XFut,
    XFut: std::future::Future<Output = ()>,
{
    let (imgate, server_pid) = pids;
    let (warm, _) = open_all(WARM, &open).await;
    drop(warm);
    tokio::time::sleep(SETTLE).await;
    let before = (rss_kib(imgate), rss_kib(server_pid));
    let (sessions, took) = open_all(n, |i| open(WARM + i)).await;
    tokio::time::sleep(SETTLE).await;
    let after = (rss_kib(imgate), rss_kib(server_pid));
    let started = Instant::now();
    exchange().await;
    let exchanged = started.elapsed();
    drop(sessions);
    let per = |a: u64, b: u64| a.saturating_sub(b) as f64 / n as f64;
    Held {
        network,
        sessions: n,
        open_per_s: n as f64 / took.as_secs_f64(),
        imgate_kib: per(after.0, before.0),
        server_kib: per(after.1, before.1),
        server,
        exchange: exchanged,
    }
}

async fn xmpp(n: usize) -> Held {
    let prosody = Prosody::start(&[("alice", "alice-pw"), ("bob", "bob-pw")]);
    let config = write_config(&format!(
        r#"
[xmpp]
listen = "127.0.0.1:0"
cert = "gateway.crt"
key = "gateway.key"

[xmpp.upstream]
address = "127.0.0.1:{}"
ca_file = "{}"
"#,
        prosody.port,
        prosody.cert.display()
    ));
    let ca = gateway_cert(&config, &[DOMAIN]);
    let imgate = Imgate::start(&config, &[("IMGATE_LOG", "warn,imgate::gateway=info")]);
    let addr = imgate.xmpp.expect("XMPP listener");
    let open = |_| {
        let ca = ca.clone();
        async move {
            let c = RawClient::past_starttls(addr, &ca, DOMAIN).await?;
            Ok(c.io)
        }
    };
    let exchange = || {
        let ca = ca.clone();
        async move {
            let alice = RawClient::login(addr, &ca, DOMAIN, "alice", "alice-pw", "hold")
                .await
                .expect("alice logs in while the sessions are held");
            let mut bob = RawClient::login(addr, &ca, DOMAIN, "bob", "bob-pw", "hold")
                .await
                .expect("bob logs in while the sessions are held");
            let mut alice = alice;
            alice
                .send("<message to='bob@localhost/hold' type='chat' id='h1'><body>still here</body></message>")
                .await
                .expect("alice sends");
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let el = tokio::time::timeout_at(deadline.into(), bob.element())
                    .await
                    .expect("bob receives within 20 s")
                    .expect("bob's stream");
                if el.local_name() == "message"
                    && el
                        .child("body", "jabber:client")
                        .is_some_and(|b| b.text() == "still here")
                {
                    break;
                }
            }
        }
    };
    hold(
        "XMPP",
        "Prosody",
        (imgate.pid(), prosody.pid()),
        n,
        open,
        exchange,
    )
    .await
}

/// IRC over TLS through imgate, registered as `nick` (001 seen).
async fn irc_session(
    addr: std::net::SocketAddr,
    ca: &Path,
    nick: &str,
) -> std::io::Result<BufReader<tokio_rustls::client::TlsStream<TcpStream>>> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let config = imgate::tls::client_config(Some(ca)).map_err(std::io::Error::other)?;
    let name =
        rustls::pki_types::ServerName::try_from("localhost").map_err(std::io::Error::other)?;
    let mut tls = TlsConnector::from(config).connect(name, tcp).await?;
    tls.write_all(format!("NICK {nick}\r\nUSER {nick} 0 * :held\r\n").as_bytes())
        .await?;
    let mut reader = BufReader::with_capacity(1024, tls);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Err(std::io::Error::other(format!("{nick}: closed before 001")));
        }
        if line.split(' ').nth(1) == Some("001") {
            return Ok(reader);
        }
        if let Some(rest) = line.strip_prefix("PING ") {
            reader
                .get_mut()
                .write_all(format!("PONG {rest}").as_bytes())
                .await?;
        }
    }
}

async fn irc(n: usize) -> Held {
    let ngircd = Ngircd::start();
    let config = write_config(&format!(
        r#"
[irc]
listen = "127.0.0.1:0"
listen_tls = "127.0.0.1:0"
cert = "gateway.crt"
key = "gateway.key"
flood_lines_per_s = 0

[irc.upstream]
address = "127.0.0.1:{}"
tls = "tls"
ca_file = "{}"
server_name = "localhost"
"#,
        ngircd.tls_port,
        ngircd.cert.display()
    ));
    let ca = gateway_cert(&config, &[DOMAIN]);
    let imgate = Imgate::start(&config, &[("IMGATE_LOG", "warn,imgate::gateway=info")]);
    let addr = imgate.irc_tls.expect("IRC TLS listener");
    let open = |i: usize| {
        let ca = ca.clone();
        async move {
            let s = irc_session(addr, &ca, &format!("h{i}")).await?;
            Ok(Box::new(s.into_inner()) as Box<dyn Io>)
        }
    };
    let exchange = || {
        let ca = ca.clone();
        async move {
            let mut alice = irc_session(addr, &ca, "alice")
                .await
                .expect("alice registers");
            let mut bob = irc_session(addr, &ca, "bob").await.expect("bob registers");
            alice
                .get_mut()
                .write_all(b"PRIVMSG bob :still here\r\n")
                .await
                .expect("alice sends");
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut line = String::new();
            loop {
                line.clear();
                let read = tokio::time::timeout_at(deadline.into(), bob.read_line(&mut line))
                    .await
                    .expect("bob receives within 20 s")
                    .expect("bob's connection");
                assert!(read > 0, "bob's connection closed");
                if line.contains("PRIVMSG bob :still here") {
                    break;
                }
            }
        }
    };
    hold(
        "IRC",
        "ngircd",
        (imgate.pid(), ngircd.pid()),
        n,
        open,
        exchange,
    )
    .await
}

fn main() {
    let wanted: usize = std::env::var("SESSIONS")
        .ok()
        .and_then(|s| s.replace(['_', ','], "").parse().ok())
        .unwrap_or(5_000);
    let limit = open_files::raise_to_hard();
    // imgate holds two files a session; this bench and the server one.
    let fits = limit.map_or(usize::MAX, |l| open_files::sessions_within(l) as usize);
    let n = wanted.min(fits);
    if n < wanted {
        println!(
            "\nThe hard open-file limit here is {} (`ulimit -Hn`): one process holds at most {} \
             sessions, not {wanted}. Raising it takes privilege (CAP_SYS_RESOURCE, or \
             `LimitNOFILE=` in imgate's systemd unit): see docs/operators.md.",
            limit.unwrap_or(0),
            fits
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    // NETWORKS=irc (or xmpp) runs one: a run at the ceiling leaves its
    // ~20,000 loopback ports in TIME_WAIT for a minute.
    let networks = std::env::var("NETWORKS").unwrap_or_else(|_| "xmpp,irc".into());
    let results = runtime.block_on(async {
        let mut results = Vec::new();
        if networks.contains("xmpp") {
            results.push(xmpp(n).await);
        }
        if networks.contains("irc") {
            results.push(irc(n).await);
        }
        results
    });
    println!(
        "\nIdle sessions held, TLS on both sides (imgate RSS growth per session, after {} s quiet)\n",
        SETTLE.as_secs()
    );
    println!(
        "{:<8} {:>9} {:>12} {:>16} {:>18} {:>16}",
        "network", "sessions", "opened/s", "imgate KiB/sess", "server KiB/sess", "clean exchange"
    );
    for h in &results {
        println!(
            "{:<8} {:>9} {:>12.0} {:>16.1} {:>18} {:>13} ms",
            h.network,
            h.sessions,
            h.open_per_s,
            h.imgate_kib,
            format!("{:.1} ({})", h.server_kib, h.server),
            h.exchange.as_millis()
        );
    }
    println!("\ntarget: at most 16 KiB per idle TLS session in imgate");
}
