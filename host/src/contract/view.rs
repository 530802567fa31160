//! The `event-view` resource's host side: the one event an instance is
//! looking at.
//!
//! The host keeps the event; the plugin gets a borrowed handle and asks for
//! the fields it needs. Every string or list that crosses into a component
//! costs a call into the guest's allocator (about 60 ns here), so passing
//! the whole event record to every plugin would cost more than most
//! plugins' own logic. With the view, a no-op plugin copies nothing and a
//! keyword filter copies only the body.
//!
//! One event is in flight per instance, so the view lives in a single slot
//! in the store rather than a table; each call gets a fresh handle number,
//! so a handle from an earlier call can never read a later event.

use std::sync::Arc;

use wasmtime::component::Resource;

use crate::event::{Event, FinalVerdict};

/// The resource's type marker; its data lives in [`EventSlot`].
pub struct EventView;

/// What the current view shows: the event, and the final verdict once the
/// chain has one (during `observe`).
#[derive(Clone)]
pub struct ViewData {
    pub event: Arc<Event>,
    pub verdict: Option<Arc<FinalVerdict>>,
}

/// The one event an instance is looking at.
#[derive(Default)]
pub struct EventSlot {
    rep: u32,
    current: Option<ViewData>,
}

/// A handle used outside the call it was given for.
#[derive(Debug, thiserror::Error)]
#[error("event-view handle is not valid in this call")]
pub struct StaleView;

impl EventSlot {
    /// Puts `data` in the slot and returns the borrowed handle to pass.
    pub fn open(&mut self, data: ViewData) -> Resource<EventView> {
        self.rep = self.rep.wrapping_add(1);
        self.current = Some(data);
        Resource::new_borrow(self.rep)
    }

    /// Empties the slot after the call, so the chain's `Arc` is unique again.
    pub fn close(&mut self) {
        self.current = None;
    }

    /// The data behind `handle`, if it is the current one.
    ///
    /// # Errors
    /// [`StaleView`], a trap: only a hostile component can cause it.
    pub fn get(&self, handle: &Resource<EventView>) -> Result<&ViewData, StaleView> {
        match &self.current {
            Some(data) if handle.rep() == self.rep => Ok(data),
            _ => Err(StaleView),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_is_only_valid_for_its_own_call() {
        let event = crate::event::json::EventDoc {
            network: "xmpp".into(),
            session_start: Some(Default::default()),
            ..Default::default()
        }
        .into_event("e", 0)
        .unwrap();
        let data = ViewData {
            event: Arc::new(event),
            verdict: None,
        };
        let mut slot = EventSlot::default();
        let first = slot.open(data.clone());
        assert!(slot.get(&first).is_ok());
        slot.close();
        assert!(slot.get(&first).is_err());
        let second = slot.open(data);
        assert!(slot.get(&first).is_err());
        assert!(slot.get(&second).is_ok());
    }
}
