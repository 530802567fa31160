//! Protocol adapters: each turns one network's wire format into neutral
//! events and applies verdicts in that network's terms. An adapter is one
//! folder with the same files (see `xmpp/` and `irc/`):
//!
//! - `codec.rs`: bytes to frames, no I/O; incomplete is not malformed.
//! - `events.rs`: frames to and from the neutral event, one function per
//!   direction.
//! - `session.rs`: the sockets, buffers and state machine of a connection.
//! - `config.rs`: the adapter's section of the operator's file.
//!
//! What every adapter shares lives here: [`Judge`] hands events to the
//! chain in force, [`AdapterStats`] counts what crossed, and `connection`
//! holds the socket plumbing both sessions use.

pub mod connection;
pub mod irc;
pub mod section;
pub mod stats;
pub mod xmpp;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

pub use stats::AdapterStats;

use crate::capabilities::clock::now_ms;
use crate::event::{Action, Direction, Event, EventKind, Session};
use crate::plugins::{Decision, LiveChain};

/// Hands an adapter's events to the chain in force.
#[derive(Clone)]
pub struct Judge {
    live: Arc<LiveChain>,
    stats: Arc<AdapterStats>,
    network: &'static str,
}

static NEXT_EVENT: AtomicU64 = AtomicU64::new(1);

impl Judge {
    pub fn new(live: Arc<LiveChain>, stats: Arc<AdapterStats>, network: &'static str) -> Self {
        Judge {
            live,
            stats,
            network,
        }
    }

    pub fn stats(&self) -> &AdapterStats {
        &self.stats
    }

    /// Runs one event through the chain and returns the final action.
    /// Plugin calls are bounded by their deadlines but may take
    /// milliseconds, so the tokio worker hands its other tasks to another
    /// thread meanwhile (about 20 ns when idle). With no plugins at all
    /// the event is not even built.
    pub fn judge(
        &self,
        session: &Session,
        direction: Direction,
        kind: EventKind,
        attributes: Vec<(String, String)>,
    ) -> Action {
        let chain = self.live.current();
        if chain.plugins().is_empty() {
            self.stats.events.fetch_add(1, Relaxed);
            self.stats.count_action("allow");
            return Action::Allow;
        }
        let event = Event {
            id: format!("{}-{}", self.network, NEXT_EVENT.fetch_add(1, Relaxed)),
            network: self.network.to_owned(),
            direction,
            session: session.clone(),
            timestamp: now_ms(),
            kind,
            tags: Vec::new(),
            attributes,
        };
        self.stats.events.fetch_add(1, Relaxed);
        let decision: Decision = crate::capabilities::wait_off_worker(|| chain.evaluate(event));
        let action = decision.verdict.action;
        self.stats.count_action(action.kind());
        action
    }
}
