//! The id map the bridge writes and reads: the archive's tables when the
//! gateway has an archive (it lasts across restarts), else memory (for
//! `imgate replay`, and a gateway without one, which logs that edits made
//! after a restart will not find their message).

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::archive::{ArchiveError, CopyRow, Store};
use crate::capabilities::bridge::Ledger;
use crate::event::NetworkId;
use crate::event::bridge::{Delivery, Follows};

/// Copies memory keeps before forgetting the oldest.
const MEMORY_COPIES: usize = 65_536;

pub enum IdMap {
    Archive(Mutex<Store>),
    Memory(Mutex<Memory>),
}

#[derive(Default)]
pub struct Memory {
    copies: VecDeque<(CopyRow, Delivery)>,
    /// `(network, id, event, kind)`.
    ids: VecDeque<(String, String, String, String)>,
}

impl IdMap {
    pub fn memory() -> IdMap {
        IdMap::Memory(Mutex::default())
    }

    /// Records a copy as pending; false when its ticket is known already
    /// (the same message to the same place again: not sent twice).
    ///
    /// # Errors
    /// The archive failed.
    pub fn record(&self, row: &CopyRow, origin_ids: &[NetworkId]) -> Result<bool, ArchiveError> {
        match self {
            IdMap::Archive(store) => lock(store).bridge_record(row, origin_ids),
            IdMap::Memory(m) => {
                let mut m = lock(m);
                if m.copies.iter().any(|(c, _)| c.copy_event == row.copy_event) {
                    return Ok(false);
                }
                if m.copies.len() >= MEMORY_COPIES {
                    m.copies.pop_front();
                }
                m.copies.push_back((row.clone(), Delivery::Pending));
                m.add(&row.origin_network, &row.origin_event, origin_ids);
                Ok(true)
            }
        }
    }

    /// # Errors
    /// The archive failed.
    pub fn settle(
        &self,
        ticket: &str,
        delivery: &Delivery,
        now_ms: u64,
    ) -> Result<(), ArchiveError> {
        match self {
            IdMap::Archive(store) => lock(store).bridge_settle(ticket, delivery, now_ms),
            IdMap::Memory(m) => {
                let mut m = lock(m);
                let Some(network) = m
                    .copies
                    .iter_mut()
                    .find(|(c, _)| c.copy_event == ticket)
                    .map(|(c, d)| {
                        *d = delivery.clone();
                        c.copy_network.clone()
                    })
                else {
                    return Ok(());
                };
                if let Delivery::Delivered(ids) = delivery {
                    m.add(&network, ticket, ids);
                }
                Ok(())
            }
        }
    }

    /// See [`Store::bridge_follow`].
    ///
    /// # Errors
    /// The archive failed.
    pub fn follow(
        &self,
        network: &str,
        target: &str,
        to_network: &str,
        to_room: &str,
    ) -> Result<Option<Follows>, ArchiveError> {
        match self {
            IdMap::Archive(store) => {
                lock(store).bridge_follow(network, target, to_network, to_room)
            }
            IdMap::Memory(m) => Ok(lock(m).follow(network, target, to_network, to_room)),
        }
    }
}

impl Ledger for IdMap {
    fn status(&self, ticket: &str) -> Delivery {
        match self {
            IdMap::Archive(store) => match lock(store).bridge_status(ticket) {
                Ok(found) => found.unwrap_or(Delivery::Unknown),
                Err(e) => {
                    tracing::warn!(error = %e, "bridge status: the archive failed");
                    Delivery::Unknown
                }
            },
            IdMap::Memory(m) => {
                let m = lock(m);
                m.copies
                    .iter()
                    .find(|(c, _)| c.copy_event == ticket)
                    .map_or(Delivery::Unknown, |(_, d)| d.clone())
            }
        }
    }
}

impl Memory {
    fn add(&mut self, network: &str, event: &str, ids: &[NetworkId]) {
        for id in ids.iter().filter(|i| !i.value.is_empty()) {
            if self.ids.len() >= MEMORY_COPIES * 4 {
                self.ids.pop_front();
            }
            self.ids.push_back((
                network.to_owned(),
                id.value.clone(),
                event.to_owned(),
                id.kind.clone(),
            ));
        }
    }

    fn ids_of(&self, event: &str) -> Vec<NetworkId> {
        self.ids
            .iter()
            .filter(|(_, _, e, _)| e == event)
            .map(|(_, id, _, kind)| NetworkId {
                kind: kind.clone(),
                value: id.clone(),
                by: None,
            })
            .collect()
    }

    fn follow(
        &self,
        network: &str,
        target: &str,
        to_network: &str,
        to_room: &str,
    ) -> Option<Follows> {
        let mut events: Vec<&str> = self
            .ids
            .iter()
            .filter(|(n, id, _, _)| n == network && id == target)
            .map(|(_, _, e, _)| e.as_str())
            .collect();
        events.push(target);
        let follows = |row: &CopyRow, ids| Follows {
            rel_type: String::new(),
            ids,
            author: row.origin_author.clone(),
            excerpt: row.excerpt.clone(),
            key: None,
        };
        for event in events {
            if let Some((row, _)) = self.copies.iter().find(|(c, d)| {
                c.origin_event == event
                    && c.copy_network == to_network
                    && c.copy_room.eq_ignore_ascii_case(to_room)
                    && matches!(d, Delivery::Delivered(_))
            }) {
                return Some(follows(row, self.ids_of(&row.copy_event)));
            }
            if let Some((row, _)) = self.copies.iter().find(|(c, _)| {
                c.copy_event == event
                    && c.origin_network == to_network
                    && c.origin_room.eq_ignore_ascii_case(to_room)
            }) {
                return Some(follows(row, self.ids_of(&row.origin_event)));
            }
        }
        None
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
