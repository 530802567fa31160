//! The methods of the resources a plugin is lent (the slot behind them is
//! `contract::view`): `event-view`, read field by field, each converted to
//! the contract's type only when asked for; `verdict-out`, where a policy
//! plugin writes its verdict; `outcome-view`, the final outcome an
//! observer reads. `v0_1` is the same slot read through 0.1's records.

mod v0_1;

use wasmtime::component::Resource;

use super::instance::HostState;
use super::verdict::{HOST_ATTRIBUTE_PREFIX, HOST_TAG_PREFIX};
use crate::contract::convert::membership;
use crate::contract::types::{self as wit, HostEventView, HostOutcomeView, HostVerdictOut};
use crate::contract::view::{EventView, OutcomeView, VerdictOut};
use crate::event::json::EventDoc;
use crate::event::{Action, Event, EventKind, FinalVerdict};

impl HostState {
    pub(super) fn event<T: 'static>(&self, handle: &Resource<T>) -> wasmtime::Result<&Event> {
        Ok(&self.view.get(handle)?.event)
    }

    fn outcome_of(&self, handle: &Resource<OutcomeView>) -> wasmtime::Result<&FinalVerdict> {
        self.view
            .get(handle)?
            .verdict
            .as_deref()
            .ok_or_else(|| wasmtime::format_err!("outcome-view outside observe"))
    }
}

impl wit::Host for HostState {}

impl HostEventView for HostState {
    fn id(&mut self, h: Resource<EventView>) -> wasmtime::Result<String> {
        Ok(self.event(&h)?.id.clone())
    }

    fn network(&mut self, h: Resource<EventView>) -> wasmtime::Result<String> {
        Ok(self.event(&h)?.network.to_string())
    }

    fn direction(&mut self, h: Resource<EventView>) -> wasmtime::Result<wit::Direction> {
        Ok(self.event(&h)?.direction.into())
    }

    fn session(&mut self, h: Resource<EventView>) -> wasmtime::Result<wit::Session> {
        Ok((&*self.event(&h)?.session).into())
    }

    fn timestamp(&mut self, h: Resource<EventView>) -> wasmtime::Result<u64> {
        Ok(self.event(&h)?.timestamp)
    }

    fn kind(&mut self, h: Resource<EventView>) -> wasmtime::Result<String> {
        Ok(self.event(&h)?.kind.kind().contract_name().to_owned())
    }

    fn sender(&mut self, h: Resource<EventView>) -> wasmtime::Result<String> {
        Ok(self.event(&h)?.sender().to_owned())
    }

    fn recipient(&mut self, h: Resource<EventView>) -> wasmtime::Result<Option<String>> {
        Ok(self.event(&h)?.recipient().map(str::to_owned))
    }

    fn room(&mut self, h: Resource<EventView>) -> wasmtime::Result<Option<String>> {
        Ok(self.event(&h)?.room().map(str::to_owned))
    }

    fn body(&mut self, h: Resource<EventView>) -> wasmtime::Result<Option<String>> {
        Ok(self.event(&h)?.body().map(str::to_owned))
    }

    fn markup(&mut self, h: Resource<EventView>) -> wasmtime::Result<Option<String>> {
        Ok(self.event(&h)?.message().and_then(|m| m.markup.clone()))
    }

    fn markup_format(&mut self, h: Resource<EventView>) -> wasmtime::Result<Option<String>> {
        Ok(self.event(&h)?.markup_format().map(str::to_owned))
    }

    fn texts(&mut self, h: Resource<EventView>) -> wasmtime::Result<Vec<wit::Text>> {
        Ok(self
            .event(&h)?
            .texts()
            .into_iter()
            .map(Into::into)
            .collect())
    }

    fn attachments(&mut self, h: Resource<EventView>) -> wasmtime::Result<Vec<wit::Attachment>> {
        Ok(self
            .event(&h)?
            .message()
            .map_or_else(Vec::new, |m| m.attachments.iter().map(Into::into).collect()))
    }

    fn encrypted(&mut self, h: Resource<EventView>) -> wasmtime::Result<bool> {
        Ok(self.event(&h)?.message().is_some_and(|m| m.encrypted))
    }

    fn emote(&mut self, h: Resource<EventView>) -> wasmtime::Result<bool> {
        Ok(self.event(&h)?.message().is_some_and(|m| m.action))
    }

    fn ids(&mut self, h: Resource<EventView>) -> wasmtime::Result<Vec<wit::NetworkId>> {
        Ok(self.event(&h)?.ids.iter().map(Into::into).collect())
    }

    fn relations(&mut self, h: Resource<EventView>) -> wasmtime::Result<Vec<wit::Relation>> {
        Ok(self
            .event(&h)?
            .relations()
            .into_iter()
            .map(Into::into)
            .collect())
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

    fn membership(&mut self, h: Resource<EventView>) -> wasmtime::Result<Option<wit::Membership>> {
        Ok(match &self.event(&h)?.kind {
            EventKind::RoomJoin(r) => Some(membership("join", r)),
            EventKind::RoomLeave(r) => Some(membership("leave", r)),
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

    fn to_json(&mut self, h: Resource<EventView>) -> wasmtime::Result<String> {
        Ok(serde_json::to_string(&EventDoc::from(self.event(&h)?))?)
    }

    fn drop(&mut self, _h: Resource<EventView>) -> wasmtime::Result<()> {
        // Views are only ever lent to plugins; the host owns the event.
        Ok(())
    }
}

/// Tags or attributes one verdict may hold before the host stops keeping
/// them (the configured limits, far lower, are checked after the call):
/// a plugin calling `tag` in a loop costs linear time, not quadratic.
const MAX_DRAFT_ITEMS: usize = 256;

fn too_many() -> String {
    format!("more than {MAX_DRAFT_ITEMS} tags or attributes")
}

impl HostVerdictOut for HostState {
    fn block(&mut self, h: Resource<VerdictOut>, reason: String) -> wasmtime::Result<()> {
        self.view.draft(&h)?.1.stop = Some(Action::Block(reason));
        Ok(())
    }

    fn discard(&mut self, h: Resource<VerdictOut>) -> wasmtime::Result<()> {
        self.view.draft(&h)?.1.stop = Some(Action::Drop);
        Ok(())
    }

    fn hold(&mut self, h: Resource<VerdictOut>, reason: String) -> wasmtime::Result<()> {
        self.view.draft(&h)?.1.stop = Some(Action::Hold(reason));
        Ok(())
    }

    fn rewrite_body(
        &mut self,
        h: Resource<VerdictOut>,
        text: String,
    ) -> wasmtime::Result<Result<(), String>> {
        let (event, draft) = self.view.draft(&h)?;
        let refusal = match event.message() {
            Some(m) if m.encrypted => Some(
                "cannot rewrite end-to-end encrypted content: the gateway forwards the ciphertext",
            ),
            _ if event.body().is_none() => Some("this event has no text to rewrite"),
            _ => None,
        };
        if let Some(why) = refusal {
            let why = format!("{why} ({} event)", event.kind.kind().contract_name());
            draft.refused.get_or_insert_with(|| why.clone());
            return Ok(Err(why));
        }
        draft.rewrite = Some(text);
        Ok(Ok(()))
    }

    fn remove_attachment(
        &mut self,
        h: Resource<VerdictOut>,
        url: String,
    ) -> wasmtime::Result<Result<(), String>> {
        let (event, draft) = self.view.draft(&h)?;
        let refusal = match event.message() {
            Some(m) if m.encrypted => Some("cannot change end-to-end encrypted content".to_owned()),
            Some(m) if m.attachments.iter().any(|a| a.url == url) => None,
            Some(_) => Some(format!("the message has no attachment {url:?}")),
            None => Some(format!(
                "a {} event has no attachments",
                event.kind.kind().contract_name()
            )),
        };
        if let Some(why) = refusal {
            draft.refused.get_or_insert_with(|| why.clone());
            return Ok(Err(why));
        }
        if !draft.remove_attachments.contains(&url) {
            draft.remove_attachments.push(url);
        }
        Ok(Ok(()))
    }

    fn tag(&mut self, h: Resource<VerdictOut>, tag: String) -> wasmtime::Result<()> {
        let draft = self.view.draft(&h)?.1;
        if draft.tags.len() >= MAX_DRAFT_ITEMS {
            draft.refused.get_or_insert_with(too_many);
        } else if !draft.tags.contains(&tag) {
            draft.tags.push(tag);
        }
        Ok(())
    }

    fn set_attribute(
        &mut self,
        h: Resource<VerdictOut>,
        key: String,
        value: String,
    ) -> wasmtime::Result<()> {
        let draft = self.view.draft(&h)?.1;
        if key.starts_with(HOST_ATTRIBUTE_PREFIX) || key.starts_with(HOST_TAG_PREFIX) {
            draft
                .refused
                .get_or_insert_with(|| format!("attribute `{key}` is in the host's namespace"));
        }
        let full = draft.attributes.len() >= MAX_DRAFT_ITEMS;
        match draft.attributes.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = value,
            None if full => {
                draft.refused.get_or_insert_with(too_many);
            }
            None => draft.attributes.push((key, value)),
        }
        Ok(())
    }

    fn drop(&mut self, _h: Resource<VerdictOut>) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl HostOutcomeView for HostState {
    fn action(&mut self, h: Resource<OutcomeView>) -> wasmtime::Result<String> {
        Ok(self.outcome_of(&h)?.action.kind().to_owned())
    }

    fn reason(&mut self, h: Resource<OutcomeView>) -> wasmtime::Result<Option<String>> {
        Ok(self.outcome_of(&h)?.action.reason().map(str::to_owned))
    }

    fn delivered_body(&mut self, h: Resource<OutcomeView>) -> wasmtime::Result<Option<String>> {
        let outcome = self.outcome_of(&h)?;
        Ok(match &outcome.action {
            Action::Rewrite(body) => Some(body.clone()),
            Action::Allow => self.event(&h)?.body().map(str::to_owned),
            _ => None,
        })
    }

    fn decided_by(&mut self, h: Resource<OutcomeView>) -> wasmtime::Result<Option<wit::Decider>> {
        Ok(self.outcome_of(&h)?.decided_by.as_ref().map(Into::into))
    }

    fn tags(&mut self, h: Resource<OutcomeView>) -> wasmtime::Result<Vec<String>> {
        Ok(self.outcome_of(&h)?.tags.clone())
    }

    fn drop(&mut self, _h: Resource<OutcomeView>) -> wasmtime::Result<()> {
        Ok(())
    }
}
