//! `link-guard`: blocks outbound messages that link to domains outside an
//! allow-list, tags inbound ones, and counts what it saw.

use imgate_sdk::{Config, Direction, Event, Plugin, Verdict, metrics};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// Domains links may point to, e.g. ["corp.example"]. Subdomains count.
    allowed_domains: Vec<String>,
}

pub struct LinkGuard {
    allowed: Vec<String>,
}

impl LinkGuard {
    /// The first linked host that is not allowed.
    fn foreign_link<'a>(&self, body: &'a str) -> Option<&'a str> {
        body.split_whitespace()
            .filter_map(|word| {
                let rest = word
                    .strip_prefix("https://")
                    .or_else(|| word.strip_prefix("http://"))?;
                rest.split(['/', '?', '#', ':']).next()
            })
            .find(|host| {
                let host = host.to_ascii_lowercase();
                !self
                    .allowed
                    .iter()
                    .any(|d| host == *d || host.ends_with(&format!(".{d}")))
            })
    }
}

impl Plugin for LinkGuard {
    fn init(config: Config) -> Result<Self, String> {
        let s: Settings = config.parse()?;
        Ok(LinkGuard {
            allowed: s
                .allowed_domains
                .into_iter()
                .map(|d| d.to_ascii_lowercase())
                .collect(),
        })
    }

    fn handle(&mut self, event: &Event<'_>) -> Verdict {
        let Some(body) = event.body() else {
            return Verdict::allow();
        };
        let Some(host) = self.foreign_link(&body) else {
            return Verdict::allow();
        };
        metrics::counter_add("foreign_links", 1);
        match event.direction() {
            Direction::Outbound => {
                Verdict::block(format!("links to {host} may not be sent")).with_tag("link:external")
            }
            Direction::Inbound => Verdict::allow().with_tag("link:external"),
        }
    }
}

imgate_sdk::export_plugin!(LinkGuard);

#[cfg(test)]
mod tests {
    use super::*;
    use imgate_sdk::testing::{Harness, inbound, message, with_host};
    use serde_json::json;

    fn guard() -> Harness<LinkGuard> {
        Harness::new(json!({"allowed_domains": ["corp.example"]})).unwrap()
    }

    #[test]
    fn blocks_outbound_foreign_links_and_counts_them() {
        let mut h = guard();
        let v = h.handle(&message(
            "alice@corp.example",
            "bob@ext.example",
            "see https://paste.example/x",
        ));
        assert!(v.is_block());
        assert_eq!(v.tags, ["link:external"]);
        assert!(
            h.handle(&message("a", "b", "see https://wiki.corp.example/page"))
                .is_allow()
        );
        assert_eq!(with_host(|host| host.counters["foreign_links"]), 1);
    }

    #[test]
    fn tags_inbound_foreign_links_without_blocking() {
        let mut h = guard();
        let v = h.handle(&inbound(message(
            "bob@ext.example",
            "alice@corp.example",
            "http://evil.example",
        )));
        assert!(v.is_allow());
        assert_eq!(v.tags, ["link:external"]);
    }

    #[test]
    fn refuses_a_config_without_the_list() {
        assert!(Harness::<LinkGuard>::new(json!({})).is_err());
    }
}
