//! The checks on what a plugin returns, before the chain acts on it.
//!
//! Whatever a plugin returns is data, never protocol. A rewrite is written
//! into the network's wire format, so it may only hold characters that
//! network can carry as text; one that cannot be made safe is the plugin's
//! invalid verdict (its failure policy answers). Tags reach logs, the
//! archive and later plugins, so they are printable, bounded, and never in
//! the gateway's own `imgate:` namespace. Block reasons are free text: the
//! adapters make them safe as they write them.

use crate::config::RuntimeConfig;
use crate::event::text::unsafe_char;
use crate::event::{Action, Event, EventKind, Verdict};

/// Tags under this prefix are the host's own (`imgate:failed:<plugin>`).
pub const HOST_TAG_PREFIX: &str = "imgate:";
/// Attributes under this prefix are the host's own.
pub const HOST_ATTRIBUTE_PREFIX: &str = "imgate.";
/// Attribute values a plugin sets are at most this long.
const MAX_ATTRIBUTE_VALUE_BYTES: usize = 4096;

const MAX_REASON_BYTES: usize = 1024;

/// The verdict checks, from `[runtime]`.
#[derive(Clone, Debug)]
pub struct VerdictLimits {
    pub max_body_bytes: usize,
    pub max_tags: usize,
    pub max_tag_bytes: usize,
}

impl From<&RuntimeConfig> for VerdictLimits {
    fn from(r: &RuntimeConfig) -> Self {
        VerdictLimits {
            max_body_bytes: r.max_body_bytes,
            max_tags: r.max_tags,
            max_tag_bytes: r.max_tag_bytes,
        }
    }
}

impl VerdictLimits {
    /// # Errors
    /// What is wrong with the verdict, for the plugin's failure report.
    pub fn check(&self, event: &Event, v: &Verdict) -> Result<(), String> {
        if v.tags.len() > self.max_tags {
            return Err(format!("{} tags, limit is {}", v.tags.len(), self.max_tags));
        }
        for t in &v.tags {
            check_tag(t, self.max_tag_bytes)?;
        }
        if v.attributes.len() > self.max_tags {
            return Err(format!(
                "{} attributes, limit is {}",
                v.attributes.len(),
                self.max_tags
            ));
        }
        for (key, value) in &v.attributes {
            check_attribute(key, value, self.max_tag_bytes)?;
        }
        match &v.action {
            Action::Rewrite(body) if body.len() > self.max_body_bytes => Err(format!(
                "rewrite body of {} bytes exceeds the {} byte limit",
                body.len(),
                self.max_body_bytes
            )),
            Action::Rewrite(_) if event.body().is_none() => Err(match event.kind {
                EventKind::Message(_) => {
                    "rewrite of an end-to-end encrypted message: the gateway forwards the \
                     ciphertext, so the rewrite would not be what is delivered"
                        .to_owned()
                }
                _ => format!(
                    "rewrite of a {} event, which has no text to rewrite",
                    event.kind.kind().contract_name()
                ),
            }),
            Action::Rewrite(body) => match unsafe_char(&event.network, body) {
                Some(c) => Err(format!(
                    "rewrite holds U+{:04X}, which {} cannot carry as text",
                    c as u32, event.network
                )),
                None => Ok(()),
            },
            Action::Block(reason) | Action::Hold(reason) if reason.len() > MAX_REASON_BYTES => {
                Err(format!(
                    "{} reason of {} bytes exceeds {MAX_REASON_BYTES}",
                    v.action.kind(),
                    reason.len()
                ))
            }
            _ => Ok(()),
        }
    }
}

fn check_tag(tag: &str, max_bytes: usize) -> Result<(), String> {
    if tag.is_empty() || tag.len() > max_bytes {
        return Err(format!(
            "tag of {} bytes; tags must be 1-{max_bytes} bytes",
            tag.len()
        ));
    }
    if let Some(c) = tag.chars().find(|c| c.is_control()) {
        return Err(format!(
            "tag {tag:?} holds control character U+{:04X}",
            c as u32
        ));
    }
    if tag
        .get(..HOST_TAG_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(HOST_TAG_PREFIX))
    {
        return Err(format!(
            "tag {tag:?} is in the `{HOST_TAG_PREFIX}` namespace, which is the gateway's own"
        ));
    }
    Ok(())
}

fn check_attribute(key: &str, value: &str, max_key_bytes: usize) -> Result<(), String> {
    let well_formed = key.len() <= max_key_bytes
        && key.contains('.')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
    if !well_formed {
        return Err(format!(
            "attribute key {key:?}: keys are namespaced (`vendor.key`), of letters, digits, \
             `.-_:`, at most {max_key_bytes} bytes"
        ));
    }
    if key
        .get(..HOST_ATTRIBUTE_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(HOST_ATTRIBUTE_PREFIX))
    {
        return Err(format!(
            "attribute `{key}` is in the `{HOST_ATTRIBUTE_PREFIX}` namespace, which is the gateway's own"
        ));
    }
    if value.len() > MAX_ATTRIBUTE_VALUE_BYTES {
        return Err(format!(
            "attribute `{key}` value of {} bytes exceeds {MAX_ATTRIBUTE_VALUE_BYTES}",
            value.len()
        ));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(format!(
            "attribute `{key}` holds control character U+{:04X}",
            c as u32
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(network: &str, body: &str) -> Event {
        crate::event::json::EventDoc {
            network: network.into(),
            message: Some(crate::event::json::MessageDoc {
                sender: "a".into(),
                recipient: "b".into(),
                body: body.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
        .into_event("e", 0)
        .unwrap()
    }

    fn v(action: Action, tags: &[&str]) -> Verdict {
        Verdict {
            action,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            attributes: Vec::new(),
            remove_attachments: Vec::new(),
            sent: Vec::new(),
        }
    }

    const LIMITS: VerdictLimits = VerdictLimits {
        max_body_bytes: 10,
        max_tags: 2,
        max_tag_bytes: 12,
    };

    #[test]
    fn oversized_and_misplaced_answers_are_refused() {
        let m = message("xmpp", "hi");
        assert!(
            LIMITS
                .check(&m, &v(Action::Rewrite("short".into()), &["a"]))
                .is_ok()
        );
        assert!(
            LIMITS
                .check(&m, &v(Action::Rewrite("x".repeat(11)), &[]))
                .is_err()
        );
        assert!(
            LIMITS
                .check(&m, &v(Action::Allow, &["a", "b", "c"]))
                .is_err()
        );
        assert!(
            LIMITS
                .check(&m, &v(Action::Allow, &["much-too-long"]))
                .is_err()
        );
        assert!(LIMITS.check(&m, &v(Action::Allow, &[""])).is_err());
        let mut presence = m.clone();
        presence.kind = EventKind::SessionStart;
        assert!(
            LIMITS
                .check(&presence, &v(Action::Rewrite("x".into()), &[]))
                .is_err()
        );
    }

    #[test]
    fn a_rewrite_must_be_text_its_network_can_carry() {
        let rewrite = |network, body: &str| {
            LIMITS.check(
                &message(network, "hi"),
                &v(Action::Rewrite(body.into()), &[]),
            )
        };
        assert!(rewrite("irc", "a\r\nb").is_ok());
        assert!(rewrite("irc", "\x02bold\x02").is_ok());
        assert!(rewrite("irc", "a\0b").is_err());
        assert!(rewrite("irc", "\x01DCC").is_err());
        assert!(rewrite("xmpp", "a\r\n\tb").is_ok());
        for bad in ["\0", "\x01", "\x0b", "\u{fffe}", "\u{ffff}"] {
            assert!(rewrite("xmpp", bad).is_err(), "{bad:?}");
            assert!(rewrite("replay", bad).is_err(), "{bad:?}");
        }
        let e = rewrite("xmpp", "x\u{b}").unwrap_err();
        assert!(e.contains("U+000B"), "{e}");
    }

    #[test]
    fn encrypted_content_cannot_be_rewritten() {
        let mut m = message("xmpp", "");
        if let EventKind::Message(msg) = &mut m.kind {
            msg.encrypted = true;
        }
        let e = LIMITS
            .check(&m, &v(Action::Rewrite("x".into()), &[]))
            .unwrap_err();
        assert!(e.contains("encrypted"), "{e}");
    }

    #[test]
    fn attributes_are_namespaced_and_not_the_hosts() {
        let m = message("irc", "hi");
        let with = |k: &str, val: &str| Verdict {
            attributes: vec![(k.into(), val.into())],
            ..v(Action::Allow, &[])
        };
        assert!(LIMITS.check(&m, &with("dlp.score", "7")).is_ok());
        for bad in ["score", "imgate.x", "IMGATE.x", "a b.c", "dlp.x\n"] {
            assert!(LIMITS.check(&m, &with(bad, "1")).is_err(), "{bad:?}");
        }
        assert!(LIMITS.check(&m, &with("dlp.x", "a\nb")).is_err());
    }

    #[test]
    fn tags_are_printable_and_not_the_hosts() {
        let m = message("irc", "hi");
        assert!(LIMITS.check(&m, &v(Action::Allow, &["dlp:card"])).is_ok());
        for bad in ["a\r\nb", "a\0", "x\u{85}", "imgate:failed", "IMGATE:x"] {
            assert!(
                LIMITS.check(&m, &v(Action::Allow, &[bad])).is_err(),
                "{bad:?}"
            );
        }
    }
}
