//! The running bridge: takes what plugins sent (from each decision), in
//! order, records it in the id map, judges each copy on its network, and
//! hands it to that network's relay. Copies are written in the order they
//! were sent; their answers (delivered with ids, or failed) are recorded
//! as they come. A refused copy is recorded, and its author is told by the
//! relay of the network they spoke on.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use tokio::sync::{mpsc, watch};

use super::{IdMap, judged, prepare, settle};
use crate::event::bridge::{Delivery, Outgoing, Relay};
use crate::event::{Event, Scope, now_ms};
use crate::plugins::LiveChain;

/// Decisions with sent messages waiting for the bridge; beyond this the
/// gateway is bridging faster than it can write, and copies fail (each
/// recorded and counted).
const QUEUE: usize = 4096;

/// Bridge counters for the admin API and metrics.
#[derive(Default, Debug)]
pub struct BridgeStats {
    pub sent: AtomicU64,
    pub delivered: AtomicU64,
    pub refused: AtomicU64,
    pub failed: AtomicU64,
    /// Sent again (another bridge, or after a restart): not copied twice.
    pub repeated: AtomicU64,
}

/// Where the gateway's judge hands what plugins sent.
#[derive(Clone)]
pub struct Bridge {
    queue: mpsc::Sender<(Arc<Event>, Vec<Outgoing>)>,
    map: Arc<IdMap>,
    pub stats: Arc<BridgeStats>,
}

impl Bridge {
    /// Queues what was sent while `origin` was judged. Never blocks: the
    /// judge runs on the path of a message.
    pub fn dispatch(&self, origin: Arc<Event>, sent: Vec<Outgoing>) {
        self.stats.sent.fetch_add(sent.len() as u64, Relaxed);
        if let Err(
            mpsc::error::TrySendError::Full((origin, sent))
            | mpsc::error::TrySendError::Closed((origin, sent)),
        ) = self.queue.try_send((origin, sent))
        {
            // Recorded as failed, so nothing is silently lost.
            let map = self.map.clone();
            let stats = self.stats.clone();
            crate::util::blocking::wait_off_worker(move || {
                for out in &sent {
                    fail(&map, &stats, &origin, out, "the bridge is not keeping up");
                }
            });
        }
    }
}

fn fail(map: &IdMap, stats: &BridgeStats, origin: &Event, out: &Outgoing, why: &str) {
    stats.failed.fetch_add(1, Relaxed);
    tracing::warn!(ticket = %out.ticket, origin = %origin.id, network = %out.network, to = %out.to, error = why, "bridged copy not delivered");
    let now = now_ms();
    // A copy not recorded yet is recorded, then marked.
    let relay = Arc::new(crate::event::Session::default());
    match prepare(map, origin, out, &relay, &[], now) {
        Ok(Some(_)) => settle(map, &out.ticket, &Delivery::Failed(why.to_owned()), now),
        // Recorded before: that record stands.
        Ok(None) => {}
        Err(e) => {
            tracing::error!(ticket = %out.ticket, error = %e, "could not record a failed bridged copy");
        }
    }
}

/// Starts the bridge over `relays`; it runs until `stopping`.
pub fn start(
    live: Arc<LiveChain>,
    relays: Vec<Arc<dyn Relay>>,
    map: Arc<IdMap>,
    mut stopping: watch::Receiver<bool>,
) -> (Bridge, tokio::task::JoinHandle<()>) {
    let (queue, mut work) = mpsc::channel::<(Arc<Event>, Vec<Outgoing>)>(QUEUE);
    let stats = Arc::new(BridgeStats::default());
    let bridge = Bridge {
        queue,
        map: map.clone(),
        stats: stats.clone(),
    };
    let relays: HashMap<&'static str, Arc<dyn Relay>> =
        relays.into_iter().map(|r| (r.network(), r)).collect();
    let task = tokio::spawn(async move {
        loop {
            let (origin, sent) = tokio::select! {
                next = work.recv() => match next {
                    Some(next) => next,
                    None => break,
                },
                _ = stopping.changed() => break,
            };
            for out in sent {
                copy_one(&live, &relays, &map, &stats, &origin, out).await;
            }
        }
    });
    (bridge, task)
}

/// One sent message: record, judge, hand to its relay.
async fn copy_one(
    live: &Arc<LiveChain>,
    relays: &HashMap<&'static str, Arc<dyn Relay>>,
    map: &Arc<IdMap>,
    stats: &Arc<BridgeStats>,
    origin: &Arc<Event>,
    out: Outgoing,
) {
    let Some(relay) = relays.get(out.network.as_str()).cloned() else {
        let why = format!("no relay for `{}`", out.network);
        let (map, stats, origin) = (map.clone(), stats.clone(), origin.clone());
        crate::util::blocking::wait_off_worker(move || fail(&map, &stats, &origin, &out, &why));
        return;
    };
    let now = now_ms();
    let session = relay.session();
    let rooms = relay.rooms().to_vec();
    let prepared = {
        let (map, origin, out) = (map.clone(), origin.clone(), out.clone());
        crate::util::blocking::wait_off_worker(move || {
            prepare(&map, &origin, &out, &session, &rooms, now)
        })
    };
    let prepared = match prepared {
        Ok(Some(p)) => p,
        Ok(None) => {
            stats.repeated.fetch_add(1, Relaxed);
            return;
        }
        Err(e) => {
            stats.failed.fetch_add(1, Relaxed);
            tracing::error!(ticket = %out.ticket, error = %e, "the bridge's id map failed; copy not sent");
            return;
        }
    };
    let decision = live.decide(prepared.event.clone(), Scope::All);
    let origin_network = origin.network.to_string();
    let copy = {
        let map = map.clone();
        let out = out.clone();
        crate::util::blocking::wait_off_worker(move || {
            judged(
                &map,
                prepared,
                &decision.event,
                &decision.verdict,
                &out,
                &origin_network,
                now,
            )
        })
    };
    let copy = match copy {
        Ok(copy) => copy,
        Err(reason) => {
            stats.refused.fetch_add(1, Relaxed);
            tracing::info!(ticket = %out.ticket, origin = %origin.id, network = %out.network, to = %out.to, %reason, "bridged copy refused by policy");
            tell_author(relays, origin, &out, &reason);
            return;
        }
    };
    let written = relay.send(copy);
    let (map, stats, origin) = (map.clone(), stats.clone(), origin.clone());
    // Written in order; the answer is awaited apart.
    tokio::spawn(async move {
        let delivery = match written.await {
            Ok(ids) => {
                stats.delivered.fetch_add(1, Relaxed);
                Delivery::Delivered(ids)
            }
            Err(why) => {
                stats.failed.fetch_add(1, Relaxed);
                tracing::warn!(ticket = %out.ticket, origin = %origin.id, network = %out.network, to = %out.to, error = %why, "bridged copy not delivered");
                Delivery::Failed(why)
            }
        };
        crate::util::blocking::wait_off_worker(move || {
            settle(&map, &out.ticket, &delivery, now_ms())
        });
    });
}

/// Tells the author of a message that a copy of it was refused, through
/// the relay of the network they spoke on.
fn tell_author(
    relays: &HashMap<&'static str, Arc<dyn Relay>>,
    origin: &Event,
    out: &Outgoing,
    reason: &str,
) {
    let Some(relay) = relays.get(origin.network.as_ref()) else {
        return;
    };
    let text = format!("Not bridged to {} {}: {reason}", out.network, out.to);
    let sender = origin.sender();
    match origin.network.as_ref() {
        // In a room the author is an occupant: room@service/nick.
        "xmpp" => match sender.split_once('/') {
            Some((room, nick)) => relay.tell(room, nick, &text),
            None => relay.tell(sender, "", &text),
        },
        _ => relay.tell(origin.room().unwrap_or_default(), sender, &text),
    }
}
