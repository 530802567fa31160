//! The one thing an adapter needs from the policy: an event in, a verdict
//! out. The gateway wires it to the chain in force; adapter tests wire it
//! to a fake, with no WebAssembly at all.

use super::{Event, FinalVerdict};

pub trait Judge: Send + Sync {
    /// Decides `event`. May block for as long as the slowest plugin's
    /// deadline, so async callers run it off the worker
    /// (`util::blocking::wait_off_worker`).
    fn judge(&self, event: Event) -> FinalVerdict;

    /// True when judging would allow everything without looking (no
    /// plugins), so the caller need not build the event at all.
    fn allows_everything(&self) -> bool {
        false
    }
}
