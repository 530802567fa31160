//! Heap allocations per relayed message, counted by a counting global
//! allocator: one IRC PRIVMSG from alice's session to the server and the
//! server's copy into bob's session, framed from bytes as the driver
//! frames them, with no plugins and with keyword-block.
//!
//!     make bench-allocs   (cargo bench -p imgate --bench relay_allocs)
//!
//! Targets (issue 15): at most 2 allocations per message with no plugins,
//! at most 6 with keyword-block.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use bytes::BytesMut;
use imgate::adapters::irc::codec::{Framer, Next};
use imgate::adapters::irc::{Irc, IrcConfig, IrcSession};
use imgate::adapters::stream::{Hooks, Outbox};
use imgate::event::{Event, FinalVerdict, Judge, Scope};
use imgate::{Config, Runtime};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: the caller's contract is System's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The chain of a runtime as the gateway's judge (no review desk).
struct ChainJudge(Runtime);

impl Judge for ChainJudge {
    fn judge_in(&self, event: Event, scope: Scope) -> FinalVerdict {
        self.0.chain.evaluate_in(event, scope).verdict
    }
    fn allows_everything(&self) -> bool {
        self.0.chain.plugins().is_empty()
    }
    fn judges_each_recipient(&self) -> bool {
        self.0.chain.judges_each_recipient()
    }
}

fn runtime(plugins: &str) -> Runtime {
    let toml = format!("[runtime]\ncache_dir = \"\"\n{plugins}");
    let config = Config::parse(&toml, Path::new(".")).expect("config");
    Runtime::start(&config).unwrap_or_else(|e| panic!("{e}"))
}

fn wasm(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(format!("target/wasm32-wasip2/plugin/{name}.wasm"));
    assert!(p.exists(), "{} missing: run `make plugins`", p.display());
    p
}

/// One session fed bytes from one side, framed as the driver frames them.
struct Fed {
    session: IrcSession,
    framer: Framer,
    buf: BytesMut,
    out: Outbox,
}

impl Fed {
    fn new(irc: &Irc, nick: &str) -> Self {
        let mut fed = Fed {
            session: IrcSession::new(irc, nick, "127.0.0.1:5000".parse().expect("addr")),
            framer: Framer::default(),
            buf: BytesMut::with_capacity(64 * 1024),
            out: Outbox::default(),
        };
        fed.client(format!("NICK {nick}\r\n").as_bytes());
        fed.upstream(format!(":srv 001 {nick} :Welcome\r\n").as_bytes());
        fed
    }

    fn feed(&mut self, bytes: &[u8], from_client: bool) {
        use bytes::Buf;
        self.buf.extend_from_slice(bytes);
        loop {
            match self.framer.next(&self.buf) {
                Next::Frame(frame, n) => {
                    self.buf.advance(n);
                    let done = if from_client {
                        self.session.client_frame(frame, &mut self.out)
                    } else {
                        self.session.upstream_frame(frame, &mut self.out)
                    };
                    done.expect("session goes on");
                }
                Next::Discard(n) => self.buf.advance(n),
                Next::More => break,
            }
        }
        // The driver writes and empties the outbox after each read.
        self.out.to_upstream.clear();
        self.out.to_client.clear();
    }

    fn client(&mut self, bytes: &[u8]) {
        self.feed(bytes, true);
    }

    fn upstream(&mut self, bytes: &[u8]) {
        self.feed(bytes, false);
    }
}

/// Allocations and nanoseconds per message relayed alice → server → bob,
/// `n` messages, one per read (the worst case: no batching). The time is
/// the gateway's CPU cost of a message with no network in the way.
fn per_message(judge: Arc<dyn Judge>, n: u64) -> (f64, f64) {
    let config: IrcConfig = toml::from_str(
        "listen = '127.0.0.1:0'\nflood_lines_per_s = 0\n\
         [upstream]\naddress = '127.0.0.1:6667'\ntls = 'plain'\n",
    )
    .expect("config");
    let irc = Irc::new(&config, judge).expect("irc");
    let mut alice = Fed::new(&irc, "alice");
    let mut bob = Fed::new(&irc, "bob");
    let text = "the quarterly numbers look fine, see the attached sheet for the details";
    let sent: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("PRIVMSG bob :{i} {text}\r\n").into_bytes())
        .collect();
    let relayed: Vec<Vec<u8>> = (0..n)
        .map(|i| format!(":alice!a@host PRIVMSG bob :{i} {text}\r\n").into_bytes())
        .collect();
    // Warm up (pools, tables, buffers), then count.
    for i in 0..n.min(1000) as usize {
        alice.client(&sent[i]);
        bob.upstream(&relayed[i]);
    }
    let before = ALLOCATIONS.load(Relaxed);
    let started = std::time::Instant::now();
    for i in 0..n as usize {
        alice.client(&sent[i]);
        bob.upstream(&relayed[i]);
    }
    let took = started.elapsed();
    (
        (ALLOCATIONS.load(Relaxed) - before) as f64 / n as f64,
        took.as_nanos() as f64 / n as f64,
    )
}

fn main() {
    let n = std::env::var("MESSAGES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let none = per_message(Arc::new(ChainJudge(runtime(""))), n);
    let kw = per_message(
        Arc::new(ChainJudge(runtime(&format!(
            "[[plugins]]\nname = \"keyword-block\"\npath = \"{}\"\n[plugins.config]\n\
             words = [\"confidential\", \"project falcon\", \"insider\"]\n",
            wasm("keyword_block").display()
        )))),
        n,
    );
    println!(
        "\nHeap allocations and CPU time per relayed IRC message (alice → server → bob, {n} messages)\n"
    );
    println!(
        "{:<28} {:>12} {:>8} {:>14}",
        "chain", "allocations", "target", "ns / message"
    );
    println!(
        "{:<28} {:>12.2} {:>8} {:>14.0}",
        "no plugins", none.0, "<= 2", none.1
    );
    println!(
        "{:<28} {:>12.2} {:>8} {:>14.0}",
        "keyword-block", kw.0, "<= 6", kw.1
    );
}
