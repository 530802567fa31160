//! `logger`: one structured (JSON) log line per event with its final
//! verdict, through the `log` capability. It observes — it runs after the
//! policy plugins and sees what was decided and by which component. The
//! body can be kept, hashed (SHA-256, to correlate without reading) or
//! dropped.
//!
//! See README.md for the config reference.

use imgate_sdk::{Action, Config, Conversation, Direction, Event, FinalVerdict, Plugin, log};
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
    /// `session-start`, `session-end`, `room-join`, `room-leave`); all by
    /// default.
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

fn kind_name(event: &Event<'_>) -> &'static str {
    use imgate_sdk::Kind;
    match event.kind() {
        Kind::Message => "message",
        Kind::Presence => "presence",
        Kind::FileOffer => "file-offer",
        Kind::SessionStart => "session-start",
        Kind::SessionEnd => "session-end",
        Kind::RoomJoin => "room-join",
        Kind::RoomLeave => "room-leave",
    }
}

impl Logger {
    fn line(&self, event: &Event<'_>, verdict: &FinalVerdict) -> Value {
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
        out.insert("kind".into(), json!(kind_name(event)));
        out.insert("session".into(), json!(session.id));
        out.insert("user".into(), json!(session.user));
        if let Some(m) = event.message() {
            out.insert("sender".into(), json!(m.sender));
            out.insert("recipient".into(), json!(m.recipient));
            if let Conversation::Group(room) = &m.conversation {
                out.insert("room".into(), json!(room));
            }
            if m.encrypted {
                out.insert("encrypted".into(), json!(true));
            }
            match self.0.body {
                Body::Keep => {
                    out.insert("body".into(), json!(m.body));
                }
                Body::Hash => {
                    let digest = Sha256::digest(m.body.as_bytes());
                    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                    out.insert("body_sha256".into(), json!(hex));
                }
                Body::Drop => {}
            }
            out.insert("body_bytes".into(), json!(m.body.len()));
        }
        if let Some(f) = event.file_offer() {
            out.insert("sender".into(), json!(f.sender));
            out.insert("recipient".into(), json!(f.recipient));
            out.insert("file".into(), json!(f.name));
            out.insert("size".into(), json!(f.size));
        }
        if let Some(r) = event.room_change() {
            out.insert("room".into(), json!(r.room));
            out.insert("occupant".into(), json!(r.occupant));
        }
        let (action, detail) = match &verdict.action {
            Action::Allow => ("allow", None),
            Action::Block(reason) => ("block", Some(("reason", reason))),
            Action::Drop => ("drop", None),
            Action::Rewrite(_) => ("rewrite", None),
        };
        out.insert("action".into(), json!(action));
        if let Some((k, v)) = detail {
            out.insert(k.into(), json!(v));
        }
        if let Some(d) = &verdict.decided_by {
            out.insert("decided_by".into(), json!(d.plugin));
            out.insert("decided_by_sha256".into(), json!(d.sha256));
        }
        if !verdict.tags.is_empty() {
            out.insert("tags".into(), json!(verdict.tags));
        }
        Value::Object(out)
    }
}

impl Plugin for Logger {
    fn init(config: Config) -> Result<Self, String> {
        let s: Settings = config.parse()?;
        for k in &s.kinds {
            if !matches!(
                k.as_str(),
                "message"
                    | "presence"
                    | "file-offer"
                    | "session-start"
                    | "session-end"
                    | "room-join"
                    | "room-leave"
            ) {
                return Err(format!("unknown kind `{k}`"));
            }
        }
        Ok(Logger(s))
    }

    fn observe(&mut self, event: &Event<'_>, verdict: &FinalVerdict) -> Result<(), String> {
        if self.0.only_decisions && verdict.action == Action::Allow {
            return Ok(());
        }
        let kind = kind_name(event);
        if !self.0.kinds.is_empty() && !self.0.kinds.iter().any(|k| k == kind) {
            return Ok(());
        }
        log::info(&self.line(event, verdict).to_string());
        Ok(())
    }
}

imgate_sdk::export_plugin!(Logger, observer);

#[cfg(test)]
mod tests {
    use super::*;
    use imgate_sdk::Decider;
    use imgate_sdk::testing::{self, Harness, message, room_join};
    use serde_json::json;

    fn logged(config: Value, event: &imgate_sdk::EventRecord, verdict: FinalVerdict) -> Vec<Value> {
        let mut h: Harness<Logger> = Harness::new(config).unwrap();
        h.observe(event, &verdict).unwrap();
        testing::with_host(|host| {
            host.logs
                .iter()
                .map(|(_, l)| serde_json::from_str(l).unwrap())
                .collect()
        })
    }

    fn blocked() -> FinalVerdict {
        FinalVerdict {
            action: Action::Block("no".into()),
            decided_by: Some(Decider {
                plugin: "keyword-block".into(),
                sha256: "ab".repeat(32),
            }),
            tags: vec!["keyword:blocked".into()],
        }
    }

    fn allowed() -> FinalVerdict {
        FinalVerdict {
            action: Action::Allow,
            decided_by: None,
            tags: vec![],
        }
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
    }
}
