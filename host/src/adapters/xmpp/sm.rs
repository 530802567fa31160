//! XEP-0198 stream management across a gateway that drops and injects
//! stanzas.
//!
//! Each side counts the stanzas it has handled from the other and reports
//! the count as `h`. When the gateway drops a client's stanza, the server
//! never counts it; when it injects an error towards the client, the client
//! counts one the server never sent. So every `h` crossing the gateway is
//! translated into the counting of the side that receives it. One
//! [`Counter`] per direction does this; its memory is bounded by the
//! stanzas in flight (sent and not yet acknowledged).

use std::collections::VecDeque;

/// The stanzas flowing one way, from a sender to a receiver.
#[derive(Debug, Default)]
pub struct Counter {
    /// Sender's stanzas the gateway has dealt with (forwarded or dropped).
    seen: u64,
    /// Stanzas written to the receiver, the sender's and injected ones.
    delivered: u64,
    /// For each of the sender's stanzas forwarded and not yet acknowledged:
    /// its position among what the receiver got, and its sender count.
    in_flight: VecDeque<(u64, u64)>,
}

impl Counter {
    /// Starts counting afresh (on `<enable/>` or `<enabled/>`).
    pub fn reset(&mut self) {
        *self = Counter::default();
    }

    /// A sender's stanza went on to the receiver.
    pub fn forwarded(&mut self) {
        self.seen += 1;
        self.delivered += 1;
        self.in_flight.push_back((self.delivered, self.seen));
    }

    /// A sender's stanza stopped at the gateway: handled, as far as the
    /// sender is concerned.
    pub fn dropped(&mut self) {
        self.seen += 1;
    }

    /// The gateway wrote a stanza of its own to the receiver.
    pub fn injected(&mut self) {
        self.delivered += 1;
    }

    /// The receiver acknowledged `h` stanzas; returns the `h` to give the
    /// sender: every stanza of the sender's before the first one still
    /// unacknowledged.
    pub fn translate(&mut self, h: u32) -> u32 {
        // `h` wraps at 2^32 (XEP-0198 §4); lift it next to our count.
        let base = self.delivered & !0xFFFF_FFFF;
        let mut h = base | u64::from(h);
        if h > self.delivered {
            h = h.saturating_sub(1 << 32);
        }
        while self.in_flight.front().is_some_and(|&(pos, _)| pos <= h) {
            self.in_flight.pop_front();
        }
        let handled = match self.in_flight.front() {
            Some(&(_, sender_index)) => sender_index - 1,
            None => self.seen,
        };
        (handled & 0xFFFF_FFFF) as u32
    }

    /// Stanzas forwarded and not yet acknowledged.
    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_changes_h_passes_unchanged() {
        let mut c = Counter::default();
        for _ in 0..5 {
            c.forwarded();
        }
        assert_eq!(c.translate(3), 3);
        assert_eq!(c.translate(5), 5);
        assert_eq!(c.in_flight(), 0);
    }

    #[test]
    fn dropped_stanzas_count_as_handled_once_those_before_are() {
        let mut c = Counter::default();
        c.forwarded(); // 1 -> pos 1
        c.dropped(); // 2
        c.forwarded(); // 3 -> pos 2
        c.dropped(); // 4
        // The receiver has seen 1 of our 2: sender's 1 and 2 are done.
        assert_eq!(c.translate(1), 2);
        assert_eq!(c.translate(2), 4);
        assert_eq!(c.translate(0), 4, "h never goes back once acknowledged");
    }

    #[test]
    fn injected_stanzas_are_not_the_senders() {
        let mut c = Counter::default();
        c.forwarded(); // pos 1, sender 1
        c.injected(); // pos 2
        c.forwarded(); // pos 3, sender 2
        assert_eq!(c.translate(2), 1);
        assert_eq!(c.translate(3), 2);
    }

    #[test]
    fn a_dropped_stanza_alone_is_handled_at_once() {
        let mut c = Counter::default();
        c.dropped();
        assert_eq!(c.translate(0), 1);
    }
}
