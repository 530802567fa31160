//! Test a plugin's logic natively, without wasm or a network.
//!
//! ```ignore
//! use imgate_sdk::testing::{Harness, message};
//!
//! #[test]
//! fn blocks_the_word() {
//!     let mut h = Harness::<KeywordBlock>::new(serde_json::json!({"words": ["secret"]})).unwrap();
//!     assert!(h.handle(&message("alice@corp", "bob@ext", "a secret plan")).is_block());
//! }
//! ```
//!
//! The capabilities are in-memory and per test thread: logs, kv, archive
//! records and metrics are inspectable with [`with_host`], and time moves
//! only when the test moves it.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::{
    Config, Direction, Event, EventRecord, FileOffer, KvError, Level, Membership, Outcome,
    OutcomeRecord, Plugin, Presence, Relation, Session, Text, Verdict,
};

/// One record appended through [`crate::archive::append`].
#[derive(Clone, Debug, PartialEq)]
pub struct ArchivedRecord {
    pub event: EventRecord,
    /// The final outcome, when appended from `observe`.
    pub verdict: Option<OutcomeRecord>,
    pub annotations: Vec<(String, String)>,
}

/// The in-memory host a native test runs against.
#[derive(Debug, Default)]
pub struct TestHost {
    pub logs: Vec<(Level, String)>,
    /// The clock, in ms since the epoch; starts at 1 700 000 000 000.
    pub now_ms: u64,
    pub kv: HashMap<String, (Vec<u8>, Option<u64>)>,
    pub archive: Vec<ArchivedRecord>,
    pub counters: HashMap<String, u64>,
    pub histograms: HashMap<String, Vec<f64>>,
    pub config: serde_json::Map<String, serde_json::Value>,
    /// The final outcome while [`Harness::observe`] runs.
    pub observing: Option<OutcomeRecord>,
    /// The event being handled or observed: the origin of what is sent.
    pub handling: Option<String>,
    /// What [`crate::bridge::Outgoing::send`] sent, with its origin event.
    pub sent: Vec<SentMessage>,
    /// What [`crate::bridge::status`] answers, by ticket (tests set it).
    pub deliveries: HashMap<String, crate::bridge::Delivery>,
}

/// A message a plugin sent through [`crate::bridge`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentMessage {
    pub ticket: String,
    /// The id of the event being handled when it was sent.
    pub origin: String,
    pub message: crate::bridge::Outgoing,
}

impl TestHost {
    fn new() -> Self {
        TestHost {
            now_ms: 1_700_000_000_000,
            ..Default::default()
        }
    }

    /// `bridge` as the host does it: the event in progress is the origin,
    /// and one message per origin and destination (the same ticket).
    pub fn bridge_send(&mut self, message: &crate::bridge::Outgoing) -> Result<String, String> {
        let origin = self
            .handling
            .clone()
            .ok_or("send only while handling or observing an event")?;
        if message.body.is_none() {
            return Err("no body: call `body` first".into());
        }
        let ticket = format!("{origin}>{}:{}", message.network, message.to);
        if !self.sent.iter().any(|s| s.ticket == ticket) {
            self.deliveries
                .entry(ticket.clone())
                .or_insert(crate::bridge::Delivery::Pending);
            self.sent.push(SentMessage {
                ticket: ticket.clone(),
                origin,
                message: message.clone(),
            });
        }
        Ok(ticket)
    }

    pub fn kv_get(&mut self, key: &str) -> Option<Vec<u8>> {
        let now = self.now_ms;
        match self.kv.get(key) {
            Some((_, Some(exp))) if *exp <= now => {
                self.kv.remove(key);
                None
            }
            Some((v, _)) => Some(v.clone()),
            None => None,
        }
    }

    pub fn kv_set(&mut self, key: &str, value: Vec<u8>, ttl_ms: Option<u64>) {
        let expires = ttl_ms.map(|t| self.now_ms + t);
        self.kv.insert(key.to_owned(), (value, expires));
    }

    pub fn kv_increment(&mut self, key: &str, delta: i64) -> Result<i64, KvError> {
        let current = match self.kv_get(key) {
            None => 0,
            Some(v) => std::str::from_utf8(&v)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or_else(|| KvError::Store(format!("key `{key}` does not hold a counter")))?,
        };
        let next = current + delta;
        let expires = self.kv.get(key).and_then(|(_, e)| *e);
        self.kv
            .insert(key.to_owned(), (next.to_string().into_bytes(), expires));
        Ok(next)
    }
}

thread_local! {
    static HOST: RefCell<TestHost> = RefCell::new(TestHost::new());
}

/// Reads or changes this thread's test host.
pub fn with_host<R>(f: impl FnOnce(&mut TestHost) -> R) -> R {
    HOST.with(|h| f(&mut h.borrow_mut()))
}

/// Moves the test clock forward.
pub fn advance_ms(ms: u64) {
    with_host(|h| h.now_ms += ms);
}

/// Runs one plugin value the way the host would.
pub struct Harness<P: Plugin> {
    plugin: P,
}

impl<P: Plugin> Harness<P> {
    /// Resets this thread's host and calls `init` with `config` (a JSON
    /// object, as the operator's table would be).
    ///
    /// # Errors
    /// Whatever `init` returns.
    pub fn new(config: serde_json::Value) -> Result<Self, String> {
        let config = Config::from_value(config)?;
        with_host(|h| {
            *h = TestHost::new();
            h.config = config.keys().fold(serde_json::Map::new(), |mut m, k| {
                if let Ok(Some(v)) = config.get::<serde_json::Value>(k) {
                    m.insert(k.to_owned(), v);
                }
                m
            });
        });
        Ok(Harness {
            plugin: P::init(config)?,
        })
    }

    /// Judges `event` as the host would: a plugin whose `interest` leaves
    /// out its kind is not asked, and allows it.
    pub fn handle(&mut self, event: &EventRecord) -> Verdict {
        if !self.wants(event) {
            return Verdict::allow();
        }
        with_host(|h| h.handling = Some(event.id.clone()));
        let verdict = self.plugin.handle(&Event::from_record(event));
        with_host(|h| h.handling = None);
        verdict
    }

    /// Whether the plugin's `interest` covers the event's kind.
    pub fn wants(&self, event: &EventRecord) -> bool {
        self.plugin.interest().is_none_or(|kinds| {
            let only_flags = kinds.iter().all(|k| k == crate::EACH_RECIPIENT);
            only_flags || kinds.contains(&event.kind)
        })
    }

    /// # Errors
    /// Whatever `observe` returns.
    pub fn observe(&mut self, event: &EventRecord, outcome: &OutcomeRecord) -> Result<(), String> {
        if !self.wants(event) {
            return Ok(());
        }
        with_host(|h| {
            h.observing = Some(outcome.clone());
            h.handling = Some(event.id.clone());
        });
        let result = self
            .plugin
            .observe(&Event::from_record(event), &Outcome::from_record(outcome));
        with_host(|h| {
            h.observing = None;
            h.handling = None;
        });
        result
    }

    pub fn plugin(&mut self) -> &mut P {
        &mut self.plugin
    }
}

fn event(kind: &str, user: &str, sender: &str) -> EventRecord {
    EventRecord {
        id: "0190a000-0000-7000-8000-000000000001".into(),
        network: "xmpp".into(),
        direction: Direction::Outbound,
        session: Session {
            id: "s1".into(),
            user: user.into(),
            peer: "127.0.0.1:40000".into(),
        },
        timestamp: with_host(|h| h.now_ms),
        kind: kind.into(),
        sender: sender.into(),
        ..EventRecord::default()
    }
}

fn text(role: &str, value: &str) -> Text {
    Text {
        role: role.into(),
        value: value.into(),
    }
}

/// An outbound one-to-one message from `sender` to `recipient`.
pub fn message(sender: &str, recipient: &str, body: &str) -> EventRecord {
    EventRecord {
        recipient: Some(recipient.into()),
        body: Some(body.into()),
        texts: if body.is_empty() {
            Vec::new()
        } else {
            vec![text("body", body)]
        },
        ..event("message", sender, sender)
    }
}

/// An outbound message to a room.
pub fn room_message(sender: &str, room: &str, body: &str) -> EventRecord {
    EventRecord {
        recipient: None,
        room: Some(room.into()),
        ..message(sender, room, body)
    }
}

/// An end-to-end encrypted message: no body the gateway can read.
pub fn encrypted_message(sender: &str, recipient: &str) -> EventRecord {
    EventRecord {
        body: None,
        texts: Vec::new(),
        encrypted: true,
        ..message(sender, recipient, "")
    }
}

/// `sender` reacting with `key` to message `target` in `room`.
pub fn reaction(sender: &str, room: &str, target: &str, key: &str) -> EventRecord {
    EventRecord {
        room: Some(room.into()),
        texts: vec![text("reaction", key)],
        relations: vec![Relation {
            rel_type: "reaction".into(),
            target: target.into(),
            key: Some(key.into()),
        }],
        ..event("reaction", sender, sender)
    }
}

/// `sender` setting `room`'s subject (topic) to `subject`.
pub fn subject(sender: &str, room: &str, subject: &str) -> EventRecord {
    EventRecord {
        room: Some(room.into()),
        body: Some(subject.into()),
        texts: vec![text("subject", subject)],
        ..event("subject", sender, sender)
    }
}

/// An outbound file offer.
pub fn file_offer(sender: &str, recipient: &str, name: &str, size: u64) -> EventRecord {
    EventRecord {
        recipient: Some(recipient.into()),
        texts: vec![text("file-name", name)],
        file_offer: Some(FileOffer {
            name: name.into(),
            size: Some(size),
            media_type: None,
        }),
        ..event("file-offer", sender, sender)
    }
}

/// Available presence from `sender`.
pub fn presence(sender: &str) -> EventRecord {
    EventRecord {
        presence: Some(Presence {
            available: true,
            show: None,
            status: None,
        }),
        ..event("presence", sender, sender)
    }
}

/// `occupant` joining `room`.
pub fn room_join(occupant: &str, room: &str) -> EventRecord {
    EventRecord {
        room: Some(room.into()),
        membership: Some(Membership {
            change: "join".into(),
            occupant: occupant.into(),
            nick: None,
            reason: None,
        }),
        ..event("membership", occupant, occupant)
    }
}

/// A session starting for `user`.
pub fn session_start(user: &str) -> EventRecord {
    event("session-start", user, "")
}

/// The same event as `user`'s session receives it (a room member's copy).
pub fn received_by(user: &str, mut e: EventRecord) -> EventRecord {
    e.direction = Direction::Inbound;
    e.session.user = user.into();
    e.session.id = format!("session-of-{user}");
    e
}

/// The same event travelling network → client.
pub fn inbound(mut e: EventRecord) -> EventRecord {
    e.direction = Direction::Inbound;
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Action, Kind, archive, kv, log};

    /// A plugin that exercises every path of the harness.
    struct Probe {
        limit: i64,
    }

    impl Plugin for Probe {
        fn init(config: Config) -> Result<Self, String> {
            Ok(Probe {
                limit: config.get_or("limit", 2)?,
            })
        }

        fn handle(&mut self, event: &Event<'_>) -> Verdict {
            let n = kv::increment(&event.user(), 1).unwrap_or(i64::MAX);
            log::info(&format!("{} event {n}", event.user()));
            match event.body() {
                Some(_) if n > self.limit => Verdict::block("over the limit"),
                Some(body) if body.contains("rewrite") => Verdict::rewrite("rewritten"),
                _ => Verdict::allow().with_tag("probe:seen"),
            }
        }

        fn observe(&mut self, event: &Event<'_>, outcome: &Outcome<'_>) -> Result<(), String> {
            let _ = outcome;
            archive::append(event, &[("k".into(), "v".into())]).map(|_| ())
        }

        fn interest(&self) -> Option<Vec<String>> {
            (self.limit == 7).then(|| vec!["message".to_owned()])
        }
    }

    #[test]
    fn the_harness_runs_handle_with_in_memory_capabilities() {
        let mut h = Harness::<Probe>::new(serde_json::json!({"limit": 2})).unwrap();
        let e = message("alice@corp", "bob@ext", "hello");
        assert_eq!(h.handle(&e).tags, vec!["probe:seen".to_string()]);
        assert_eq!(
            h.handle(&message("alice@corp", "bob@ext", "please rewrite"))
                .action,
            Action::Rewrite("rewritten".into())
        );
        assert!(h.handle(&e).is_block());
        with_host(|host| {
            assert_eq!(host.kv["alice@corp"].0, b"3");
            assert_eq!(host.logs.len(), 3);
        });
        // A fresh harness starts from a clean host.
        let mut h = Harness::<Probe>::new(serde_json::json!({})).unwrap();
        assert!(h.handle(&e).is_allow());
    }

    #[test]
    fn observe_archives_with_the_final_verdict() {
        let mut h = Harness::<Probe>::new(serde_json::json!({})).unwrap();
        let e = room_message("alice@corp", "room@muc", "hi");
        let verdict = OutcomeRecord::of(&Action::Drop);
        h.observe(&e, &verdict).unwrap();
        with_host(|host| {
            assert_eq!(host.archive.len(), 1);
            assert_eq!(host.archive[0].verdict.as_ref(), Some(&verdict));
            assert_eq!(host.archive[0].event, e);
            assert!(host.observing.is_none());
        });
    }

    #[test]
    fn interest_keeps_the_plugin_from_other_kinds() {
        let mut h = Harness::<Probe>::new(serde_json::json!({"limit": 7})).unwrap();
        assert!(!h.wants(&presence("a")));
        assert!(h.handle(&presence("a")).is_allow());
        assert!(h.wants(&message("a", "b", "hi")));
        assert_eq!(
            h.handle(&message("a", "b", "hi")).tags,
            vec!["probe:seen".to_owned()]
        );
    }

    #[test]
    fn the_event_accessors_read_the_record() {
        let mut e = inbound(file_offer("bob@ext", "alice@corp", "plan.pdf", 42));
        e.tags.push("dlp:x".into());
        e.attributes.push(("irc.dcc".into(), "1".into()));
        let ev = Event::from_record(&e);
        assert_eq!(ev.kind(), Kind::FileOffer);
        assert_eq!(ev.direction(), Direction::Inbound);
        assert!(!ev.is_outbound());
        assert_eq!(ev.body(), None);
        assert_eq!(ev.file_offer().unwrap().size, Some(42));
        assert_eq!(ev.texts()[0].value, "plan.pdf");
        assert!(ev.has_tag("dlp:x") && !ev.has_tag("dlp:y"));
        assert_eq!(ev.attribute("irc.dcc").as_deref(), Some("1"));
        assert_eq!(ev.user(), "bob@ext");
        let secret = encrypted_message("a", "b");
        assert_eq!(Event::from_record(&secret).body(), None);
        assert!(Event::from_record(&secret).encrypted());
        assert_eq!(
            Event::from_record(&room_join("a", "r"))
                .membership()
                .unwrap()
                .change,
            "join"
        );
        let r = reaction("a", "r@muc", "m1", "👍");
        assert_eq!(Event::from_record(&r).kind(), Kind::Reaction);
        assert_eq!(Event::from_record(&r).relations()[0].target, "m1");
        assert_eq!(
            Event::from_record(&subject("a", "r@muc", "q3"))
                .body()
                .as_deref(),
            Some("q3")
        );
        assert!(
            Event::from_record(&presence("a"))
                .presence()
                .unwrap()
                .available
        );
        assert_eq!(
            Event::from_record(&session_start("a")).kind(),
            Kind::SessionStart
        );
        assert_eq!(Kind::from_name("typing"), Kind::Other("typing".into()));
    }
}
