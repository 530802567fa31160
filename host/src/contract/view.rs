//! The host side of the resources a plugin is lent for one call: the
//! `event-view` it reads, the `verdict-out` it writes its verdict into (a
//! policy plugin's `handle`), and the `outcome-view` it reads the final
//! outcome from (an observer's `observe`).
//!
//! The host keeps the event; the plugin gets borrowed handles and asks for
//! the fields it needs. Every string or list that crosses into a component
//! costs a call into the guest's allocator (about 60 ns here), so passing
//! the whole event record to every plugin would cost more than most
//! plugins' own logic. With the view, a no-op plugin copies nothing and a
//! keyword filter copies only the body. Answering through `verdict-out`
//! rather than a returned variant is what lets actions grow: a new action
//! is a new method, and old plugins never call it.
//!
//! One event is in flight per instance, so the three live in a single slot
//! in the store rather than a table; each call gets a fresh handle number,
//! so a handle from an earlier call can never reach a later event.

use std::sync::Arc;

use wasmtime::component::Resource;

use crate::event::{Action, Event, FinalVerdict, Verdict};

/// The `event-view` resource's type marker; its data lives in [`EventSlot`].
pub struct EventView;
/// The `verdict-out` resource's type marker.
pub struct VerdictOut;
/// The `outcome-view` resource's type marker.
pub struct OutcomeView;

/// What the current view shows: the event, and the final verdict once the
/// chain has one (during `observe`).
#[derive(Clone)]
pub struct ViewData {
    pub event: Arc<Event>,
    pub verdict: Option<Arc<FinalVerdict>>,
}

/// What a plugin wrote into its `verdict-out` during one `handle`.
#[derive(Debug, Default)]
pub struct VerdictDraft {
    /// The last of block, discard and hold.
    pub stop: Option<Action>,
    pub rewrite: Option<String>,
    pub tags: Vec<String>,
    pub attributes: Vec<(String, String)>,
    pub remove_attachments: Vec<String>,
    /// A call the host refused (a rewrite of encrypted content): the
    /// plugin's failure, whatever else it wrote.
    pub refused: Option<String>,
}

impl VerdictDraft {
    /// The verdict the plugin gave, or why it is invalid.
    ///
    /// # Errors
    /// The reason a refused call gave.
    pub fn finish(self) -> Result<Verdict, String> {
        if let Some(reason) = self.refused {
            return Err(reason);
        }
        let action = match (self.stop, self.rewrite) {
            (Some(stop), _) => stop,
            (None, Some(body)) => Action::Rewrite(body),
            (None, None) => Action::Allow,
        };
        Ok(Verdict {
            action,
            tags: self.tags,
            attributes: self.attributes,
            remove_attachments: self.remove_attachments,
            sent: Vec::new(),
        })
    }
}

/// The one event an instance is looking at.
#[derive(Default)]
pub struct EventSlot {
    rep: u32,
    current: Option<ViewData>,
    /// Open only during `handle`.
    draft: Option<VerdictDraft>,
}

/// A handle used outside the call it was given for.
#[derive(Debug, thiserror::Error)]
#[error("handle is not valid in this call")]
pub struct StaleView;

impl EventSlot {
    /// Puts `data` in the slot and returns the borrowed handle to pass.
    pub fn open(&mut self, data: ViewData) -> Resource<EventView> {
        self.rep = self.rep.wrapping_add(1);
        self.current = Some(data);
        Resource::new_borrow(self.rep)
    }

    /// Opens an empty verdict for the call just opened, and its handle.
    pub fn open_out(&mut self) -> Resource<VerdictOut> {
        self.draft = Some(VerdictDraft::default());
        Resource::new_borrow(self.rep)
    }

    /// The outcome handle for the call just opened (its verdict is in the
    /// view data).
    pub fn outcome(&self) -> Resource<OutcomeView> {
        Resource::new_borrow(self.rep)
    }

    /// Empties the slot after the call, so the chain's `Arc` is unique
    /// again, and hands back what the plugin wrote, if it was given a
    /// `verdict-out`.
    pub fn close(&mut self) -> Option<VerdictDraft> {
        self.current = None;
        self.draft.take()
    }

    /// The event of the call in progress, if one is.
    pub fn current_event(&self) -> Option<&Arc<Event>> {
        self.current.as_ref().map(|d| &d.event)
    }

    /// The data behind `handle`, if it is the current one.
    ///
    /// # Errors
    /// [`StaleView`], a trap: only a hostile component can cause it.
    pub fn get<T: 'static>(&self, handle: &Resource<T>) -> Result<&ViewData, StaleView> {
        match &self.current {
            Some(data) if handle.rep() == self.rep => Ok(data),
            _ => Err(StaleView),
        }
    }

    /// The open verdict behind `handle`, and the event it is about.
    ///
    /// # Errors
    /// [`StaleView`], a trap.
    pub fn draft(
        &mut self,
        handle: &Resource<VerdictOut>,
    ) -> Result<(&Event, &mut VerdictDraft), StaleView> {
        match (&self.current, &mut self.draft) {
            (Some(data), Some(draft)) if handle.rep() == self.rep => Ok((&data.event, draft)),
            _ => Err(StaleView),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> ViewData {
        let event = crate::event::json::EventDoc {
            network: "xmpp".into(),
            session_start: Some(Default::default()),
            ..Default::default()
        }
        .into_event("e", 0)
        .unwrap();
        ViewData {
            event: Arc::new(event),
            verdict: None,
        }
    }

    #[test]
    fn a_handle_is_only_valid_for_its_own_call() {
        let mut slot = EventSlot::default();
        let first = slot.open(data());
        let out = slot.open_out();
        assert!(slot.get(&first).is_ok());
        assert!(slot.draft(&out).is_ok());
        assert!(slot.close().is_some());
        assert!(slot.get(&first).is_err());
        assert!(slot.draft(&out).is_err());
        let second = slot.open(data());
        assert!(slot.get(&first).is_err());
        assert!(slot.get(&second).is_ok());
        assert!(slot.draft(&out).is_err(), "no verdict-out in this call");
    }

    #[test]
    fn the_last_stop_wins_and_a_stop_beats_a_rewrite() {
        let draft = VerdictDraft {
            stop: Some(Action::Hold("review".into())),
            rewrite: Some("x".into()),
            ..Default::default()
        };
        assert_eq!(
            draft.finish().unwrap().action,
            Action::Hold("review".into())
        );
        let draft = VerdictDraft {
            rewrite: Some("x".into()),
            ..Default::default()
        };
        assert_eq!(draft.finish().unwrap().action, Action::Rewrite("x".into()));
        assert_eq!(
            VerdictDraft::default().finish().unwrap().action,
            Action::Allow
        );
        let refused = VerdictDraft {
            refused: Some("encrypted".into()),
            ..Default::default()
        };
        assert_eq!(refused.finish().unwrap_err(), "encrypted");
    }
}
