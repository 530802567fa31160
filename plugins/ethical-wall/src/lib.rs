//! `ethical-wall`: information barriers between groups of people — the
//! equivalent of mod_firewall's CROSSING GROUPS. Groups are defined by user
//! ids, domains or patterns; rules say which group may not reach which,
//! for which kinds of event and in which directions.
//!
//! See README.md for the config reference.

use std::collections::BTreeMap;

use imgate_sdk::{Config, Direction, EACH_RECIPIENT, Event, Kind, Plugin, Verdict};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    groups: BTreeMap<String, GroupSpec>,
    rules: Vec<RuleSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupSpec {
    /// Patterns: `user@domain`, `@domain` (and its subdomains), `*`, or a
    /// glob with `*` (`*@research.corp.example`, `trader-*`).
    #[serde(default)]
    members: Vec<String>,
    /// Patterns excluded from the group (`external`: members `*`, except
    /// `@corp.example`).
    #[serde(default)]
    except: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    name: String,
    /// A group name, or `*` for anyone.
    from: String,
    to: String,
    /// `message`, `file-offer`, `room-join`, `reaction`, `subject`;
    /// default all of them.
    #[serde(default = "all_kinds")]
    kinds: Vec<String>,
    /// `outbound`, `inbound`; default both.
    #[serde(default = "both_directions")]
    directions: Vec<String>,
    /// Also block `to` → `from` (default true: a wall has two sides).
    #[serde(default = "yes")]
    both_ways: bool,
    #[serde(default)]
    reason: Option<String>,
}

/// The kinds a wall can stand in the way of.
const KINDS: [&str; 5] = ["message", "file-offer", "room-join", "reaction", "subject"];

fn all_kinds() -> Vec<String> {
    KINDS.iter().map(|k| (*k).to_owned()).collect()
}
fn both_directions() -> Vec<String> {
    vec!["outbound".into(), "inbound".into()]
}
fn yes() -> bool {
    true
}

fn matches(pattern: &str, who: &str) -> bool {
    let who = who.split('/').next().unwrap_or(who).to_ascii_lowercase();
    let pattern = pattern.to_ascii_lowercase();
    if pattern == "*" {
        return true;
    }
    if let Some(domain) = pattern.strip_prefix('@') {
        let Some((_, d)) = who.rsplit_once('@') else {
            return false;
        };
        return d == domain || d.ends_with(&format!(".{domain}"));
    }
    match pattern.split_once('*') {
        Some((prefix, suffix)) => {
            who.len() >= prefix.len() + suffix.len()
                && who.starts_with(prefix)
                && who.ends_with(suffix)
        }
        None => who == pattern,
    }
}

struct Group {
    members: Vec<String>,
    except: Vec<String>,
}

impl Group {
    fn contains(&self, who: &str) -> bool {
        self.members.iter().any(|p| matches(p, who)) && !self.except.iter().any(|p| matches(p, who))
    }
}

struct Rule {
    name: String,
    from: Option<Group>,
    to: Option<Group>,
    kinds: Vec<String>,
    directions: Vec<String>,
    both_ways: bool,
    reason: String,
}

impl Rule {
    fn side(group: &Option<Group>, who: &str) -> bool {
        group.as_ref().is_none_or(|g| g.contains(who))
    }

    fn forbids(&self, from: &str, to: &str) -> bool {
        (Rule::side(&self.from, from) && Rule::side(&self.to, to))
            || (self.both_ways && Rule::side(&self.from, to) && Rule::side(&self.to, from))
    }
}

pub struct EthicalWall(Vec<Rule>);

impl Plugin for EthicalWall {
    fn init(config: Config) -> Result<Self, String> {
        let s: Settings = config.parse()?;
        let group = |name: &str| -> Result<Option<Group>, String> {
            if name == "*" {
                return Ok(None);
            }
            let spec = s
                .groups
                .get(name)
                .ok_or_else(|| format!("no group named `{name}`"))?;
            let members = if spec.members.is_empty() {
                vec!["*".to_owned()]
            } else {
                spec.members.clone()
            };
            Ok(Some(Group {
                members,
                except: spec.except.clone(),
            }))
        };
        let mut rules = Vec::new();
        for r in &s.rules {
            for k in &r.kinds {
                if !KINDS.contains(&k.as_str()) {
                    return Err(format!(
                        "rule `{}`: unknown kind `{k}` (known: {})",
                        r.name,
                        KINDS.join(", ")
                    ));
                }
            }
            for d in &r.directions {
                if !matches!(d.as_str(), "outbound" | "inbound") {
                    return Err(format!("rule `{}`: unknown direction `{d}`", r.name));
                }
            }
            rules.push(Rule {
                name: r.name.clone(),
                from: group(&r.from).map_err(|e| format!("rule `{}`: {e}", r.name))?,
                to: group(&r.to).map_err(|e| format!("rule `{}`: {e}", r.name))?,
                kinds: r.kinds.clone(),
                directions: r.directions.clone(),
                both_ways: r.both_ways,
                reason: r
                    .reason
                    .clone()
                    .unwrap_or_else(|| format!("blocked by the information barrier `{}`", r.name)),
            });
        }
        if rules.is_empty() {
            return Err("rules must not be empty".into());
        }
        Ok(EthicalWall(rules))
    }

    fn handle(&mut self, event: &Event<'_>) -> Verdict {
        // Who is reaching whom. Anything said in a room reaches the room.
        let kind = match event.kind() {
            Kind::Message => "message",
            Kind::FileOffer => "file-offer",
            Kind::Reaction => "reaction",
            Kind::Subject => "subject",
            Kind::Membership if event.membership().is_some_and(|m| m.change == "join") => {
                "room-join"
            }
            _ => return Verdict::allow(),
        };
        let from = event.sender();
        let Some(to) = event.room().or_else(|| event.recipient()) else {
            return Verdict::allow();
        };
        let direction = match event.direction() {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
        };
        // What a room says also reaches each member: the host shows this
        // plugin each local member's copy (`each-recipient`), received in
        // that member's session.
        let member = (event.direction() == Direction::Inbound && event.room().is_some())
            .then(|| event.user())
            .filter(|user| !user.is_empty());
        let reaches = |rule: &Rule| {
            rule.forbids(&from, &to) || member.as_ref().is_some_and(|m| rule.forbids(&from, m))
        };
        for rule in &self.0 {
            if rule.kinds.iter().any(|k| k == kind)
                && rule.directions.iter().any(|d| d == direction)
                && reaches(rule)
            {
                return Verdict::block(rule.reason.clone())
                    .with_tag(format!("ethical-wall:{}", rule.name));
            }
        }
        Verdict::allow()
    }

    fn interest(&self) -> Option<Vec<String>> {
        Some(
            [
                "message",
                "file-offer",
                "reaction",
                "subject",
                "membership",
                EACH_RECIPIENT,
            ]
            .map(String::from)
            .to_vec(),
        )
    }
}

imgate_sdk::export_plugin!(EthicalWall);

#[cfg(test)]
mod tests {
    use super::*;
    use imgate_sdk::testing::{
        Harness, file_offer, inbound, message, reaction, received_by, room_join, room_message,
        subject,
    };
    use serde_json::json;

    fn wall() -> Harness<EthicalWall> {
        Harness::new(json!({
            "groups": {
                "research": {"members": ["@research.corp.example", "alice@corp.example"]},
                "trading": {"members": ["@trading.corp.example", "trader-*"]},
                "external": {"except": ["@corp.example"]},
            },
            "rules": [
                {"name": "research-trading", "from": "research", "to": "trading",
                 "reason": "Research may not talk to Trading"},
                {"name": "no-files-out", "from": "*", "to": "external", "kinds": ["file-offer"],
                 "directions": ["outbound"], "both_ways": false},
            ],
        }))
        .unwrap()
    }

    #[test]
    fn in_a_room_only_the_walled_member_is_kept_from_the_sender() {
        let mut h = wall();
        // alice (research) speaks in a room that bob, carol (trading) and
        // dan share: the room itself is behind no wall.
        let said = room_message(
            "alice@corp.example",
            "deals@rooms.corp.example",
            "q3 numbers",
        );
        assert!(!h.handle(&said).is_block());
        for (member, walled) in [
            ("bob@corp.example", false),
            ("carol@trading.corp.example", true),
            ("dan@corp.example", false),
        ] {
            let v = h.handle(&received_by(member, said.clone()));
            assert_eq!(v.is_block(), walled, "{member}: {v:?}");
        }
        // The member's own words are not kept from them.
        let own = room_message(
            "carol@trading.corp.example",
            "deals@rooms.corp.example",
            "hi",
        );
        assert!(
            !h.handle(&received_by("carol@trading.corp.example", own))
                .is_block()
        );
    }

    #[test]
    fn reactions_and_subjects_cannot_cross_the_wall() {
        let mut h = wall();
        let v = h.handle(&reaction(
            "alice@corp.example",
            "desk@trading.corp.example",
            "m1",
            "👍",
        ));
        assert!(v.is_block(), "{v:?}");
        assert!(
            h.handle(&subject(
                "trader-joe@corp.example",
                "lab@research.corp.example",
                "buy"
            ))
            .is_block()
        );
        assert!(
            h.handle(&reaction(
                "alice@corp.example",
                "lab@corp.example",
                "m1",
                "👍"
            ))
            .is_allow()
        );
    }

    #[test]
    fn research_and_trading_cannot_talk_either_way() {
        let mut h = wall();
        let v = h.handle(&message(
            "alice@corp.example",
            "bob@trading.corp.example",
            "hi",
        ));
        assert!(v.is_block());
        assert!(
            v.tags
                .contains(&"ethical-wall:research-trading".to_string())
        );
        assert!(
            h.handle(&message(
                "x@research.corp.example/lab",
                "bob@trading.corp.example",
                "hi"
            ))
            .is_block()
        );
        assert!(
            h.handle(&inbound(message(
                "bob@trading.corp.example",
                "alice@corp.example",
                "hi"
            )))
            .is_block()
        );
        assert!(
            h.handle(&message(
                "trader-joe",
                "carol@research.corp.example",
                "irc nicks too"
            ))
            .is_block()
        );
        assert!(
            h.handle(&message("alice@corp.example", "dave@corp.example", "fine"))
                .is_allow()
        );
        assert!(
            h.handle(&message(
                "alice@corp.example",
                "someone@example.net",
                "fine"
            ))
            .is_allow()
        );
    }

    #[test]
    fn room_joins_and_room_messages_count() {
        let mut h = wall();
        assert!(
            h.handle(&room_join(
                "alice@corp.example",
                "desk@muc.trading.corp.example"
            ))
            .is_block()
        );
        assert!(
            h.handle(&room_message(
                "alice@corp.example",
                "desk@muc.trading.corp.example",
                "x"
            ))
            .is_block()
        );
        assert!(
            h.handle(&room_join("alice@corp.example", "lunch@muc.corp.example"))
                .is_allow()
        );
    }

    #[test]
    fn no_files_to_external_domains() {
        let mut h = wall();
        assert!(
            h.handle(&file_offer(
                "dave@corp.example",
                "eve@example.net",
                "plan.pdf",
                9
            ))
            .is_block()
        );
        assert!(
            h.handle(&file_offer(
                "dave@corp.example",
                "erin@sub.corp.example",
                "plan.pdf",
                9
            ))
            .is_allow()
        );
        // Outbound only, one way only.
        assert!(
            h.handle(&inbound(file_offer(
                "eve@example.net",
                "dave@corp.example",
                "x.pdf",
                9
            )))
            .is_allow()
        );
        assert!(
            h.handle(&message(
                "dave@corp.example",
                "eve@example.net",
                "text is fine"
            ))
            .is_allow()
        );
    }

    #[test]
    fn bad_config_names_the_rule() {
        let e = Harness::<EthicalWall>::new(json!({
            "groups": {}, "rules": [{"name": "r1", "from": "nobody", "to": "*"}],
        }))
        .err()
        .unwrap();
        assert!(e.contains("r1") && e.contains("nobody"), "{e}");
        let e = Harness::<EthicalWall>::new(json!({
            "groups": {"a": {"members": ["*"]}},
            "rules": [{"name": "r2", "from": "a", "to": "a", "kinds": ["presence"]}],
        }))
        .err()
        .unwrap();
        assert!(e.contains("presence"), "{e}");
    }
}
