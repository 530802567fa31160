//! `link-guard`: blocks outbound messages that link to hosts outside an
//! allow-list, tags inbound ones, and counts what it saw. The guide's
//! worked example, written the same way in Python and JavaScript
//! (`sdk/python/examples/link_guard`, `sdk/js/examples/link-guard`):
//! links and hosts are found by the host's `match`, so the three agree on
//! every text, tricky ones included (a control character after a link, the
//! Kelvin sign in a host name).
//!
//! Grants: `match`, `metrics`.

use imgate_sdk::matching::{Matcher, Rule, Scope, normalize_host};
use imgate_sdk::{Config, Direction, Event, Plugin, Verdict, metrics};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// Hosts links may point to, e.g. ["corp.example"]. Subdomains count.
    allowed_domains: Vec<String>,
}

pub struct LinkGuard {
    /// Normalized as link hosts are (`normalize_host`).
    allowed: Vec<String>,
    links: Matcher,
}

impl LinkGuard {
    fn allows(&self, host: &str) -> bool {
        self.allowed.iter().any(|d| {
            host == d
                || host
                    .strip_suffix(d.as_str())
                    .is_some_and(|rest| rest.ends_with('.'))
        })
    }
}

impl Plugin for LinkGuard {
    fn init(config: Config) -> Result<Self, String> {
        let s: Settings = config.parse()?;
        let allowed = s
            .allowed_domains
            .iter()
            .map(|d| {
                normalize_host(d)
                    .ok_or_else(|| format!("`allowed_domains`: `{d}` is not a host name"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let links = Matcher::compile(&[Rule::detector("url")])?;
        // An event without a link is allowed: the host need not call us.
        links.call_only_on_hit(Scope::Texts)?;
        Ok(LinkGuard { allowed, links })
    }

    fn handle(&mut self, event: &Event<'_>) -> Verdict {
        // Every text: the body, rich text, a subject, a file's link.
        let foreign = self
            .links
            .find_in(event, Scope::Texts)
            .into_iter()
            .map(|found| found.hit)
            .find(|hit| !hit.host.as_deref().is_some_and(|h| self.allows(h)));
        let Some(hit) = foreign else {
            return Verdict::allow();
        };
        metrics::counter_add("foreign_links", 1);
        match event.direction() {
            Direction::Outbound => {
                let host = hit.host.unwrap_or(hit.text);
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

    fn says(h: &mut Harness<LinkGuard>, body: &str) -> Verdict {
        h.handle(&message("alice@corp.example", "bob@ext.example", body))
    }

    #[test]
    fn blocks_outbound_foreign_links_and_counts_them() {
        let mut h = guard();
        let v = says(&mut h, "see https://paste.example/x");
        assert_eq!(
            v.action,
            imgate_sdk::Action::Block("links to paste.example may not be sent".into())
        );
        assert_eq!(v.tags, ["link:external"]);
        assert!(says(&mut h, "see https://wiki.corp.example/page").is_allow());
        assert!(says(&mut h, "no link at all").is_allow());
        assert_eq!(with_host(|host| host.counters["foreign_links"]), 1);
    }

    #[test]
    fn hosts_are_read_as_a_browser_reads_them() {
        let mut h = guard();
        assert!(says(&mut h, "https://wi\u{212A}i.CORP.example/").is_allow());
        assert!(says(&mut h, "https://evil.example\u{1C}.corp.example").is_block());
        assert!(says(&mut h, "https://corp.example.evil.example").is_block());
        assert!(says(&mut h, "https://evil.example\\@corp.example/").is_block());
        assert!(says(&mut h, "http://me@corp.example:8443/").is_allow());
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
    fn refuses_a_config_without_the_list_or_with_a_bad_host() {
        assert!(Harness::<LinkGuard>::new(json!({})).is_err());
        let err = Harness::<LinkGuard>::new(json!({"allowed_domains": ["a b"]}))
            .err()
            .unwrap();
        assert!(err.contains("`a b`"), "{err}");
    }
}
