//! `bridge`: a plugin sends a message into another network or room.
//!
//! The plugin builds an `outgoing` (a [`Draft`] in the instance's resource
//! table) and sends it; `send` only records it, with the event being
//! handled as its origin. The chain collects what each call sent
//! (`take_sent`) and hands it on with its decision; the gateway judges each
//! copy on its own network and delivers it through a relay. Nothing is
//! written to a network from inside a plugin call.
//!
//! `status` asks the [`Ledger`] the gateway keeps (memory, then the
//! archive's id map, so it lasts across restarts).

use std::sync::{Arc, RwLock};

use wasmtime::component::{Resource, ResourceTable};

use super::{Capability, NotGranted};
use crate::contract::bridge::{Delivery as WitDelivery, Host, HostOutgoing};
use crate::contract::view::EventSlot;
use crate::event::bridge::{Delivery, Draft, Outgoing, Relates, ticket_for};

/// Most messages one call may send: a bridge sends one per linked room.
pub const MAX_SENT_PER_CALL: usize = 64;
/// Longest body or markup a plugin may send, in bytes.
pub const MAX_TEXT: usize = 64 * 1024;
/// Longest network, destination, author or relation, in bytes.
pub const MAX_NAME: usize = 1024;

/// Where tickets are followed: the gateway's record of deliveries.
pub trait Ledger: Send + Sync {
    fn status(&self, ticket: &str) -> Delivery;
}

/// The shared half: which networks can be sent to, and the ledger.
#[derive(Default)]
pub struct Bridges {
    inner: RwLock<BridgesInner>,
}

#[derive(Default)]
struct BridgesInner {
    /// Networks with a relay identity; `None`: any (offline, where copies
    /// are judged but go nowhere).
    networks: Option<Vec<String>>,
    ledger: Option<Arc<dyn Ledger>>,
}

impl Bridges {
    /// Called by the gateway once its relays are configured.
    pub fn connect(&self, networks: Vec<String>, ledger: Arc<dyn Ledger>) {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        inner.networks = Some(networks);
        inner.ledger = Some(ledger);
    }

    /// For `imgate replay`: any network, and a ledger of its own.
    pub fn offline(&self, ledger: Arc<dyn Ledger>) {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        inner.networks = None;
        inner.ledger = Some(ledger);
    }

    fn reaches(&self, network: &str) -> Result<(), String> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        match &inner.networks {
            None => Ok(()),
            Some(known) if known.iter().any(|n| n == network) => Ok(()),
            Some(known) if known.is_empty() => Err(format!(
                "no relay for `{network}`: the gateway has no [bridge] relays configured"
            )),
            Some(known) => Err(format!(
                "no relay for `{network}` (relays: {})",
                known.join(", ")
            )),
        }
    }

    fn status(&self, ticket: &str) -> Delivery {
        let ledger = self
            .inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .ledger
            .clone();
        ledger.map_or(Delivery::Unknown, |l| l.status(ticket))
    }
}

/// The per-instance half: what the call in progress has sent.
pub struct BridgeInstance {
    plugin: Arc<str>,
    bridges: Option<Arc<Bridges>>,
    sent: Vec<Outgoing>,
}

impl BridgeInstance {
    pub fn new(plugin: Arc<str>, bridges: Option<Arc<Bridges>>) -> Self {
        BridgeInstance {
            plugin,
            bridges,
            sent: Vec::new(),
        }
    }

    /// What the last call sent; empty for a plugin not granted `bridge`.
    pub fn take_sent(&mut self) -> Vec<Outgoing> {
        std::mem::take(&mut self.sent)
    }

    fn bridges(&self) -> wasmtime::Result<&Arc<Bridges>> {
        NotGranted::require(self.bridges.as_ref(), &self.plugin, Capability::Bridge)
    }
}

/// What the bridge's host calls can reach: the instance's half, its
/// resource table (where drafts live) and the event in progress.
pub struct BridgeCtx<'a> {
    pub bridge: &'a mut BridgeInstance,
    pub table: &'a mut ResourceTable,
    pub view: &'a EventSlot,
}

/// Projection type for the linker: `HostState` → [`BridgeCtx`].
pub struct BridgeData;

impl wasmtime::component::HasData for BridgeData {
    type Data<'a> = BridgeCtx<'a>;
}

/// Why a draft cannot be sent as it is, if it cannot.
fn unfit(draft: &Draft) -> Option<String> {
    let short = [
        ("network", Some(&draft.network)),
        ("to", Some(&draft.to)),
        ("author", draft.author.as_ref()),
        (
            "relation type",
            draft.relation.as_ref().map(|r| &r.rel_type),
        ),
        (
            "relation target",
            draft.relation.as_ref().map(|r| &r.target),
        ),
        ("markup format", draft.markup.as_ref().map(|m| &m.0)),
    ];
    let long = [
        ("body", draft.body.as_ref()),
        ("markup", draft.markup.as_ref().map(|m| &m.1)),
    ];
    for (what, text, most) in short
        .into_iter()
        .map(|(w, t)| (w, t, MAX_NAME))
        .chain(long.into_iter().map(|(w, t)| (w, t, MAX_TEXT)))
    {
        if text.is_some_and(|t| t.len() > most) {
            return Some(format!("{what} is longer than {most} bytes"));
        }
    }
    if draft.network.is_empty() || draft.to.is_empty() {
        return Some("no network or no destination".into());
    }
    None
}

impl BridgeCtx<'_> {
    fn draft(&mut self, h: &Resource<Draft>) -> wasmtime::Result<&mut Draft> {
        Ok(self.table.get_mut(h)?)
    }

    /// `send`, as a plain result: the origin is the event in progress.
    fn send(&mut self, h: &Resource<Draft>) -> wasmtime::Result<Result<String, String>> {
        let bridges = self.bridge.bridges()?.clone();
        let plugin = self.bridge.plugin.to_string();
        let Some(origin) = self.view.current_event().cloned() else {
            return Ok(Err(
                "send only while handling or observing an event: it is the origin".into(),
            ));
        };
        let at_most = self.bridge.sent.len() >= MAX_SENT_PER_CALL;
        let draft = self.draft(h)?;
        if let Some(ticket) = &draft.sent {
            return Ok(Err(format!("already sent (ticket {ticket})")));
        }
        let Some(body) = draft.body.clone() else {
            return Ok(Err("no body: call `body` first".into()));
        };
        if let Some(why) = unfit(draft) {
            return Ok(Err(why));
        }
        if let Err(e) = bridges.reaches(&draft.network) {
            return Ok(Err(e));
        }
        if at_most {
            return Ok(Err(format!(
                "more than {MAX_SENT_PER_CALL} messages sent for one event"
            )));
        }
        let ticket = ticket_for(&origin.id, origin.timestamp, &draft.network, &draft.to);
        draft.sent = Some(ticket.clone());
        let outgoing = Outgoing {
            ticket: ticket.clone(),
            origin: origin.id.clone(),
            plugin,
            network: draft.network.clone(),
            to: draft.to.clone(),
            body,
            markup: draft.markup.clone(),
            relation: draft.relation.clone(),
            author: draft.author.clone(),
            emote: draft.emote,
        };
        // The same message to the same place, from this call: one copy.
        if !self.bridge.sent.iter().any(|s| s.ticket == ticket) {
            self.bridge.sent.push(outgoing);
        }
        Ok(Ok(ticket))
    }
}

impl HostOutgoing for BridgeCtx<'_> {
    fn new(&mut self, network: String, to: String) -> wasmtime::Result<Resource<Draft>> {
        self.bridge.bridges()?;
        Ok(self.table.push(Draft {
            network,
            to,
            ..Draft::default()
        })?)
    }

    fn body(&mut self, h: Resource<Draft>, text: String) -> wasmtime::Result<()> {
        self.draft(&h)?.body = Some(text);
        Ok(())
    }

    fn markup(&mut self, h: Resource<Draft>, format: String, text: String) -> wasmtime::Result<()> {
        self.draft(&h)?.markup = Some((format, text));
        Ok(())
    }

    fn relates_to(
        &mut self,
        h: Resource<Draft>,
        rel_type: String,
        target: String,
        key: Option<String>,
    ) -> wasmtime::Result<()> {
        self.draft(&h)?.relation = Some(Relates {
            rel_type,
            target,
            key,
        });
        Ok(())
    }

    fn author(&mut self, h: Resource<Draft>, display_name: String) -> wasmtime::Result<()> {
        self.draft(&h)?.author = Some(display_name);
        Ok(())
    }

    fn emote(&mut self, h: Resource<Draft>) -> wasmtime::Result<()> {
        self.draft(&h)?.emote = true;
        Ok(())
    }

    fn send(&mut self, h: Resource<Draft>) -> wasmtime::Result<Result<String, String>> {
        BridgeCtx::send(self, &h)
    }

    fn drop(&mut self, h: Resource<Draft>) -> wasmtime::Result<()> {
        self.table.delete(h)?;
        Ok(())
    }
}

impl Host for BridgeCtx<'_> {
    fn status(&mut self, ticket: String) -> wasmtime::Result<WitDelivery> {
        let bridges = self.bridge.bridges()?;
        Ok(match bridges.status(&ticket) {
            Delivery::Pending => WitDelivery::Pending,
            Delivery::Delivered(ids) => {
                WitDelivery::Delivered(ids.iter().map(Into::into).collect())
            }
            Delivery::Refused(r) => WitDelivery::Refused(r),
            Delivery::Failed(r) => WitDelivery::Failed(r),
            Delivery::Unknown => WitDelivery::Unknown,
        })
    }
}
