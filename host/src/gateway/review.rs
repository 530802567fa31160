//! The review desk: messages a plugin held are recorded in the archive as
//! held, and a reviewer's ruling (from the admin API, or `imgate archive
//! release|reject` through it) is carried to the session that holds the
//! message and then recorded in the chain with what came of it.
//!
//! ```text
//! adapter ─▶ HoldingJudge ─▶ live chain ─▶ hold? ─▶ archive (held) ─▶ the session keeps it
//! reviewer ─▶ admin API ─▶ ReviewDesk::rule ─▶ the session delivers or tells the sender ─▶ archive (review)
//! ```
//!
//! Holding needs the archive: without `[archive]`, or when the record
//! cannot be written, a held message is blocked instead (its sender is
//! told), never silently kept where no one can find it.

use std::sync::{Arc, Mutex};

use crate::adapters::review::{Reviews, Ruling};
use crate::archive::{ArchiveError, ArchiveRecord, Decision, HOST, HeldMessage, Review, Store};
use crate::event::json::{EventDoc, FinalVerdictDoc};
use crate::event::{Action, Event, FinalVerdict, Judge, Scope, now_ms};
use crate::plugins::{Decision as ChainDecision, LiveChain};

/// Why a ruling could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("there is no archive ([archive] in the config), so nothing is held")]
    NoArchive,
    #[error("{0}")]
    Archive(#[from] ArchiveError),
    #[error("the archive task failed: {0}")]
    Task(String),
}

/// Where held messages are recorded and decided.
pub struct ReviewDesk {
    store: Option<Mutex<Store>>,
    reviews: Arc<Reviews>,
    /// One ruling at a time: two reviewers deciding the same message
    /// cannot both act on it.
    ruling: tokio::sync::Mutex<()>,
}

impl ReviewDesk {
    /// `store` is the archive, when the config has one.
    pub fn new(store: Option<Store>, reviews: Arc<Reviews>) -> Self {
        ReviewDesk {
            store: store.map(Mutex::new),
            reviews,
            ruling: tokio::sync::Mutex::new(()),
        }
    }

    pub fn reviews(&self) -> &Arc<Reviews> {
        &self.reviews
    }

    fn with_store<R>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<R, ArchiveError>,
    ) -> Result<R, ReviewError> {
        let store = self.store.as_ref().ok_or(ReviewError::NoArchive)?;
        let mut store = store.lock().unwrap_or_else(|p| p.into_inner());
        Ok(f(&mut store)?)
    }

    /// Records a held event in the archive. Blocks until durable.
    ///
    /// # Errors
    /// No archive, or the record could not be written.
    pub fn hold(&self, decision: &ChainDecision) -> Result<u64, ReviewError> {
        let Action::Hold(reason) = &decision.verdict.action else {
            return Ok(0);
        };
        let record = ArchiveRecord {
            seq: 0,
            plugin: HOST.into(),
            appended_ms: now_ms(),
            event: EventDoc::from(&*decision.event),
            verdict: Some(FinalVerdictDoc::from(&decision.verdict)),
            annotations: Vec::new(),
        };
        let held_by = decision
            .verdict
            .decided_by
            .as_ref()
            .map(|d| d.plugin.as_str());
        self.with_store(|s| s.hold_message(record, reason, held_by))
    }

    /// [`Self::with_store`] on a blocking thread, for the async callers.
    async fn off_worker<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Store) -> Result<R, ArchiveError> + Send + 'static,
    ) -> Result<R, ReviewError> {
        let desk = self.clone();
        tokio::task::spawn_blocking(move || desk.with_store(f))
            .await
            .map_err(|e| ReviewError::Task(e.to_string()))?
    }

    /// Messages awaiting review, or all that were ever held.
    ///
    /// # Errors
    /// No archive, or it cannot be read.
    pub async fn held(self: &Arc<Self>, all: bool) -> Result<Vec<HeldMessage>, ReviewError> {
        self.off_worker(move |s| s.held_messages(all)).await
    }

    /// Carries `decision` on `event_id` to the session holding it, and
    /// records the ruling and what came of it in the chain.
    ///
    /// # Errors
    /// No archive, no such held message, already decided, or the archive
    /// failed. A release that could not deliver is not an error: it is
    /// recorded as `failed`, with why.
    pub async fn rule(
        self: &Arc<Self>,
        event_id: &str,
        decision: Decision,
        reviewer: &str,
        note: &str,
    ) -> Result<HeldMessage, ReviewError> {
        let _one_at_a_time = self.ruling.lock().await;
        let id = event_id.to_owned();
        let held = self
            .off_worker(move |s| s.held_message(&id))
            .await?
            .ok_or_else(|| ArchiveError::NotHeld(event_id.to_owned()))?;
        if held.status != "held" {
            return Err(ArchiveError::AlreadyDecided {
                event_id: event_id.to_owned(),
                status: held.status,
            }
            .into());
        }
        let ruling = match decision {
            Decision::Release => Ruling::Release,
            Decision::Reject => Ruling::Reject(if note.is_empty() {
                "not approved".to_owned()
            } else {
                note.to_owned()
            }),
        };
        let outcome = self.reviews.rule(&held.session, event_id, ruling).await;
        tracing::info!(event = %event_id, decision = decision.name(), %reviewer, ?outcome, "held message ruled on");
        let (id, reviewer, note) = (event_id.to_owned(), reviewer.to_owned(), note.to_owned());
        self.off_worker(move |s| {
            let review = Review {
                decision,
                reviewer: &reviewer,
                note: &note,
                outcome,
            };
            s.review(&id, &review, now_ms())
        })
        .await
    }
}

/// The judge the adapters ask: the live chain, with held messages
/// recorded at the review desk before the adapter keeps them.
pub struct HoldingJudge {
    pub live: Arc<LiveChain>,
    pub desk: Arc<ReviewDesk>,
    /// Where sent messages go; set once the relays are up.
    pub bridge: Arc<std::sync::OnceLock<super::bridge::service::Bridge>>,
}

impl Judge for HoldingJudge {
    fn judge_in(&self, event: Event, scope: Scope) -> FinalVerdict {
        let mut decision = self.live.decide(event, scope);
        if !decision.sent.is_empty() {
            match self.bridge.get() {
                Some(bridge) => {
                    bridge.dispatch(decision.event.clone(), std::mem::take(&mut decision.sent))
                }
                None => {
                    tracing::warn!(event = %decision.event.id, "a plugin sent a message but the gateway has no [bridge]")
                }
            }
        }
        let mut verdict = decision.verdict.clone();
        if matches!(verdict.action, Action::Hold(_)) {
            let held = crate::util::blocking::wait_off_worker(|| self.desk.hold(&decision));
            if let Err(e) = held {
                tracing::error!(event = %decision.event.id, error = %e, "a held message could not be recorded; blocking it");
                verdict.action =
                    Action::Block("message could not be held for review; it was not sent".into());
            }
        }
        verdict
    }

    fn allows_everything(&self) -> bool {
        self.live.allows_everything()
    }

    fn judges_each_recipient(&self) -> bool {
        self.live.judges_each_recipient()
    }
}
