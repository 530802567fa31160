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
//! - `relay.rs`: its relay identity (the gateway's own account, for
//!   bridging), on the shared machinery of [`relay`].
//!
//! [`stream`] holds the accept loop and the session driver they share.

pub mod irc;
pub mod judgments;
pub mod matrix;
pub mod relay;
pub mod review;
pub mod section;
mod stats;
pub mod stream;
pub mod xmpp;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

pub use judgments::Seen;
pub use stats::{AdapterStats, render_prometheus};

use crate::event::{
    Action, Direction, Event, EventKind, FinalVerdict, Judge, NetworkId, Scope, Session,
    event_id_text, new_event_uuid_at, now_ms,
};
use judgments::{Claim, Judgments};

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
    /// The event's id, when it was built and held (a session keeps a held
    /// message under it).
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
    judgments: Arc<Judgments>,
}

/// Messages the judgments table remembers, per adapter (about 6 MiB): at
/// 100,000 messages a second the last half second, which a copy lags
/// behind only when its session is stalled (then it is judged again).
const REMEMBERED: usize = 65_536;

/// One event as an adapter asks about it.
pub struct Ask<'a> {
    pub session: &'a Arc<Session>,
    pub direction: Direction,
    pub kind: EventKind,
    pub attributes: Vec<(String, String)>,
    pub ids: Vec<NetworkId>,
    /// How other local sessions may meet the same message.
    pub seen: Seen,
}

impl Gate {
    pub fn new(judge: Arc<dyn Judge>, network: &'static str) -> Self {
        Gate {
            judge,
            stats: Arc::new(AdapterStats::new(network)),
            network,
            reviews: Arc::default(),
            judgments: Arc::new(Judgments::new(REMEMBERED)),
        }
    }

    /// The table of messages already judged (for the stems of [`Seen`]).
    pub fn judgments(&self) -> &Judgments {
        &self.judgments
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

    /// True when there is nothing to judge by (no plugins): an adapter
    /// may then [`Self::pass`] an event it has not even read.
    pub fn allows_everything(&self) -> bool {
        self.judge.allows_everything()
    }

    /// Counts one event allowed without being judged (no plugins).
    pub fn pass(&self) {
        self.stats.events.fetch_add(1, Relaxed);
        self.stats.count_action("allow");
    }

    /// Judges one event met once (a session starting, a join) and
    /// returns the final action.
    pub fn judge(
        &self,
        session: &Arc<Session>,
        direction: Direction,
        kind: EventKind,
        attributes: Vec<(String, String)>,
    ) -> Action {
        self.rule(Ask {
            session,
            direction,
            kind,
            attributes,
            ids: Vec::new(),
            seen: Seen::Alone,
        })
        .action
    }

    /// Judges one event, or reuses the verdict another session's copy of
    /// the same message got (see [`judgments`]); says also the event's id
    /// when this session had it judged (a session keeps a held message
    /// under it) and the attachments a rewrite removes. With nothing to
    /// judge by (no plugins) the event is not even built.
    pub fn rule(&self, ask: Ask<'_>) -> Judged {
        let (session, seen) = (ask.session, ask.seen);
        let key = self.text_key(seen, text_of(&ask.kind));
        self.rule_keyed(session, seen, key, || Some(ask))
    }

    /// As [`Self::rule`] for a message known by `seen` and its `text`,
    /// read into an event (by `ask`) only when it must be judged: a copy
    /// that takes another session's verdict is never read.
    pub fn rule_lazily<'a>(
        &self,
        session: &Session,
        seen: Seen,
        text: &str,
        ask: impl FnOnce() -> Option<Ask<'a>>,
    ) -> Judged {
        let key = self.text_key(seen, text);
        self.rule_keyed(session, seen, key, ask)
    }

    /// The key of the message's text under its stem.
    fn text_key(&self, seen: Seen, text: &str) -> Option<u64> {
        match seen {
            Seen::Alone => None,
            Seen::Named(stem) | Seen::Sent(stem) | Seen::Copy(stem) => {
                Some(self.judgments.key(stem, text))
            }
        }
    }

    fn rule_keyed<'a>(
        &self,
        session: &Session,
        seen: Seen,
        key: Option<u64>,
        ask: impl FnOnce() -> Option<Ask<'a>>,
    ) -> Judged {
        if self.judge.allows_everything() {
            self.pass();
            return Judged::default();
        }
        self.stats.events.fetch_add(1, Relaxed);
        let judged = match (seen, key) {
            (Seen::Named(stem), Some(key)) => match self.judgments.claim(key, 0, true) {
                Claim::Decided(action) => self.reused(action),
                Claim::Mine => {
                    let judged = self.run(ask(), Scope::All);
                    self.judgments.decide(key, judged.action.clone());
                    // The server's copy of a rewritten message (a
                    // carbon) carries the new text: the same message.
                    if let Action::Rewrite(text) = &judged.action {
                        let key = self.judgments.key(stem, text);
                        self.judgments.decide(key, judged.action.clone());
                    }
                    judged
                }
            },
            (Seen::Sent(stem), Some(key)) => {
                let judged = self.run(ask(), Scope::All);
                // Its copies carry what was delivered, and deliver it.
                let delivered = match &judged.action {
                    Action::Allow => Some(key),
                    Action::Rewrite(text) => Some(self.judgments.key(stem, text)),
                    _ => None,
                };
                if let Some(key) = delivered {
                    self.judgments.sent(key, Action::Allow);
                }
                judged
            }
            (Seen::Copy(_), Some(key)) => self.copy(session, key, ask),
            _ => self.run(ask(), Scope::All),
        };
        self.stats.count_action(judged.action.kind());
        judged
    }

    /// One local member's copy of a message: the judgment every copy
    /// shares (made here if this is the first), then this recipient's own
    /// by the plugins that judge each recipient.
    fn copy<'a>(
        &self,
        session: &Session,
        key: u64,
        ask: impl FnOnce() -> Option<Ask<'a>>,
    ) -> Judged {
        let taker = self.judgments.session_no(&session.id);
        let each = self.judge.judges_each_recipient();
        let (shared, ask) = match self.judgments.claim(key, taker, false) {
            Claim::Decided(action) if !each => return self.reused(action),
            Claim::Decided(action) => (self.reused(action), ask()),
            Claim::Mine if each => {
                let ask = ask();
                let judged = self.run(ask.as_ref().map(Ask::duplicate), Scope::Shared);
                self.judgments.decide(key, judged.action.clone());
                (judged, ask)
            }
            Claim::Mine => {
                let judged = self.run(ask(), Scope::All);
                self.judgments.decide(key, judged.action.clone());
                return judged;
            }
        };
        if shared.action.stops() {
            return shared;
        }
        let own = self.run(ask, Scope::Recipient);
        match own.action {
            Action::Allow => shared,
            _ => own,
        }
    }

    fn reused(&self, action: Action) -> Judged {
        self.stats.verdicts_reused.fetch_add(1, Relaxed);
        Judged {
            action,
            ..Judged::default()
        }
    }

    /// Builds the event and has it judged by the plugins of `scope`
    /// (nothing to judge is allowed).
    fn run(&self, ask: Option<Ask<'_>>, scope: Scope) -> Judged {
        let Some(ask) = ask else {
            return Judged::default();
        };
        let timestamp = now_ms();
        let uuid = new_event_uuid_at(timestamp);
        let event = Event {
            id: event_id_text(uuid),
            network: self.network.into(),
            direction: ask.direction,
            session: ask.session.clone(),
            timestamp,
            kind: ask.kind,
            tags: Vec::new(),
            attributes: ask.attributes,
            ids: ask.ids,
        };
        let FinalVerdict {
            action,
            removed_attachments,
            ..
        } = self.judge.judge_in(event, scope);
        Judged {
            event_id: matches!(action, Action::Hold(_)).then(|| event_id_text(uuid)),
            action,
            removed_attachments,
        }
    }
}

impl Ask<'_> {
    /// A copy, for a second judgment (the recipient's own after the
    /// shared one).
    fn duplicate(&self) -> Self {
        Ask {
            kind: self.kind.clone(),
            attributes: self.attributes.clone(),
            ids: self.ids.clone(),
            ..*self
        }
    }
}

/// The text that identifies a message with its stem: a message's body, a
/// subject; empty for other kinds.
fn text_of(kind: &EventKind) -> &str {
    match kind {
        EventKind::Message(m) => &m.body,
        EventKind::Subject(s) => &s.text,
        _ => "",
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A judge with no WebAssembly: adapter tests decide by a closure.

    use super::*;
    use crate::event::FinalVerdict;
    use std::sync::Mutex;

    type Rule = Box<dyn Fn(&Event, Scope) -> Action + Send + Sync>;

    /// Decides with `rule` and remembers every event it saw, and in which
    /// scope.
    pub struct FakeJudge {
        rule: Rule,
        each_recipient: bool,
        pub seen: Mutex<Vec<Event>>,
        pub scopes: Mutex<Vec<Scope>>,
    }

    impl FakeJudge {
        pub fn new(rule: impl Fn(&Event) -> Action + Send + Sync + 'static) -> Arc<Self> {
            Self::scoped(false, move |e, _| rule(e))
        }

        /// A judge with plugins that judge each recipient (when
        /// `each_recipient`); `rule` is told which plugins judge.
        pub fn scoped(
            each_recipient: bool,
            rule: impl Fn(&Event, Scope) -> Action + Send + Sync + 'static,
        ) -> Arc<Self> {
            Arc::new(FakeJudge {
                rule: Box::new(rule),
                each_recipient,
                seen: Mutex::new(Vec::new()),
                scopes: Mutex::new(Vec::new()),
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
        fn judge_in(&self, event: Event, scope: Scope) -> FinalVerdict {
            let action = (self.rule)(&event, scope);
            self.seen.lock().unwrap().push(event);
            self.scopes.lock().unwrap().push(scope);
            FinalVerdict {
                action,
                ..FinalVerdict::allow()
            }
        }

        fn judges_each_recipient(&self) -> bool {
            self.each_recipient
        }
    }
}
