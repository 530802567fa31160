//! The one thing an adapter needs from the policy: an event in, a verdict
//! out. The gateway wires it to the chain in force; adapter tests wire it
//! to a fake, with no WebAssembly at all.

use super::{Event, FinalVerdict};

/// Which plugins judge an event. A message that reaches several local
/// members is judged once for all of them, and again for each one only by
/// the plugins that asked to see each recipient (`each-recipient` in
/// their `interest`: an ethical wall between the sender and one member).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every plugin: an event met once.
    All,
    /// All but the each-recipient plugins: the judgment every copy shares.
    Shared,
    /// Only the each-recipient plugins: one recipient's copy.
    Recipient,
}

pub trait Judge: Send + Sync {
    /// Decides `event` with the plugins of `scope`. May block for as long
    /// as the slowest plugin's deadline, so async callers run it off the
    /// worker (`util::blocking::wait_off_worker`).
    fn judge_in(&self, event: Event, scope: Scope) -> FinalVerdict;

    /// Decides `event` with every plugin.
    fn judge(&self, event: Event) -> FinalVerdict {
        self.judge_in(event, Scope::All)
    }

    /// True when judging would allow everything without looking (no
    /// plugins), so the caller need not build the event at all.
    fn allows_everything(&self) -> bool {
        false
    }

    /// True when some plugin asked to see each recipient of a message.
    fn judges_each_recipient(&self) -> bool {
        false
    }
}
