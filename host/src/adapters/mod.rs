//! Protocol adapters: each turns one network's wire format into neutral
//! events and applies verdicts in that network's terms.
//!
//! Owns: the networks' wire formats and sessions. Must not touch: the
//! plugin runtime, its contract or the capabilities — an adapter asks a
//! [`Judge`] (through its [`Gate`]) and nothing else.
//!
//! A stream protocol is one folder (see `xmpp/` and `irc/`):
//! - `codec.rs`: bytes to frames, no I/O; incomplete is not malformed.
//! - `events.rs`: frames to and from the neutral event, one function per
//!   direction.
//! - `handshake.rs`: the protocol's [`stream::Protocol`]: TLS, its own
//!   handshake, the upstream connection.
//! - `session.rs`: its [`stream::Hooks`]: one connection's state, frame by frame.
//! - `config.rs`: its section of the operator's file.
//!
//! [`stream`] holds the accept loop and the session driver they share.

pub mod irc;
pub mod review;
pub mod section;
mod stats;
pub mod stream;
pub mod xmpp;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

pub use stats::{AdapterStats, render_prometheus};

use crate::event::{
    Action, Direction, Event, EventKind, Judge, NetworkId, Session, new_event_id, now_ms,
};

/// Why an adapter could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error("[{network}] {source}")]
    Listen {
        network: &'static str,
        source: std::io::Error,
    },
    #[error("[{network}] {source}")]
    Tls {
        network: &'static str,
        source: crate::tls::TlsError,
    },
}

/// What the judge said about one event, as an adapter applies it.
#[derive(Debug, Default)]
pub struct Judged {
    pub action: Action,
    /// The event's id, when it was built (not for a chain of no plugins).
    pub event_id: Option<String>,
    /// Attachments (by URL) to take out of the delivered message.
    pub removed_attachments: Vec<String>,
}

/// An adapter's way to policy: builds the neutral event, counts it, and
/// asks the judge.
#[derive(Clone)]
pub struct Gate {
    judge: Arc<dyn Judge>,
    stats: Arc<AdapterStats>,
    network: &'static str,
    reviews: Arc<review::Reviews>,
}

impl Gate {
    pub fn new(judge: Arc<dyn Judge>, network: &'static str) -> Self {
        Gate {
            judge,
            stats: Arc::new(AdapterStats::new(network)),
            network,
            reviews: Arc::default(),
        }
    }

    /// Rulings on held messages reach this adapter's sessions through
    /// `reviews` (shared with the gateway's review desk).
    pub fn with_reviews(mut self, reviews: Arc<review::Reviews>) -> Self {
        self.reviews = reviews;
        self
    }

    pub fn reviews(&self) -> &Arc<review::Reviews> {
        &self.reviews
    }

    pub fn stats(&self) -> &AdapterStats {
        &self.stats
    }

    pub fn shared_stats(&self) -> Arc<AdapterStats> {
        self.stats.clone()
    }

    /// Judges one event and returns the final action. With nothing to
    /// judge by (no plugins) the event is not even built.
    pub fn judge(
        &self,
        session: &Session,
        direction: Direction,
        kind: EventKind,
        attributes: Vec<(String, String)>,
    ) -> Action {
        self.rule(session, direction, kind, attributes, Vec::new())
            .action
    }

    /// As [`Self::judge`], with the network's own ids for the event; says
    /// also the event's id when one was built (a session keeps a held
    /// message under it) and the attachments a rewrite removes.
    pub fn rule(
        &self,
        session: &Session,
        direction: Direction,
        kind: EventKind,
        attributes: Vec<(String, String)>,
        ids: Vec<NetworkId>,
    ) -> Judged {
        self.stats.events.fetch_add(1, Relaxed);
        if self.judge.allows_everything() {
            self.stats.count_action("allow");
            return Judged::default();
        }
        let event = Event {
            id: new_event_id(),
            network: self.network.to_owned(),
            direction,
            session: session.clone(),
            timestamp: now_ms(),
            kind,
            tags: Vec::new(),
            attributes,
            ids,
        };
        let event_id = Some(event.id.clone());
        let verdict = self.judge.judge(event);
        self.stats.count_action(verdict.action.kind());
        Judged {
            action: verdict.action,
            event_id,
            removed_attachments: verdict.removed_attachments,
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A judge with no WebAssembly: adapter tests decide by a closure.

    use super::*;
    use crate::event::FinalVerdict;
    use std::sync::Mutex;

    /// Decides with `rule` and remembers every event it saw.
    pub struct FakeJudge {
        rule: Box<dyn Fn(&Event) -> Action + Send + Sync>,
        pub seen: Mutex<Vec<Event>>,
    }

    impl FakeJudge {
        pub fn new(rule: impl Fn(&Event) -> Action + Send + Sync + 'static) -> Arc<Self> {
            Arc::new(FakeJudge {
                rule: Box::new(rule),
                seen: Mutex::new(Vec::new()),
            })
        }

        /// Allows everything but messages holding `word`, which it blocks
        /// saying "no <word>".
        pub fn blocking(word: &'static str) -> Arc<Self> {
            Self::new(move |e| match e.message() {
                Some(m) if m.body.contains(word) => Action::Block(format!("no {word}")),
                _ => Action::Allow,
            })
        }

        pub fn kinds(&self) -> Vec<&'static str> {
            let seen = self.seen.lock().unwrap();
            seen.iter().map(|e| e.kind.name()).collect()
        }
    }

    /// Asserts that `bytes` hold every one of `needles`.
    pub fn assert_holds(bytes: &[u8], needles: &[&str]) {
        let text = String::from_utf8_lossy(bytes);
        for needle in needles {
            assert!(text.contains(needle), "no {needle:?} in {text:?}");
        }
    }

    impl Judge for FakeJudge {
        fn judge(&self, event: Event) -> FinalVerdict {
            let action = (self.rule)(&event);
            self.seen.lock().unwrap().push(event);
            FinalVerdict {
                action,
                ..FinalVerdict::allow()
            }
        }
    }
}
