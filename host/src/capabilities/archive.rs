//! `archive`: append a record of an event and its final verdict. `append`
//! returns only once the record is durable (the group-commit writer is
//! `archive::ArchiveWriter`).
//!
//! The wait for durability must not stall a tokio worker: the host call
//! waits through `util::blocking::wait_off_worker`, and the time spent
//! waiting is not charged to the plugin's CPU deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Capability, NotGranted};
use crate::archive::{ArchiveRecord, ArchiveWriter};
use crate::contract::archive::Host;
use crate::contract::view::{EventSlot, EventView};
use crate::event::json::{EventDoc, FinalVerdictDoc};
use crate::event::now_ms;

pub struct ArchiveInstance {
    plugin: Arc<str>,
    writer: Option<Arc<ArchiveWriter>>,
    /// Time this instance spent waiting for durability in the current call;
    /// the deadline check subtracts it.
    pub waited: Duration,
}

impl ArchiveInstance {
    pub fn new(plugin: Arc<str>, writer: Option<Arc<ArchiveWriter>>) -> Self {
        ArchiveInstance {
            plugin,
            writer,
            waited: Duration::ZERO,
        }
    }
}

/// What an `append` call can reach: this instance's archive handle and
/// the event the plugin is looking at.
pub struct ArchiveCtx<'a> {
    pub archive: &'a mut ArchiveInstance,
    pub view: &'a EventSlot,
}

/// Projection type for the linker: `HostState` → [`ArchiveCtx`].
pub struct ArchiveData;

impl wasmtime::component::HasData for ArchiveData {
    type Data<'a> = ArchiveCtx<'a>;
}

impl Host for ArchiveCtx<'_> {
    fn append(
        &mut self,
        event: wasmtime::component::Resource<EventView>,
        annotations: Vec<(String, String)>,
    ) -> wasmtime::Result<Result<u64, String>> {
        let archive = &mut *self.archive;
        let writer = NotGranted::require(
            archive.writer.as_ref(),
            &archive.plugin,
            Capability::Archive,
        )?
        .clone();
        let view = self.view.get(&event)?;
        let record = ArchiveRecord {
            seq: 0,
            plugin: archive.plugin.to_string(),
            appended_ms: now_ms(),
            event: EventDoc::from(&*view.event),
            verdict: view.verdict.as_deref().map(FinalVerdictDoc::from),
            annotations,
        };
        let started = Instant::now();
        let result = crate::util::blocking::wait_off_worker(|| writer.append(record))
            .map_err(|e| e.to_string());
        archive.waited += started.elapsed();
        Ok(result)
    }
}
