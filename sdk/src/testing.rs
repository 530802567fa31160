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
    Config, Conversation, Direction, Event, EventKind, EventRecord, FileOffer, FinalVerdict,
    KvError, Level, Message, Plugin, Presence, RoomChange, Session, Verdict,
};

/// One record appended through [`crate::archive::append`].
#[derive(Clone, Debug, PartialEq)]
pub struct ArchivedRecord {
    pub event: EventRecord,
    /// The final verdict, when appended from `observe`.
    pub verdict: Option<FinalVerdict>,
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
    /// The final verdict while [`Harness::observe`] runs.
    pub observing: Option<FinalVerdict>,
}

impl TestHost {
    fn new() -> Self {
        TestHost {
            now_ms: 1_700_000_000_000,
            ..Default::default()
        }
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

    pub fn handle(&mut self, event: &EventRecord) -> Verdict {
        self.plugin.handle(&Event::from_record(event))
    }

    /// # Errors
    /// Whatever `observe` returns.
    pub fn observe(&mut self, event: &EventRecord, verdict: &FinalVerdict) -> Result<(), String> {
        with_host(|h| h.observing = Some(verdict.clone()));
        let result = self.plugin.observe(&Event::from_record(event), verdict);
        with_host(|h| h.observing = None);
        result
    }

    pub fn plugin(&mut self) -> &mut P {
        &mut self.plugin
    }
}

fn event(kind: EventKind, user: &str) -> EventRecord {
    EventRecord {
        id: "test-1".into(),
        network: "xmpp".into(),
        direction: Direction::Outbound,
        session: Session {
            id: "s1".into(),
            user: user.into(),
            peer: "127.0.0.1:40000".into(),
        },
        timestamp: with_host(|h| h.now_ms),
        kind,
        tags: Vec::new(),
        attributes: Vec::new(),
    }
}

/// An outbound one-to-one message from `sender` to `recipient`.
pub fn message(sender: &str, recipient: &str, body: &str) -> EventRecord {
    event(
        EventKind::Message(Message {
            id: None,
            sender: sender.into(),
            recipient: recipient.into(),
            conversation: Conversation::Direct,
            body: body.into(),
            markup: None,
            thread: None,
            reply_to: None,
            attachments: Vec::new(),
            encrypted: false,
            action: false,
            edit_of: None,
            retraction_of: None,
        }),
        sender,
    )
}

/// An outbound message to a room.
pub fn room_message(sender: &str, room: &str, body: &str) -> EventRecord {
    let mut e = message(sender, room, body);
    if let EventKind::Message(m) = &mut e.kind {
        m.conversation = Conversation::Group(room.into());
    }
    e
}

/// An outbound file offer.
pub fn file_offer(sender: &str, recipient: &str, name: &str, size: u64) -> EventRecord {
    event(
        EventKind::FileOffer(FileOffer {
            id: None,
            sender: sender.into(),
            recipient: recipient.into(),
            name: name.into(),
            size: Some(size),
            media_type: None,
        }),
        sender,
    )
}

/// Available presence from `sender`.
pub fn presence(sender: &str) -> EventRecord {
    event(
        EventKind::Presence(Presence {
            sender: sender.into(),
            recipient: None,
            available: true,
            show: None,
            status: None,
        }),
        sender,
    )
}

/// `occupant` joining `room`.
pub fn room_join(occupant: &str, room: &str) -> EventRecord {
    event(
        EventKind::RoomJoin(RoomChange {
            room: room.into(),
            occupant: occupant.into(),
            nick: None,
            reason: None,
        }),
        occupant,
    )
}

/// A session starting for `user`.
pub fn session_start(user: &str) -> EventRecord {
    event(EventKind::SessionStart, user)
}

/// The same event travelling network → client.
pub fn inbound(mut e: EventRecord) -> EventRecord {
    e.direction = Direction::Inbound;
    e
}
