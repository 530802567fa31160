//! Bridging in neutral terms: what a plugin sends into another network
//! ([`Outgoing`]), the copy a relay writes ([`Copy`]), and what became of
//! it ([`Delivery`]).
//!
//! A copy is an ordinary event once built: judged outbound on its network,
//! archived, delivered by the relay identity. These attributes mark it, so
//! plugins and the archive can tell, and the chain keeps bridge plugins
//! from seeing it (no loops).

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{NetworkId, Session};

/// Attribute on a copy: the event id of the message it copies.
pub const ORIGIN: &str = "imgate.origin";
/// Attribute on a copy: the plugin that sent it.
pub const BRIDGE: &str = "imgate.bridge";
/// Attribute on a copy: the original author's display name.
pub const AUTHOR: &str = "imgate.author";

/// A message a plugin sent, as `bridge.outgoing` built it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The copy's event id, which is also the plugin's ticket.
    pub ticket: String,
    /// The event being handled when it was sent.
    pub origin: String,
    pub plugin: String,
    pub network: String,
    /// A room the relay is in, or a user.
    pub to: String,
    pub body: String,
    /// `(format, text)`.
    pub markup: Option<(String, String)>,
    pub relation: Option<Relates>,
    pub author: Option<String>,
    pub emote: bool,
}

/// An outgoing message while the plugin builds it (`bridge.outgoing`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Draft {
    pub network: String,
    pub to: String,
    pub body: Option<String>,
    pub markup: Option<(String, String)>,
    pub relation: Option<Relates>,
    pub author: Option<String>,
    pub emote: bool,
    /// Its ticket once sent: a draft is sent once.
    pub sent: Option<String>,
}

/// The message an outgoing one follows, as the plugin named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relates {
    /// `edit`, `retraction`, `reply`, `reaction`.
    pub rel_type: String,
    /// A network id on the origin's network, or an imgate event id.
    pub target: String,
    pub key: Option<String>,
}

/// A copy's ticket: its event id, derived from its origin and destination,
/// so every plugin that sends the same message to the same place gets the
/// same ticket and the host delivers it once. A UUIDv7 at the origin's
/// time (sorted with it), whose other bits are the hash.
pub fn ticket_for(origin: &str, origin_ms: u64, network: &str, to: &str) -> String {
    let mut hash = Sha256::new();
    for part in [origin, network, to] {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    }
    let digest = hash.finalize();
    let mut random = [0u8; 10];
    random.copy_from_slice(&digest[..10]);
    super::event_id_text(uuid::Builder::from_unix_timestamp_millis(origin_ms, &random).into_uuid())
}

/// What became of a sent message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    Pending,
    /// With the ids the destination gave the copy.
    Delivered(Vec<NetworkId>),
    /// The destination's chain stopped it.
    Refused(String),
    /// It could not be written to its network.
    Failed(String),
    Unknown,
}

impl Delivery {
    /// The word the archive and the admin API use.
    pub fn state(&self) -> &'static str {
        match self {
            Delivery::Pending => "pending",
            Delivery::Delivered(_) => "delivered",
            Delivery::Refused(_) => "refused",
            Delivery::Failed(_) => "failed",
            Delivery::Unknown => "unknown",
        }
    }

    /// Back from the archive's columns.
    pub fn from_state(state: &str, reason: Option<String>, ids: Vec<NetworkId>) -> Delivery {
        let reason = || reason.clone().unwrap_or_default();
        match state {
            "pending" => Delivery::Pending,
            "delivered" => Delivery::Delivered(ids),
            "refused" => Delivery::Refused(reason()),
            "failed" => Delivery::Failed(reason()),
            _ => Delivery::Unknown,
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            Delivery::Refused(r) | Delivery::Failed(r) => Some(r),
            _ => None,
        }
    }
}

/// What a relay writes: the judged copy, in neutral terms; the relay
/// renders it in its network's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copy {
    /// The copy's event id; the relay uses it as the message's own id
    /// where its network has one.
    pub id: String,
    pub to: String,
    /// The text as judged (after rewrites).
    pub body: String,
    pub markup: Option<String>,
    pub author: Option<String>,
    /// The origin's network, for the format (`<alice@xmpp>`).
    pub from_network: String,
    pub emote: bool,
    pub relation: Option<Follows>,
}

/// The message a copy follows, found on the copy's own network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Follows {
    pub rel_type: String,
    /// Its ids on this network (a relay that has relations uses them).
    pub ids: Vec<NetworkId>,
    /// Who wrote it and what it said, for a network without relations
    /// (a quoted reply on IRC).
    pub author: Option<String>,
    pub excerpt: Option<String>,
    pub key: Option<String>,
}

/// A relay's answer to a copy, awaited apart from writing it: copies are
/// written in the order given, and their answers come when they come.
pub type Written = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Vec<NetworkId>, String>> + Send + 'static>,
>;

/// A relay identity: the gateway's account on one network, which writes
/// copies and hears its rooms (implemented in `adapters::relay`).
pub trait Relay: Send + Sync {
    /// The network it is on.
    fn network(&self) -> &'static str;
    /// The session its copies are judged in (its account as the user).
    fn session(&self) -> Arc<Session>;
    /// The rooms it was told to join.
    fn rooms(&self) -> &[String];
    /// Queues a judged copy to be written now; the answer is the ids its
    /// network gave it, or why it could not be written (not connected,
    /// refused, timed out).
    fn send(&self, copy: Copy) -> Written;
    /// Tells `who` in `place` (a room and a nick, or a user) something
    /// privately: why their message was not bridged.
    fn tell(&self, place: &str, who: &str, text: &str);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_is_the_same_for_the_same_message_and_place_only() {
        let a = ticket_for("e1", 1_700_000_000_000, "irc", "#lobby");
        assert_eq!(a, ticket_for("e1", 1_700_000_000_000, "irc", "#lobby"));
        assert_ne!(a, ticket_for("e1", 1_700_000_000_000, "irc", "#other"));
        assert_ne!(a, ticket_for("e2", 1_700_000_000_000, "irc", "#lobby"));
        // Lengths are part of the hash: ("ab","c") is not ("a","bc").
        assert_ne!(
            ticket_for("e1", 0, "ab", "c"),
            ticket_for("e1", 0, "a", "bc")
        );
        let uuid = uuid::Uuid::parse_str(&a).unwrap();
        assert_eq!(uuid.get_version_num(), 7);
    }
}
