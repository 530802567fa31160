//! `disclaimer`: appends a configured notice to the first outbound message
//! of each conversation — every conversation, or only those with external
//! parties. A conversation is the user and the peer, whichever session or
//! gateway carries it. Which conversations already had it is kept in `kv`,
//! with a time to live, so the state is shared by all instances (and, on a
//! PostgreSQL store, by every gateway and across restarts).
//!
//! See README.md for the config reference.

use imgate_sdk::{Config, Event, Kind, Plugin, Verdict, kv};
use serde::Deserialize;

#[derive(Deserialize, Clone, Copy, PartialEq, Debug)]
#[serde(rename_all = "lowercase")]
enum Scope {
    All,
    External,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    text: String,
    #[serde(default = "default_scope")]
    scope: Scope,
    /// Domains that are not external; subdomains count (a MUC service at
    /// `conference.corp.example` is internal when `corp.example` is).
    #[serde(default)]
    internal_domains: Vec<String>,
    #[serde(default = "default_separator")]
    separator: String,
    /// How long a conversation counts as having had its disclaimer.
    #[serde(default = "default_ttl_s")]
    remember_s: u64,
}

fn default_scope() -> Scope {
    Scope::All
}
fn default_separator() -> String {
    "\n\n".into()
}
fn default_ttl_s() -> u64 {
    12 * 3600
}

pub struct Disclaimer(Settings);

/// The domain part of an address: `user@domain/res`, `#chan@irc.net`,
/// `room@conference.corp.example/nick`.
fn domain_of(address: &str) -> &str {
    let bare = address.split('/').next().unwrap_or(address);
    bare.rsplit_once('@').map_or(bare, |(_, d)| d)
}

impl Disclaimer {
    fn is_internal(&self, address: &str) -> bool {
        let domain = domain_of(address).to_ascii_lowercase();
        self.0.internal_domains.iter().any(|d| {
            let d = d.to_ascii_lowercase();
            domain == d || domain.ends_with(&format!(".{d}"))
        })
    }
}

impl Plugin for Disclaimer {
    fn init(config: Config) -> Result<Self, String> {
        let settings: Settings = config.parse()?;
        if settings.text.trim().is_empty() {
            return Err("text must not be empty".into());
        }
        if settings.scope == Scope::External && settings.internal_domains.is_empty() {
            return Err("scope = \"external\" needs internal_domains".into());
        }
        Ok(Disclaimer(settings))
    }

    fn handle(&mut self, event: &Event<'_>) -> Verdict {
        // Already blocked, running for tags only: nothing will be delivered,
        // so there is nothing to disclaim.
        if !event.is_outbound() || event.has_tag("imgate:after-block") {
            return Verdict::allow();
        }
        if event.kind() != Kind::Message {
            return Verdict::allow();
        }
        // Nothing to append to: encrypted content (no body), body-less
        // messages, corrections, retractions.
        let body = match event.body() {
            Some(body) if !body.is_empty() => body,
            _ => return Verdict::allow(),
        };
        if event
            .relations()
            .iter()
            .any(|r| r.rel_type == "edit" || r.rel_type == "retraction")
        {
            return Verdict::allow();
        }
        let Some(peer) = event.room().or_else(|| event.recipient()) else {
            return Verdict::allow();
        };
        if self.0.scope == Scope::External && self.is_internal(&peer) {
            return Verdict::allow();
        }
        let bare = |a: &str| a.split('/').next().unwrap_or(a).to_lowercase();
        let key = format!("{}|{}", bare(&event.session().user), bare(&peer));
        // Claimed atomically, so two gateways judging the first messages of
        // a conversation at once add it once; then given its time to live.
        match kv::compare_and_swap(&key, None, b"1") {
            Ok(true) => {}
            Ok(false) => return Verdict::allow(),
            // Without its memory the plugin would stamp every message.
            Err(_) => return Verdict::allow().with_tag("disclaimer:state-unavailable"),
        }
        let _ = kv::set(&key, b"1", Some(self.0.remember_s * 1000));
        Verdict::rewrite(format!("{body}{}{}", self.0.separator, self.0.text))
            .with_tag("disclaimer:added")
    }

    fn interest(&self) -> Option<Vec<String>> {
        Some(vec!["message".into()])
    }
}

imgate_sdk::export_plugin!(Disclaimer);

#[cfg(test)]
mod tests {
    use super::*;
    use imgate_sdk::testing::{Harness, encrypted_message, inbound, message, room_message};
    use imgate_sdk::{Action, testing};
    use serde_json::json;

    fn body(v: &Verdict) -> Option<&str> {
        match &v.action {
            Action::Rewrite(b) => Some(b),
            _ => None,
        }
    }

    #[test]
    fn first_message_of_each_conversation_only() {
        let mut h: Harness<Disclaimer> = Harness::new(json!({"text": "Recorded."})).unwrap();
        let first = h.handle(&message("alice@corp.example", "bob@example.net", "hi"));
        assert_eq!(body(&first), Some("hi\n\nRecorded."));
        assert!(first.tags.contains(&"disclaimer:added".to_string()));
        let second = h.handle(&message(
            "alice@corp.example",
            "bob@example.net/phone",
            "again",
        ));
        assert!(second.is_allow(), "same conversation, another resource");
        let other = h.handle(&message("alice@corp.example", "carol@example.net", "hello"));
        assert_eq!(body(&other), Some("hello\n\nRecorded."));
        let room = h.handle(&room_message(
            "alice@corp.example",
            "lobby@muc.example.net",
            "all",
        ));
        assert_eq!(body(&room), Some("all\n\nRecorded."));
        // Another session of hers (her phone, another gateway): the same
        // conversation.
        let mut phone = message("alice@corp.example", "Bob@example.net", "from the phone");
        phone.session.id = "s2".into();
        phone.session.user = "alice@corp.example/phone".into();
        assert!(h.handle(&phone).is_allow());
    }

    #[test]
    fn external_scope_spares_internal_domains_and_their_subdomains() {
        let mut h: Harness<Disclaimer> = Harness::new(json!({
            "text": "External: recorded.", "scope": "external",
            "internal_domains": ["corp.example"], "separator": " -- ",
        }))
        .unwrap();
        assert!(
            h.handle(&message("alice@corp.example", "bob@corp.example", "x"))
                .is_allow()
        );
        assert!(
            h.handle(&room_message(
                "alice@corp.example",
                "team@conference.corp.example",
                "x"
            ))
            .is_allow()
        );
        let v = h.handle(&message("alice@corp.example", "eve@notcorp.example", "x"));
        assert_eq!(body(&v), Some("x -- External: recorded."));
    }

    #[test]
    fn inbound_and_encrypted_messages_are_left_alone_and_memory_expires() {
        let mut h: Harness<Disclaimer> =
            Harness::new(json!({"text": "R", "remember_s": 60})).unwrap();
        assert!(
            h.handle(&inbound(message(
                "bob@example.net",
                "alice@corp.example",
                "x"
            )))
            .is_allow()
        );
        let e = encrypted_message("alice@corp.example", "bob@example.net");
        assert!(h.handle(&e).is_allow());
        assert!(body(&h.handle(&message("alice@corp.example", "bob@example.net", "a"))).is_some());
        assert!(
            h.handle(&message("alice@corp.example", "bob@example.net", "b"))
                .is_allow()
        );
        testing::advance_ms(61_000);
        assert!(body(&h.handle(&message("alice@corp.example", "bob@example.net", "c"))).is_some());
    }

    #[test]
    fn bad_config_is_refused_with_a_reason() {
        assert!(Harness::<Disclaimer>::new(json!({"text": " "})).is_err());
        let e = Harness::<Disclaimer>::new(json!({"text": "x", "scope": "external"}))
            .err()
            .unwrap();
        assert!(e.contains("internal_domains"), "{e}");
        assert!(Harness::<Disclaimer>::new(json!({"text": "x", "colour": "red"})).is_err());
    }
}
