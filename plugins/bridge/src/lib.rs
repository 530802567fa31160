//! `bridge`: links rooms across networks. What is said in a linked XMPP
//! room, IRC channel or Matrix room is said in the others, through the
//! gateway's relay identities, after the policy chain allowed it on its
//! own network; the host then judges each copy on the other network too.
//!
//! It is an observer: it sends only what the chain delivered (the text
//! after any rewrite), and the host discards what it sent for an event
//! that was stopped anyway. It bridges what a relay heard (attribute
//! `imgate.relay`), so a message reaches the other side once however many
//! local users were in the room; the host never shows it a copy, so two
//! bridges cannot loop.
//!
//! See README.md for the config.

use imgate_sdk::bridge::Outgoing;
use imgate_sdk::{Config, Event, Kind, Outcome, Plugin, log};
use serde::Deserialize;

/// The attribute a relay identity puts on what it hears.
pub const HEARD_BY_RELAY: &str = "imgate.relay";

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Way {
    #[default]
    Both,
    XmppToIrc,
    IrcToXmpp,
}

impl Way {
    /// Whether a message goes from `from` to `to`: the one-way settings
    /// name the XMPP–IRC pair; Matrix links both ways.
    fn allows(self, from: &str, to: &str) -> bool {
        !matches!(
            (self, from, to),
            (Way::XmppToIrc, "irc", "xmpp") | (Way::IrcToXmpp, "xmpp", "irc")
        )
    }
}

/// One linked room on each of two or three networks.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Link {
    xmpp: Option<String>,
    irc: Option<String>,
    /// A room id (`!abc:corp.example`) or alias (`#lobby:corp.example`).
    matrix: Option<String>,
}

impl Link {
    /// This link's room on `network`.
    fn room(&self, network: &str) -> Option<&str> {
        match network {
            "xmpp" => self.xmpp.as_deref(),
            "irc" => self.irc.as_deref(),
            "matrix" => self.matrix.as_deref(),
            _ => None,
        }
    }
}

const NETWORKS: [&str; 3] = ["xmpp", "irc", "matrix"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    links: Vec<Link>,
    #[serde(default)]
    direction: Way,
    /// Say in the other room when someone joins or leaves this one.
    #[serde(default)]
    mirror_membership: bool,
}

pub struct Bridge {
    links: Vec<Link>,
    way: Way,
    mirror_membership: bool,
}

impl Bridge {
    /// Where a message said in `room` on `network` goes: the link's room
    /// on each other network, as `direction` allows.
    fn destinations(&self, network: &str, room: &str) -> Vec<(&'static str, String)> {
        let Some(link) = self.links.iter().find(|l| {
            l.room(network)
                .is_some_and(|r| r.eq_ignore_ascii_case(room))
        }) else {
            return Vec::new();
        };
        NETWORKS
            .into_iter()
            .filter(|to| *to != network && self.way.allows(network, to))
            .filter_map(|to| link.room(to).map(|r| (to, r.to_owned())))
            .collect()
    }

    /// What to send for `event`: a copy for each linked room it goes to.
    pub fn outgoing(&self, event: &Event<'_>, delivered_body: Option<String>) -> Vec<Outgoing> {
        if event.attribute(HEARD_BY_RELAY).is_none() {
            return Vec::new();
        }
        let Some(room) = event.room() else {
            return Vec::new();
        };
        self.destinations(&event.network(), &room)
            .into_iter()
            .filter_map(|(network, to)| {
                self.copy(event, delivered_body.clone(), &room, network, &to)
            })
            .collect()
    }

    /// The copy of `event` for `to` on `network`.
    fn copy(
        &self,
        event: &Event<'_>,
        delivered_body: Option<String>,
        room: &str,
        network: &str,
        to: &str,
    ) -> Option<Outgoing> {
        let author = display_name(&event.network(), &event.sender());
        let out = Outgoing::new(network, to);
        match event.kind() {
            Kind::Message => {
                let body = delivered_body.or_else(|| event.body())?;
                let mut out = out.body(&body).author(&author);
                if event.emote() {
                    out = out.emote();
                }
                // An edit, retraction or reply keeps its relation: the host
                // finds the message it follows on the other side.
                if let Some(r) = event
                    .relations()
                    .into_iter()
                    .find(|r| matches!(r.rel_type.as_str(), "edit" | "retraction" | "reply"))
                {
                    out = out.relates_to(&r.rel_type, &r.target, None);
                }
                Some(out)
            }
            Kind::Reaction => {
                let r = event
                    .relations()
                    .into_iter()
                    .find(|r| r.rel_type == "reaction")?;
                let key = r.key.clone().unwrap_or_default();
                Some(
                    out.body(&key)
                        .author(&author)
                        .relates_to("reaction", &r.target, Some(&key)),
                )
            }
            Kind::Membership if self.mirror_membership => {
                let m = event.membership()?;
                let who = m.nick.clone().unwrap_or_else(|| author.clone());
                let change = match m.change.as_str() {
                    "join" => "joined",
                    "leave" => "left",
                    _ => return None,
                };
                let from = event.network();
                Some(out.body(&format!("* {who} ({from}) {change} {room}")))
            }
            _ => None,
        }
    }
}

/// How an author is shown on the other side: a room nick, a bare JID's
/// local part, a Matrix user's localpart.
pub fn display_name(network: &str, sender: &str) -> String {
    match network {
        "xmpp" => match sender.split_once('/') {
            Some((_, nick)) if !nick.is_empty() => nick.to_owned(),
            _ => sender.split('@').next().unwrap_or(sender).to_owned(),
        },
        "matrix" => sender
            .trim_start_matches('@')
            .split(':')
            .next()
            .unwrap_or(sender)
            .to_owned(),
        _ => sender.split('!').next().unwrap_or(sender).to_owned(),
    }
}

impl Plugin for Bridge {
    fn init(config: Config) -> Result<Self, String> {
        let s: Settings = config.parse()?;
        if s.links.is_empty() {
            return Err("`links` must list at least one { xmpp = \"room@conference…\", irc = \"#channel\", matrix = \"!room:server\" } (any two or three)".into());
        }
        for l in &s.links {
            let named = NETWORKS.iter().filter(|n| l.room(n).is_some()).count();
            if named < 2 {
                return Err(format!("link {l:?}: name rooms on at least two networks"));
            }
            if let Some(x) = &l.xmpp
                && !x.contains('@')
            {
                return Err(format!(
                    "link `{x}`: `xmpp` must be a room JID (room@conference.example)"
                ));
            }
            if let Some(i) = &l.irc
                && !i.starts_with(['#', '&', '+', '!'])
            {
                return Err(format!("link `{i}`: `irc` must be a channel (#name)"));
            }
            // Room ids are `!opaque` (with `:server` before room version 12).
            if let Some(m) = &l.matrix
                && !(m.len() > 1 && (m.starts_with('!') || (m.starts_with('#') && m.contains(':'))))
            {
                return Err(format!(
                    "link `{m}`: `matrix` must be a room id (!abc) or alias (#name:server)"
                ));
            }
        }
        Ok(Bridge {
            links: s.links,
            way: s.direction,
            mirror_membership: s.mirror_membership,
        })
    }

    fn observe(&mut self, event: &Event<'_>, outcome: &Outcome<'_>) -> Result<(), String> {
        if !outcome.delivered() {
            return Ok(());
        }
        for out in self.outgoing(event, outcome.delivered_body()) {
            if let Err(e) = out.send() {
                log::warn(&format!("not bridged to {} {}: {e}", out.network, out.to));
            }
        }
        Ok(())
    }

    fn interest(&self) -> Option<Vec<String>> {
        Some(
            ["message", "reaction", "membership"]
                .map(str::to_owned)
                .to_vec(),
        )
    }
}

imgate_sdk::export_plugin!(Bridge, observer);

#[cfg(test)]
mod tests {
    use super::*;
    use imgate_sdk::testing::{Harness, message, with_host};
    use imgate_sdk::{EventRecord, OutcomeRecord, Relation};
    use serde_json::json;

    fn bridge(extra: serde_json::Value) -> Harness<Bridge> {
        let mut config = json!({
            "links": [{"xmpp": "lobby@conference.corp.example", "irc": "#lobby"}]
        });
        for (k, v) in extra.as_object().unwrap() {
            config[k] = v.clone();
        }
        Harness::new(config).unwrap()
    }

    fn heard(network: &str, room: &str, sender: &str, body: &str) -> EventRecord {
        let mut e = message(sender, "", body);
        e.network = network.into();
        e.recipient = None;
        e.room = Some(room.into());
        e.attributes = vec![(HEARD_BY_RELAY.into(), "relay".into())];
        e
    }

    fn allowed() -> OutcomeRecord {
        OutcomeRecord::of(&imgate_sdk::Action::Allow)
    }

    fn sent() -> Vec<imgate_sdk::testing::SentMessage> {
        with_host(|h| h.sent.clone())
    }

    #[test]
    fn a_three_network_link_sends_to_both_other_rooms() {
        let mut h = Harness::<Bridge>::new(json!({"links": [
            {"xmpp": "lobby@conference.corp.example", "irc": "#lobby", "matrix": "!lobby:corp.example"}
        ], "direction": "xmpp-to-irc"}))
        .unwrap();
        h.observe(
            &heard("matrix", "!lobby:corp.example", "@carol:corp.example", "hi"),
            &allowed(),
        )
        .unwrap();
        let mut to: Vec<(String, String, Option<String>)> = sent()
            .iter()
            .map(|s| {
                (
                    s.message.network.clone(),
                    s.message.to.clone(),
                    s.message.author.clone(),
                )
            })
            .collect();
        to.sort();
        assert_eq!(
            to,
            [
                ("irc".into(), "#lobby".into(), Some("carol".into())),
                (
                    "xmpp".into(),
                    "lobby@conference.corp.example".into(),
                    Some("carol".into())
                )
            ]
        );
        // One way between XMPP and IRC; Matrix both ways.
        h.observe(&heard("irc", "#lobby", "bob!b@h", "yo"), &allowed())
            .unwrap();
        let last: Vec<String> = sent()[2..]
            .iter()
            .map(|s| s.message.network.clone())
            .collect();
        assert_eq!(last, ["matrix"]);
        assert!(
            Harness::<Bridge>::new(json!({"links": [{"matrix": "!a:x"}]}))
                .err()
                .unwrap()
                .contains("at least two")
        );
    }

    #[test]
    fn a_room_message_goes_to_the_linked_channel_with_its_author() {
        let mut h = bridge(json!({}));
        let e = heard(
            "xmpp",
            "lobby@conference.corp.example",
            "lobby@conference.corp.example/alice",
            "hi all",
        );
        h.observe(&e, &allowed()).unwrap();
        let s = sent();
        assert_eq!(s.len(), 1);
        assert_eq!(
            (s[0].message.network.as_str(), s[0].message.to.as_str()),
            ("irc", "#lobby")
        );
        assert_eq!(s[0].message.body.as_deref(), Some("hi all"));
        assert_eq!(s[0].message.author.as_deref(), Some("alice"));
        assert_eq!(s[0].origin, e.id);

        let mut h = bridge(json!({}));
        h.observe(&heard("irc", "#Lobby", "bob", "hello"), &allowed())
            .unwrap();
        let s = sent();
        assert_eq!(
            (s[0].message.network.as_str(), s[0].message.to.as_str()),
            ("xmpp", "lobby@conference.corp.example")
        );
        assert_eq!(s[0].message.author.as_deref(), Some("bob"));
    }

    #[test]
    fn only_what_a_relay_heard_in_a_linked_room_and_was_delivered() {
        let mut h = bridge(json!({}));
        let mut local = heard(
            "xmpp",
            "lobby@conference.corp.example",
            "alice@corp.example",
            "x",
        );
        local.attributes.clear();
        h.observe(&local, &allowed()).unwrap();
        h.observe(&heard("irc", "#elsewhere", "bob", "x"), &allowed())
            .unwrap();
        let blocked = OutcomeRecord {
            action: "block".into(),
            ..Default::default()
        };
        h.observe(&heard("irc", "#lobby", "bob", "x"), &blocked)
            .unwrap();
        assert!(sent().is_empty());
    }

    #[test]
    fn the_rewritten_text_is_what_is_bridged() {
        let mut h = bridge(json!({}));
        let outcome = OutcomeRecord {
            action: "rewrite".into(),
            delivered_body: Some("card ****".into()),
            ..Default::default()
        };
        h.observe(&heard("irc", "#lobby", "bob", "card 4111"), &outcome)
            .unwrap();
        assert_eq!(sent()[0].message.body.as_deref(), Some("card ****"));
    }

    #[test]
    fn one_way_links_bridge_one_way() {
        let mut h = bridge(json!({"direction": "xmpp-to-irc"}));
        h.observe(&heard("irc", "#lobby", "bob", "x"), &allowed())
            .unwrap();
        assert!(sent().is_empty());
        h.observe(
            &heard(
                "xmpp",
                "lobby@conference.corp.example",
                "lobby@conference.corp.example/alice",
                "x",
            ),
            &allowed(),
        )
        .unwrap();
        assert_eq!(sent().len(), 1);
    }

    #[test]
    fn an_edit_keeps_its_relation() {
        let mut h = bridge(json!({}));
        let mut e = heard(
            "xmpp",
            "lobby@conference.corp.example",
            "lobby@conference.corp.example/alice",
            "fixed",
        );
        e.relations = vec![Relation {
            rel_type: "edit".into(),
            target: "m1".into(),
            key: None,
        }];
        h.observe(&e, &allowed()).unwrap();
        assert_eq!(
            sent()[0].message.relation,
            Some(("edit".into(), "m1".into(), None))
        );
    }

    #[test]
    fn joins_are_mirrored_only_when_asked() {
        let join = |h: &mut Harness<Bridge>| {
            let mut e = heard("irc", "#lobby", "carol", "");
            e.kind = "membership".into();
            e.body = None;
            e.texts.clear();
            e.membership = Some(imgate_sdk::Membership {
                change: "join".into(),
                occupant: "carol".into(),
                nick: Some("carol".into()),
                reason: None,
            });
            h.observe(&e, &allowed()).unwrap();
        };
        let mut h = bridge(json!({}));
        join(&mut h);
        assert!(sent().is_empty());
        let mut h = bridge(json!({"mirror_membership": true}));
        join(&mut h);
        assert_eq!(
            sent()[0].message.body.as_deref(),
            Some("* carol (irc) joined #lobby")
        );
    }

    #[test]
    fn a_bad_link_is_refused_at_init() {
        let err = Harness::<Bridge>::new(json!({"links": [{"xmpp": "lobby", "irc": "#x"}]}))
            .err()
            .unwrap();
        assert!(err.contains("room JID"), "{err}");
        assert!(Harness::<Bridge>::new(json!({"links": []})).is_err());
        assert!(
            Harness::<Bridge>::new(
                json!({"links": [{"xmpp": "a@b", "irc": "#x"}], "direction": "up"})
            )
            .is_err()
        );
    }
}
