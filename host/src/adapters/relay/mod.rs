//! Relay identities: the gateway's own account on a network, logged in
//! upstream like a client, in the linked rooms. It hears what is said
//! there (each message becomes an event, judged with attribute
//! `imgate.relay`, which is what a bridge plugin bridges) and writes the
//! copies the bridge sends. Each network's login and wire format is in its
//! folder (`xmpp/relay.rs`, `irc/relay.rs`); what they share is here: the
//! handle the bridge writes through, the status the admin API shows, and
//! staying connected.

pub mod config;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

pub use config::BridgeConfig;

use crate::event::bridge::{Copy, Relay, Written};
use crate::event::{Event, Judge, NetworkId, Session, now_ms};

/// The attribute on every event a relay heard: its account.
pub const HEARD_BY_RELAY: &str = "imgate.relay";

/// A connection that lasted this long restarts the backoff from its first.
const STABLE: Duration = Duration::from_secs(60);

/// How a relay waits and reconnects.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Waiting for a copy to be written.
    pub send_timeout: Duration,
    /// Between reconnects: doubling from the first to the last.
    pub backoff: (Duration, Duration),
}

/// Where a relay answers for one copy: the ids its network gave it.
pub type Reply = oneshot::Sender<Result<Vec<NetworkId>, String>>;

/// What a relay's connection is asked to do.
pub enum Command {
    Send(Box<Copy>, Reply),
    Tell {
        place: String,
        who: String,
        text: String,
    },
}

/// A relay as the admin API shows it (`/connections`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct RelayState {
    pub network: &'static str,
    pub account: String,
    pub connected: bool,
    /// When the current connection came up, or the last one went down.
    pub since_ms: u64,
    pub reconnects: u64,
    pub rooms: Vec<String>,
    pub delivered: u64,
    pub failed: u64,
    pub last_error: Option<String>,
}

/// Copies waiting to be written, per relay: beyond this the relay is not
/// keeping up and a copy fails at once.
const QUEUE: usize = 1024;

/// Shared between a relay's connection task and its handle.
pub struct RelayStatus {
    network: &'static str,
    account: String,
    rooms: Vec<String>,
    connected: AtomicBool,
    since_ms: AtomicU64,
    reconnects: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl RelayStatus {
    pub fn new(network: &'static str, account: &str, rooms: &[String]) -> Arc<Self> {
        Arc::new(RelayStatus {
            network,
            account: account.to_owned(),
            rooms: rooms.to_vec(),
            connected: AtomicBool::new(false),
            since_ms: AtomicU64::new(now_ms()),
            reconnects: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            last_error: Mutex::new(None),
        })
    }

    /// The connection is logged in and in its rooms.
    pub fn up(&self) {
        self.connected.store(true, Relaxed);
        self.since_ms.store(now_ms(), Relaxed);
        tracing::info!(network = self.network, account = %self.account, rooms = ?self.rooms, "relay connected");
    }

    fn down(&self, why: &str) {
        let was = self.connected.swap(false, Relaxed);
        self.since_ms.store(now_ms(), Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.to_owned());
        if was {
            tracing::warn!(network = self.network, account = %self.account, error = why, "relay lost its connection; reconnecting");
        } else {
            tracing::warn!(network = self.network, account = %self.account, error = why, "relay could not connect; retrying");
        }
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Relaxed)
    }

    pub fn state(&self) -> RelayState {
        RelayState {
            network: self.network,
            account: self.account.clone(),
            connected: self.is_connected(),
            since_ms: self.since_ms.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
            rooms: self.rooms.clone(),
            delivered: self.delivered.load(Relaxed),
            failed: self.failed.load(Relaxed),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}

/// The bridge's way into a relay.
pub struct RelayHandle {
    status: Arc<RelayStatus>,
    commands: mpsc::Sender<Command>,
    session: Arc<Session>,
    timeout: Duration,
}

impl RelayHandle {
    pub fn status(&self) -> &Arc<RelayStatus> {
        &self.status
    }
}

impl Relay for RelayHandle {
    fn network(&self) -> &'static str {
        self.status.network
    }

    fn session(&self) -> Arc<Session> {
        self.session.clone()
    }

    fn rooms(&self) -> &[String] {
        &self.status.rooms
    }

    fn send(&self, copy: Copy) -> Written {
        let status = self.status.clone();
        let network = status.network;
        let queued = if !status.is_connected() {
            Err(format!("the {network} relay is not connected"))
        } else {
            let (reply, answer) = oneshot::channel();
            self.commands
                .try_send(Command::Send(Box::new(copy), reply))
                .map(|()| answer)
                .map_err(|_| format!("the {network} relay is not keeping up"))
        };
        let timeout = self.timeout;
        Box::pin(async move {
            let result = match queued {
                Err(e) => Err(e),
                Ok(answer) => match tokio::time::timeout(timeout, answer).await {
                    Ok(Ok(result)) => result,
                    Ok(Err(_)) => Err(format!(
                        "the {network} relay lost its connection before writing it"
                    )),
                    Err(_) => Err(format!(
                        "the {network} relay did not write it within {timeout:?}"
                    )),
                },
            };
            match &result {
                Ok(_) => status.delivered.fetch_add(1, Relaxed),
                Err(_) => status.failed.fetch_add(1, Relaxed),
            };
            result
        })
    }

    fn tell(&self, place: &str, who: &str, text: &str) {
        if self.status.is_connected() {
            let _ = self.commands.try_send(Command::Tell {
                place: place.to_owned(),
                who: who.to_owned(),
                text: text.to_owned(),
            });
        }
    }
}

/// What each connection of a relay gets in turn (and hands back when it
/// ends): its commands, the judge for what it hears, and its status.
pub struct Link {
    pub commands: mpsc::Receiver<Command>,
    pub judge: Arc<dyn Judge>,
    pub status: Arc<RelayStatus>,
    pub session: Arc<Session>,
}

impl Link {
    /// Judges what the relay heard: the chain runs (and a bridge plugin
    /// sends what it bridges); nothing is delivered anywhere by it.
    pub async fn heard(&self, mut event: Event) {
        event
            .attributes
            .push((HEARD_BY_RELAY.to_owned(), self.status.account.clone()));
        let judge = self.judge.clone();
        crate::util::blocking::wait_off_worker(move || judge.judge(event));
    }
}

/// A relay's session: its account as the user, its own id.
pub fn relay_session(network: &str, account: &str) -> Arc<Session> {
    Arc::new(Session {
        id: format!("relay-{network}"),
        user: account.to_owned(),
        peer: "relay".into(),
    })
}

/// Starts a relay: `connect` runs one connection (log in, join, serve)
/// until it fails; it runs again, backing off, until `stopping`. Commands
/// that arrive while it is down are answered as failures at once.
pub fn start<F, Fut>(
    status: Arc<RelayStatus>,
    session: Arc<Session>,
    judge: Arc<dyn Judge>,
    timing: Timing,
    mut stopping: watch::Receiver<bool>,
    mut connect: F,
) -> (RelayHandle, tokio::task::JoinHandle<()>)
where
    F: FnMut(Link) -> Fut + Send + 'static,
    Fut: Future<Output = (Result<(), String>, Link)> + Send,
{
    let (tx, rx) = mpsc::channel(QUEUE);
    let handle = RelayHandle {
        status: status.clone(),
        commands: tx,
        session: session.clone(),
        timeout: timing.send_timeout,
    };
    let (first, last) = timing.backoff;
    let task = tokio::spawn(async move {
        let mut backoff = first;
        let mut link = Link {
            commands: rx,
            judge,
            status: status.clone(),
            session,
        };
        loop {
            if *stopping.borrow() {
                break;
            }
            let started = std::time::Instant::now();
            let why = tokio::select! {
                (r, back) = connect(link) => {
                    link = back;
                    r.err().unwrap_or_else(|| "closed".into())
                }
                _ = stopping.changed() => break,
            };
            status.down(&why);
            if started.elapsed() >= STABLE {
                backoff = first;
            }
            let wait = tokio::time::sleep(backoff);
            tokio::pin!(wait);
            // Down: what is sent meanwhile fails now, not after a timeout.
            loop {
                tokio::select! {
                    () = &mut wait => break,
                    _ = stopping.changed() => return,
                    command = link.commands.recv() => match command {
                        Some(Command::Send(_, reply)) => {
                            let _ = reply.send(Err(format!("the {} relay is not connected", status.network)));
                        }
                        Some(Command::Tell { .. }) => {}
                        None => return,
                    },
                }
            }
            backoff = (backoff * 2).min(last);
            status.reconnects.fetch_add(1, Relaxed);
        }
        status.connected.store(false, Relaxed);
    });
    (handle, task)
}
