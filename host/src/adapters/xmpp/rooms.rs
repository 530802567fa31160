//! Room membership as one session sees it (XEP-0045): which rooms it is
//! in, and who it has seen in each, so leaves are recognised and an
//! occupant's status update is not read as a join.

use std::collections::{HashMap, HashSet};

use crate::event::{Direction, EventKind};

/// MUC rooms this session is in, and who it has seen in each, so that
/// leaves are recognised and occupants' status updates are not re-joins.
#[derive(Debug, Default)]
pub struct Rooms {
    joined: HashMap<String, HashSet<String>>,
}

impl Rooms {
    pub fn is_joined(&self, room: &str) -> bool {
        self.joined.contains_key(room)
    }

    /// Whether `nick` has been seen in `room` (and not seen leaving).
    pub fn has_occupant(&self, room: &str, nick: &str) -> bool {
        self.joined.get(room).is_some_and(|set| set.contains(nick))
    }

    /// Records what an allowed room event means for membership.
    pub fn note(&mut self, kind: &EventKind, direction: Direction) {
        match (kind, direction) {
            (EventKind::RoomJoin(r), Direction::Outbound) => {
                self.joined.entry(r.room.clone()).or_default();
            }
            (EventKind::RoomLeave(r), Direction::Outbound) => {
                self.joined.remove(&r.room);
            }
            (EventKind::RoomJoin(r), Direction::Inbound) => {
                if let (Some(set), Some(nick)) = (self.joined.get_mut(&r.room), &r.nick) {
                    set.insert(nick.clone());
                }
            }
            (EventKind::RoomLeave(r), Direction::Inbound) => {
                if let (Some(set), Some(nick)) = (self.joined.get_mut(&r.room), &r.nick) {
                    set.remove(nick);
                }
            }
            _ => {}
        }
    }
}
