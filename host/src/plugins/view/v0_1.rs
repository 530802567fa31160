//! Contract 0.1's `event-view`: the same slot, read through 0.1's records;
//! what both versions type alike is 0.2's answer.

use wasmtime::component::Resource;

use crate::contract::types::HostEventView as V0_2;
use crate::contract::v0_1::types::{self as wit, HostEventView};
use crate::contract::view::EventView;
use crate::event::EventKind;
use crate::plugins::instance::HostState;

impl wit::Host for HostState {}

impl HostEventView for HostState {
    fn id(&mut self, h: Resource<EventView>) -> wasmtime::Result<String> {
        V0_2::id(self, h)
    }

    fn network(&mut self, h: Resource<EventView>) -> wasmtime::Result<String> {
        V0_2::network(self, h)
    }

    fn direction(&mut self, h: Resource<EventView>) -> wasmtime::Result<wit::Direction> {
        Ok(self.event(&h)?.direction.into())
    }

    fn session(&mut self, h: Resource<EventView>) -> wasmtime::Result<wit::Session> {
        Ok((&*self.event(&h)?.session).into())
    }

    fn timestamp(&mut self, h: Resource<EventView>) -> wasmtime::Result<u64> {
        V0_2::timestamp(self, h)
    }

    fn kind(&mut self, h: Resource<EventView>) -> wasmtime::Result<wit::Kind> {
        Ok(self.event(&h)?.kind.kind().into())
    }

    fn body(&mut self, h: Resource<EventView>) -> wasmtime::Result<Option<String>> {
        V0_2::body(self, h)
    }

    fn message(&mut self, h: Resource<EventView>) -> wasmtime::Result<Option<wit::Message>> {
        Ok(self.event(&h)?.message().map(Into::into))
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
        V0_2::end_reason(self, h)
    }

    fn tags(&mut self, h: Resource<EventView>) -> wasmtime::Result<Vec<String>> {
        V0_2::tags(self, h)
    }

    fn has_tag(&mut self, h: Resource<EventView>, tag: String) -> wasmtime::Result<bool> {
        V0_2::has_tag(self, h, tag)
    }

    fn attribute(
        &mut self,
        h: Resource<EventView>,
        key: String,
    ) -> wasmtime::Result<Option<String>> {
        V0_2::attribute(self, h, key)
    }

    fn attributes(&mut self, h: Resource<EventView>) -> wasmtime::Result<Vec<(String, String)>> {
        V0_2::attributes(self, h)
    }

    fn snapshot(&mut self, h: Resource<EventView>) -> wasmtime::Result<wit::Event> {
        Ok(self.event(&h)?.into())
    }

    fn drop(&mut self, _h: Resource<EventView>) -> wasmtime::Result<()> {
        // Views are only ever lent to plugins; the host owns the event.
        Ok(())
    }
}
