//! `archiver`: appends everything a user writes — messages, file offers,
//! reactions, subjects, and kinds added after it was built — allowed,
//! rewritten, dropped, held or blocked, to the compliance archive with the
//! chain's final outcome, its tags and the deciding plugin's hash. It is an observer, so
//! it sees blocked messages too (archived as attempted and blocked), and
//! it runs after every policy plugin has spoken.
//!
//! The host writes the record from its own copy of the event: the archiver
//! chooses what to archive, never what a record says.
//!
//! See README.md for the config reference.

use imgate_sdk::{Config, Direction, Event, Kind, Outcome, Plugin, archive};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// Networks to archive (`xmpp`, `irc`…); all when empty.
    #[serde(default)]
    networks: Vec<String>,
    /// `outbound`, `inbound`; both by default.
    #[serde(default = "both")]
    directions: Vec<String>,
    /// Also archive session starts and ends, room joins and leaves.
    #[serde(default)]
    sessions_and_rooms: bool,
}

fn both() -> Vec<String> {
    vec!["outbound".into(), "inbound".into()]
}

pub struct Archiver(Settings);

impl Plugin for Archiver {
    fn init(config: Config) -> Result<Self, String> {
        let s: Settings = config.parse()?;
        for d in &s.directions {
            if d != "outbound" && d != "inbound" {
                return Err(format!("unknown direction `{d}`"));
            }
        }
        Ok(Archiver(s))
    }

    fn observe(&mut self, event: &Event<'_>, outcome: &Outcome<'_>) -> Result<(), String> {
        let wanted = match event.kind() {
            Kind::SessionStart | Kind::SessionEnd | Kind::Membership => self.0.sessions_and_rooms,
            Kind::Presence => false,
            // Content, including kinds this build does not know: a record
            // too many beats a message missing from the archive.
            _ => true,
        };
        let direction = match event.direction() {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
        };
        if !wanted
            || !self.0.directions.iter().any(|d| d == direction)
            || (!self.0.networks.is_empty() && !self.0.networks.contains(&event.network()))
        {
            return Ok(());
        }
        let _ = outcome; // the host records the final outcome itself
        // An error here is the plugin failing: with failure = "fail-closed"
        // nothing is delivered that could not be archived.
        archive::append(event, &[]).map(|_| ())
    }
}

imgate_sdk::export_plugin!(Archiver, observer);

#[cfg(test)]
mod tests {
    use super::*;
    use imgate_sdk::testing::{
        self, Harness, file_offer, inbound, message, presence, reaction, session_start, subject,
    };
    use imgate_sdk::{Action, Decider, OutcomeRecord};
    use serde_json::json;

    fn blocked() -> OutcomeRecord {
        OutcomeRecord {
            decided_by: Some(Decider {
                plugin: "dlp".into(),
                sha256: "cd".repeat(32),
            }),
            tags: vec!["dlp:ssn".into()],
            ..OutcomeRecord::of(&Action::Block("no".into()))
        }
    }

    fn archived() -> usize {
        testing::with_host(|h| h.archive.len())
    }

    #[test]
    fn messages_and_file_offers_are_archived_blocked_ones_included() {
        let mut h: Harness<Archiver> = Harness::new(json!({})).unwrap();
        h.observe(
            &message("a@corp.example", "b@x", "ssn 123-45-6789"),
            &blocked(),
        )
        .unwrap();
        h.observe(&file_offer("a@corp.example", "b@x", "f.pdf", 3), &blocked())
            .unwrap();
        h.observe(&presence("a@corp.example"), &blocked()).unwrap();
        h.observe(&session_start("a@corp.example"), &blocked())
            .unwrap();
        assert_eq!(archived(), 2);
        let verdict = testing::with_host(|h| h.archive[0].verdict.clone());
        assert_eq!(verdict.unwrap().action, "block");
    }

    #[test]
    fn reactions_subjects_and_unknown_kinds_are_archived() {
        let mut h: Harness<Archiver> = Harness::new(json!({})).unwrap();
        let allowed = OutcomeRecord::of(&Action::Allow);
        h.observe(&reaction("a@x", "r@muc", "m1", "👍"), &allowed)
            .unwrap();
        h.observe(&subject("a@x", "r@muc", "Q3 numbers"), &allowed)
            .unwrap();
        let mut typing = message("a@x", "b@x", "");
        typing.kind = "poll".into();
        h.observe(&typing, &allowed).unwrap();
        assert_eq!(archived(), 3);
    }

    #[test]
    fn networks_and_directions_filter() {
        let mut h: Harness<Archiver> = Harness::new(
            json!({"networks": ["irc"], "directions": ["outbound"], "sessions_and_rooms": true}),
        )
        .unwrap();
        // The harness's events are on xmpp.
        h.observe(&message("a@x", "b@x", "hi"), &blocked()).unwrap();
        assert_eq!(archived(), 0);
        let mut h: Harness<Archiver> =
            Harness::new(json!({"directions": ["outbound"], "sessions_and_rooms": true})).unwrap();
        h.observe(&inbound(message("b@x", "a@x", "hi")), &blocked())
            .unwrap();
        h.observe(&session_start("a@x"), &blocked()).unwrap();
        assert_eq!(archived(), 1);
        assert!(Harness::<Archiver>::new(json!({"directions": ["sideways"]})).is_err());
    }
}
