//! Contract 0.1's `event-view`: the same slot, read through 0.1's records.

use wasmtime::component::Resource;

use crate::contract::v0_1::types::{self as wit, HostEventView};
use crate::contract::view::EventView;
use crate::event::{EventKind, Message};
use crate::plugins::instance::HostState;

impl wit::Host for HostState {}

impl HostState {
    fn message_of(&self, handle: &Resource<EventView>) -> wasmtime::Result<Option<&Message>> {
        Ok(match &self.event(handle)?.kind {
            EventKind::Message(m) => Some(m),
            _ => None,
        })
    }
}

impl HostEventView for HostState {
    fn id(&mut self, h: Resource<EventView>) -> wasmtime::Result<String> {
        Ok(self.event(&h)?.id.clone())
    }

    fn network(&mut self, h: Resource<EventView>) -> wasmtime::Result<String> {
        Ok(self.event(&h)?.network.clone())
    }

    fn direction(&mut self, h: Resource<EventView>) -> wasmtime::Result<wit::Direction> {
        Ok(self.event(&h)?.direction.into())
    }

    fn session(&mut self, h: Resource<EventView>) -> wasmtime::Result<wit::Session> {
        Ok((&self.event(&h)?.session).into())
    }

    fn timestamp(&mut self, h: Resource<EventView>) -> wasmtime::Result<u64> {
        Ok(self.event(&h)?.timestamp)
    }

    fn kind(&mut self, h: Resource<EventView>) -> wasmtime::Result<wit::Kind> {
        Ok(self.event(&h)?.kind.kind().into())
    }

    fn body(&mut self, h: Resource<EventView>) -> wasmtime::Result<Option<String>> {
        Ok(self.event(&h)?.body().map(str::to_owned))
    }

    fn message(&mut self, h: Resource<EventView>) -> wasmtime::Result<Option<wit::Message>> {
        Ok(self.message_of(&h)?.map(Into::into))
    }

    fn presence(&mut self, h: Resource<EventView>) -> wasmtime::Result<Option<wit::Presence>> {
        Ok(match &self.event(&h)?.kind {
            EventKind::Presence(p) => Some(p.into()),
            _ => None,
        })
    }

    fn file_offer(&mut self, h: Resource<EventView>) -> wasmtime::Result<Option<wit::FileOffer>> {
        Ok(match &self.event(&h)?.kind {
            EventKind::FileOffer(f) => Some(f.into()),
            _ => None,
        })
    }

    fn room_change(&mut self, h: Resource<EventView>) -> wasmtime::Result<Option<wit::RoomChange>> {
        Ok(match &self.event(&h)?.kind {
            EventKind::RoomJoin(r) | EventKind::RoomLeave(r) => Some(r.into()),
            _ => None,
        })
    }

    fn end_reason(&mut self, h: Resource<EventView>) -> wasmtime::Result<Option<String>> {
        Ok(match &self.event(&h)?.kind {
            EventKind::SessionEnd(reason) => Some(reason.clone()),
            _ => None,
        })
    }

    fn tags(&mut self, h: Resource<EventView>) -> wasmtime::Result<Vec<String>> {
        Ok(self.event(&h)?.tags.clone())
    }

    fn has_tag(&mut self, h: Resource<EventView>, tag: String) -> wasmtime::Result<bool> {
        Ok(self.event(&h)?.tags.contains(&tag))
    }

    fn attribute(
        &mut self,
        h: Resource<EventView>,
        key: String,
    ) -> wasmtime::Result<Option<String>> {
        Ok(self
            .event(&h)?
            .attributes
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone()))
    }

    fn attributes(&mut self, h: Resource<EventView>) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(self.event(&h)?.attributes.clone())
    }

    fn snapshot(&mut self, h: Resource<EventView>) -> wasmtime::Result<wit::Event> {
        Ok(self.event(&h)?.into())
    }

    fn drop(&mut self, _h: Resource<EventView>) -> wasmtime::Result<()> {
        // Views are only ever lent to plugins; the host owns the event.
        Ok(())
    }
}
