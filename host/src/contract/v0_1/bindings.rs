//! Host-side bindings for the released `imgate:policy@0.1.0`.

wasmtime::component::bindgen!({
    path: "../wit/released/0.1.0",
    world: "host-view",
    imports: { default: trappable },
    additional_derives: [PartialEq, Eq],
    with: { "imgate:policy/types.event-view": crate::contract::view::EventView },
});

pub use self::imgate::policy::{archive, clock, config, kv, log, metrics, types};
pub use exports::imgate::policy::{handler, lifecycle, observer};
