//! Bridging: what plugins sent into other networks, judged there and
//! delivered by the gateway's relay identities.
//!
//! ```text
//! relay hears ─▶ chain (bridge plugin sends) ─▶ Decision.sent ─▶ prepare: id map, copy event
//!   ─▶ chain, outbound on the destination ─▶ relay writes it ─▶ settle: delivered / refused / failed
//! ```
//!
//! - `copy`: a sent message as an event, and the judged copy for the relay.
//! - `map`: the id map (the archive's tables, or memory).
//! - `service`: the running bridge between the judge and the relays.
//!
//! A copy's ticket is derived from its origin and destination, so a
//! message two bridges send to one room, or one sent again after a
//! restart, is recorded and delivered once.

pub mod copy;
pub mod map;
pub mod service;

use std::sync::Arc;

use crate::archive::{ArchiveError, CopyRow, excerpt};
use crate::event::bridge::{Copy, Delivery, Follows, Outgoing};
use crate::event::{Event, FinalVerdict, Session};
pub use map::IdMap;

/// A sent message made ready to judge: its copy as an event, and the
/// message its relation follows on the destination, if found.
pub struct Prepared {
    pub event: Event,
    pub follows: Option<Follows>,
}

/// Records `out` (sent while `origin` was handled) in the id map and
/// builds its copy. `None` when its ticket is known already: it was
/// bridged before (by another bridge, or before a restart).
///
/// # Errors
/// The archive failed; nothing was recorded.
pub fn prepare(
    map: &IdMap,
    origin: &Event,
    out: &Outgoing,
    relay: &Arc<Session>,
    rooms: &[String],
    now_ms: u64,
) -> Result<Option<Prepared>, ArchiveError> {
    let follows = match &out.relation {
        Some(rel) => map
            .follow(&origin.network, &rel.target, &out.network, &out.to)?
            .map(|f| Follows {
                rel_type: rel.rel_type.clone(),
                key: rel.key.clone(),
                ..f
            }),
        None => None,
    };
    if let (Some(rel), None) = (&out.relation, &follows) {
        tracing::info!(ticket = %out.ticket, rel = %rel.rel_type, target = %rel.target, "bridged without its relation: the message it follows was not bridged there");
    }
    let row = CopyRow {
        copy_event: out.ticket.clone(),
        origin_event: origin.id.clone(),
        origin_network: origin.network.to_string(),
        origin_room: origin
            .room()
            .or_else(|| origin.recipient())
            .unwrap_or_default()
            .to_owned(),
        origin_author: out.author.clone(),
        copy_network: out.network.clone(),
        copy_room: out.to.clone(),
        excerpt: Some(excerpt(&out.body)),
        plugin: out.plugin.clone(),
        created_ms: now_ms,
    };
    if !map.record(&row, &origin.ids)? {
        tracing::debug!(ticket = %out.ticket, "bridged already: not again");
        return Ok(None);
    }
    let event = copy::copy_event(out, follows.as_ref(), relay, rooms, now_ms);
    Ok(Some(Prepared { event, follows }))
}

/// After the copy was judged: a stopped copy is settled as refused and
/// gives `Err(reason)`; otherwise what the relay should write.
pub fn judged(
    map: &IdMap,
    prepared: Prepared,
    judged: &Event,
    verdict: &FinalVerdict,
    out: &Outgoing,
    origin_network: &str,
    now_ms: u64,
) -> Result<Copy, String> {
    if verdict.action.stops() {
        let reason = match &verdict.action {
            crate::event::Action::Block(r) | crate::event::Action::Hold(r) => r.clone(),
            _ => "dropped by policy".to_owned(),
        };
        settle(map, &out.ticket, &Delivery::Refused(reason.clone()), now_ms);
        return Err(reason);
    }
    Ok(copy::to_copy(
        judged,
        verdict,
        out,
        origin_network,
        prepared.follows,
    ))
}

/// Records what became of a copy; a failure to record is logged (the
/// delivery itself already happened or did not).
pub fn settle(map: &IdMap, ticket: &str, delivery: &Delivery, now_ms: u64) {
    if let Err(e) = map.settle(ticket, delivery, now_ms) {
        tracing::error!(ticket, error = %e, state = delivery.state(), "could not record a bridged copy's delivery");
    }
}
