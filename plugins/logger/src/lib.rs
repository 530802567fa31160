//! `logger`: one structured (JSON) log line per event with its final
//! verdict, through the `log` capability. It observes — it runs after the
//! policy plugins and sees what was decided and by which component. The
//! body can be kept, hashed (SHA-256, to correlate without reading) or
//! dropped.
//!
//! See README.md for the config reference.

use imgate_sdk::{Config, Direction, Event, Kind, Outcome, Plugin, log};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

#[derive(Deserialize, Clone, Copy, PartialEq, Debug)]
#[serde(rename_all = "lowercase")]
enum Body {
    Keep,
    Hash,
    Drop,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default = "default_body")]
    body: Body,
    /// Only these event kinds (`message`, `presence`, `file-offer`,
    /// `reaction`, `subject`, `session-start`, `session-end`, `room-join`,
    /// `room-leave`); all by default, including kinds added later.
    #[serde(default)]
    kinds: Vec<String>,
    /// Log only events whose final verdict is not `allow`.
    #[serde(default)]
    only_decisions: bool,
}

fn default_body() -> Body {
    Body::Hash
}

pub struct Logger(Settings);

/// The kinds `kinds` may name.
const KINDS: [&str; 9] = [
    "message",
    "presence",
    "file-offer",
    "reaction",
    "subject",
    "session-start",
    "session-end",
    "room-join",
    "room-leave",
];

/// The kind as logged: the contract's name, with a membership change
/// told apart (`room-join`, `room-leave`).
fn kind_name(event: &Event<'_>) -> String {
    match event.kind() {
        Kind::Membership => match event.membership() {
            Some(m) if m.change == "leave" => "room-leave".into(),
            _ => "room-join".into(),
        },
        kind => kind.name().to_owned(),
    }
}

impl Logger {
    fn line(&self, event: &Event<'_>, kind: &str, outcome: &Outcome<'_>) -> Value {
        let session = event.session();
        let mut out = Map::new();
        out.insert("event".into(), json!(event.id()));
        out.insert("network".into(), json!(event.network()));
        out.insert(
            "direction".into(),
            json!(match event.direction() {
                Direction::Outbound => "outbound",
                Direction::Inbound => "inbound",
            }),
        );
        out.insert("kind".into(), json!(kind));
        out.insert("session".into(), json!(session.id));
        out.insert("user".into(), json!(session.user));
        let sender = event.sender();
        if !sender.is_empty() {
            out.insert("sender".into(), json!(sender));
        }
        if let Some(recipient) = event.recipient() {
            out.insert("recipient".into(), json!(recipient));
        }
        if let Some(room) = event.room() {
            out.insert("room".into(), json!(room));
        }
        if event.encrypted() {
            out.insert("encrypted".into(), json!(true));
        }
        if let Some(body) = event.body() {
            match self.0.body {
                Body::Keep => {
                    out.insert("body".into(), json!(body));
                }
                Body::Hash => {
                    let digest = Sha256::digest(body.as_bytes());
                    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                    out.insert("body_sha256".into(), json!(hex));
                }
                Body::Drop => {}
            }
            out.insert("body_bytes".into(), json!(body.len()));
        }
        if let Some(f) = event.file_offer() {
            out.insert("file".into(), json!(f.name));
            out.insert("size".into(), json!(f.size));
        }
        if let Some(m) = event.membership() {
            out.insert("occupant".into(), json!(m.occupant));
        }
        for r in event.relations() {
            out.insert(r.rel_type.replace('-', "_") + "_of", json!(r.target));
        }
        out.insert("action".into(), json!(outcome.action()));
        if let Some(reason) = outcome.reason() {
            out.insert("reason".into(), json!(reason));
        }
        if let Some(d) = outcome.decided_by() {
            out.insert("decided_by".into(), json!(d.plugin));
            out.insert("decided_by_sha256".into(), json!(d.sha256));
        }
        let tags = outcome.tags();
        if !tags.is_empty() {
            out.insert("tags".into(), json!(tags));
        }
        Value::Object(out)
    }
}

impl Plugin for Logger {
    fn init(config: Config) -> Result<Self, String> {
        let s: Settings = config.parse()?;
        for k in &s.kinds {
            if !KINDS.contains(&k.as_str()) {
                return Err(format!("unknown kind `{k}` (known: {})", KINDS.join(", ")));
            }
        }
        Ok(Logger(s))
    }

    fn observe(&mut self, event: &Event<'_>, outcome: &Outcome<'_>) -> Result<(), String> {
        if self.0.only_decisions && outcome.action() == "allow" {
            return Ok(());
        }
        let kind = kind_name(event);
        if !self.0.kinds.is_empty() && !self.0.kinds.contains(&kind) {
            return Ok(());
        }
        log::info(&self.line(event, &kind, outcome).to_string());
        Ok(())
    }
}

imgate_sdk::export_plugin!(Logger, observer);

#[cfg(test)]
mod tests {
    use super::*;
    use imgate_sdk::testing::{self, Harness, message, reaction, room_join};
    use imgate_sdk::{Action, Decider, OutcomeRecord};
    use serde_json::json;

    fn logged(
        config: Value,
        event: &imgate_sdk::EventRecord,
        verdict: OutcomeRecord,
    ) -> Vec<Value> {
        let mut h: Harness<Logger> = Harness::new(config).unwrap();
        h.observe(event, &verdict).unwrap();
        testing::with_host(|host| {
            host.logs
                .iter()
                .map(|(_, l)| serde_json::from_str(l).unwrap())
                .collect()
        })
    }

    fn blocked() -> OutcomeRecord {
        OutcomeRecord {
            decided_by: Some(Decider {
                plugin: "keyword-block".into(),
                sha256: "ab".repeat(32),
            }),
            tags: vec!["keyword:blocked".into()],
            ..OutcomeRecord::of(&Action::Block("no".into()))
        }
    }

    fn allowed() -> OutcomeRecord {
        OutcomeRecord::of(&Action::Allow)
    }

    #[test]
    fn a_line_per_event_with_the_verdict_and_who_decided() {
        let e = message("alice@corp.example", "bob@example.net", "secret plan");
        let lines = logged(json!({}), &e, blocked());
        let l = &lines[0];
        assert_eq!(l["action"], "block");
        assert_eq!(l["reason"], "no");
        assert_eq!(l["decided_by"], "keyword-block");
        assert_eq!(l["decided_by_sha256"], "ab".repeat(32));
        assert_eq!(l["sender"], "alice@corp.example");
        assert_eq!(l["tags"], json!(["keyword:blocked"]));
        // Hashed by default: correlatable, not readable.
        assert!(l.get("body").is_none());
        assert_eq!(l["body_sha256"].as_str().unwrap().len(), 64);
    }

    #[test]
    fn body_masking_and_filters() {
        let e = message("alice@corp.example", "bob@example.net", "hello");
        assert_eq!(
            logged(json!({"body": "keep"}), &e, allowed())[0]["body"],
            "hello"
        );
        let dropped = &logged(json!({"body": "drop"}), &e, allowed())[0];
        assert!(dropped.get("body").is_none() && dropped.get("body_sha256").is_none());
        assert!(logged(json!({"only_decisions": true}), &e, allowed()).is_empty());
        let join = room_join("alice@corp.example", "lobby@muc.corp.example");
        assert!(logged(json!({"kinds": ["message"]}), &join, allowed()).is_empty());
        assert_eq!(
            logged(json!({}), &join, allowed())[0]["room"],
            "lobby@muc.corp.example"
        );
        assert!(Harness::<Logger>::new(json!({"kinds": ["typing"]})).is_err());
        let r = &logged(json!({}), &reaction("a@x", "r@muc", "m1", "👍"), allowed())[0];
        assert_eq!(r["kind"], "reaction");
        assert_eq!(r["reaction_of"], "m1");
        let held = OutcomeRecord::of(&Action::Hold("review".into()));
        assert_eq!(
            logged(json!({}), &message("a", "b", "x"), held)[0]["action"],
            "hold"
        );
    }
}
