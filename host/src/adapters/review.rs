//! Held messages wait in the session that said them. When a plugin holds a
//! message, the session keeps what it would have written and writes
//! nothing; a reviewer's ruling reaches the session through its door here
//! and the session delivers the message or tells the sender it was
//! rejected. A session that has ended has no door: its held messages can
//! no longer be delivered, and the ruling says so.
//!
//! Doors are opened by the session driver for every session and closed
//! when it ends; the gateway's review desk knocks.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

/// What a reviewer decided about one held message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ruling {
    /// Deliver it, as it was said.
    Release,
    /// Do not deliver it; tell the sender this.
    Reject(String),
}

/// The messages one session holds, oldest first, by event id, within a
/// count and a byte budget: past either the oldest is let go (it stays
/// archived as held, and releasing it then says it can no longer be
/// delivered).
pub struct Held<T> {
    items: VecDeque<(String, usize, T)>,
    bytes: usize,
    max_items: usize,
    max_bytes: usize,
}

impl<T> Held<T> {
    pub fn new(max_items: usize, max_bytes: usize) -> Self {
        Held {
            items: VecDeque::new(),
            bytes: 0,
            max_items,
            max_bytes,
        }
    }

    /// Keeps `item` (of `bytes` on the wire) under `event_id`.
    pub fn keep(&mut self, event_id: String, bytes: usize, item: T) {
        while self.items.len() >= self.max_items
            || (!self.items.is_empty() && self.bytes + bytes > self.max_bytes)
        {
            let Some((oldest, size, _)) = self.items.pop_front() else {
                break;
            };
            self.bytes -= size;
            tracing::warn!(event = %oldest, "too many held messages in one session: the oldest can no longer be released");
        }
        self.bytes += bytes;
        self.items.push_back((event_id, bytes, item));
    }

    /// Takes the message held under `event_id`.
    ///
    /// # Errors
    /// It is not held here (already ruled on, let go, or never held).
    pub fn take(&mut self, event_id: &str) -> Result<T, String> {
        let at = self
            .items
            .iter()
            .position(|(id, _, _)| id == event_id)
            .ok_or("this session no longer holds the message")?;
        let (_, size, item) = self
            .items
            .remove(at)
            .ok_or("this session no longer holds the message")?;
        self.bytes -= size;
        Ok(item)
    }
}

/// A ruling on its way to a session, with where the answer goes:
/// `Ok(what was done)` once it is written, or `Err(why not)`.
pub struct ReviewCall {
    pub event_id: String,
    pub ruling: Ruling,
    pub reply: oneshot::Sender<Result<String, String>>,
}

/// How long a session may take to act on a ruling.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// Every open session's door.
#[derive(Default)]
pub struct Reviews {
    doors: Mutex<HashMap<String, mpsc::Sender<ReviewCall>>>,
}

/// An open door; dropping it closes the door.
pub struct Door {
    reviews: Arc<Reviews>,
    session: String,
}

impl Drop for Door {
    fn drop(&mut self) {
        self.reviews.lock().remove(&self.session);
    }
}

impl Reviews {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::Sender<ReviewCall>>> {
        self.doors.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens `session`'s door: rulings for it arrive on the receiver.
    pub fn open(self: &Arc<Self>, session: &str) -> (Door, mpsc::Receiver<ReviewCall>) {
        let (tx, rx) = mpsc::channel(16);
        self.lock().insert(session.to_owned(), tx);
        (
            Door {
                reviews: self.clone(),
                session: session.to_owned(),
            },
            rx,
        )
    }

    /// Opens `session`'s door onto an existing channel: an adapter whose
    /// held messages are kept in one place (Matrix) has one for all its
    /// sessions.
    pub fn open_onto(self: &Arc<Self>, session: &str, rulings: mpsc::Sender<ReviewCall>) -> Door {
        self.lock().insert(session.to_owned(), rulings);
        Door {
            reviews: self.clone(),
            session: session.to_owned(),
        }
    }

    /// Takes `ruling` on `event_id` to `session` and waits until the
    /// session has acted on it.
    ///
    /// # Errors
    /// Why nothing was done: the session has ended, it does not hold the
    /// message, or it did not answer in time.
    pub async fn rule(
        &self,
        session: &str,
        event_id: &str,
        ruling: Ruling,
    ) -> Result<String, String> {
        let ended =
            || "the sender's session has ended, so it can no longer be delivered".to_owned();
        let door = self.lock().get(session).cloned().ok_or_else(ended)?;
        let (reply, answer) = oneshot::channel();
        door.send(ReviewCall {
            event_id: event_id.to_owned(),
            ruling,
            reply,
        })
        .await
        .map_err(|_| ended())?;
        match tokio::time::timeout(ANSWER_WITHIN, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err("the sender's session ended before it could act".into()),
            Err(_) => Err(format!("the session did not act within {ANSWER_WITHIN:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_messages_are_kept_within_count_and_bytes_and_taken_once() {
        let mut held = Held::new(2, 10);
        held.keep("a".into(), 4, 'a');
        held.keep("b".into(), 4, 'b');
        held.keep("c".into(), 4, 'c');
        assert!(held.take("a").is_err(), "over the count: the oldest goes");
        held.keep("d".into(), 8, 'd');
        assert!(held.take("b").is_err(), "over the bytes: the oldest goes");
        assert_eq!(
            held.take("c"),
            Err("this session no longer holds the message".into())
        );
        assert_eq!(held.take("d"), Ok('d'));
        assert!(held.take("d").is_err(), "taken once");
    }

    #[tokio::test]
    async fn a_ruling_reaches_an_open_session_and_not_an_ended_one() {
        let reviews = Arc::new(Reviews::default());
        let (door, mut calls) = reviews.open("xmpp-1");
        let session = tokio::spawn(async move {
            let call = calls.recv().await.unwrap();
            assert_eq!(call.ruling, Ruling::Release);
            call.reply
                .send(Ok(format!("delivered {}", call.event_id)))
                .unwrap();
            calls
        });
        assert_eq!(
            reviews.rule("xmpp-1", "e1", Ruling::Release).await,
            Ok("delivered e1".into())
        );
        let calls = session.await.unwrap();
        drop(door);
        drop(calls);
        let err = reviews
            .rule("xmpp-1", "e2", Ruling::Reject("no".into()))
            .await
            .unwrap_err();
        assert!(err.contains("session has ended"), "{err}");
        assert!(reviews.rule("irc-9", "e3", Ruling::Release).await.is_err());
    }
}
