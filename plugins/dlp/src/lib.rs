//! `dlp`: finds sensitive data in messages — payment card numbers (Luhn),
//! US SSNs (valid ranges only), IBANs (mod-97), cloud and SaaS secret
//! tokens, PEM private keys, email addresses, and the operator's own
//! regexes and word lists — and, per detector, blocks the message, redacts
//! the match, or tags it.
//!
//! A message's or subject's text is what it redacts. Every other text a
//! user wrote — a file's name, a reaction, a status, and the texts of
//! kinds added after this build (`Event::texts`) — is searched too; a
//! finding there that would be redacted blocks instead, since only the
//! body can be rewritten.
//!
//! The matching is the host's (`match`, which the operator grants): every
//! detector is compiled into one matcher in `init` and run in native code.
//! It never backtracks, so the time is linear in the message whatever it
//! contains; candidates are checked (Luhn, SSN ranges, mod-97), so a
//! 16-digit number that fails Luhn is not a card. A custom word list
//! matches whole words ignoring case by the host's rules, the same for
//! every plugin language.
//!
//! See README.md for the config reference.

use std::collections::BTreeMap;

use imgate_sdk::matching::{Matcher, Rule};
use imgate_sdk::{Config, Event, Plugin, Verdict};
use serde::Deserialize;

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Act {
    Off,
    Tag,
    Redact,
    Block,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// Built-in detectors and what each does; unnamed ones keep their
    /// defaults (see `defaults`).
    #[serde(default)]
    detectors: BTreeMap<String, Act>,
    #[serde(default)]
    custom: Vec<Custom>,
    /// Shown to the sender of a blocked message; `{detectors}` is replaced.
    #[serde(default = "default_reason")]
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Custom {
    name: String,
    #[serde(default)]
    regex: Option<String>,
    #[serde(default)]
    words: Vec<String>,
    action: Act,
}

fn default_reason() -> String {
    "message blocked: it contains sensitive data ({detectors})".into()
}

/// The built-in detectors and their default actions.
const BUILT_IN: [(&str, Act); 7] = [
    ("card", Act::Redact),
    ("ssn", Act::Block),
    ("iban", Act::Redact),
    ("secret", Act::Block),
    ("private-key", Act::Block),
    ("email", Act::Off),
    ("aws-key", Act::Block),
];

/// A rule of the matcher: what it is called and what it does.
struct Detector {
    name: String,
    act: Act,
}

pub struct Dlp {
    /// Every enabled detector, built-in and custom, one rule each, in the
    /// order of `detectors`.
    matcher: Matcher,
    detectors: Vec<Detector>,
    reason: String,
}

/// One thing found: where, by which detector.
#[derive(Debug, PartialEq)]
struct Finding {
    start: usize,
    end: usize,
    detector: usize,
}

impl Dlp {
    fn findings(&self, body: &str) -> Vec<Finding> {
        // By start, the longer first: what `redact` walks.
        self.matcher
            .find(body)
            .into_iter()
            .map(|h| Finding {
                start: h.start,
                end: h.end,
                detector: h.rule,
            })
            .collect()
    }

    /// The body with every redacting finding masked.
    fn redact(&self, body: &str, findings: &[Finding]) -> String {
        let mut out = String::with_capacity(body.len());
        let mut at = 0;
        for f in findings {
            let d = &self.detectors[f.detector];
            if d.act != Act::Redact || f.start < at {
                continue;
            }
            out.push_str(&body[at..f.start]);
            out.push_str(&mask(&d.name, &body[f.start..f.end]));
            at = f.end;
        }
        out.push_str(&body[at..]);
        out
    }
}

/// How a match is masked: numbers keep their shape and last four digits
/// (`**** **** **** 1234`), anything else is named.
fn mask(detector: &str, text: &str) -> String {
    match detector {
        "card" | "ssn" | "iban" => {
            let total = text.chars().filter(|c| c.is_ascii_alphanumeric()).count();
            let mut seen = 0;
            text.chars()
                .map(|c| {
                    if !c.is_ascii_alphanumeric() {
                        return c;
                    }
                    seen += 1;
                    // IBANs keep their country code too.
                    let keep = seen > total.saturating_sub(4) || (detector == "iban" && seen <= 2);
                    if keep { c } else { '*' }
                })
                .collect()
        }
        name => format!("[redacted:{name}]"),
    }
}

impl Plugin for Dlp {
    fn init(config: Config) -> Result<Self, String> {
        let s: Settings = config.parse()?;
        for name in s.detectors.keys() {
            if !BUILT_IN.iter().any(|(known, _)| known == name) {
                return Err(format!("unknown detector `{name}`"));
            }
        }
        let mut rules = Vec::new();
        let mut detectors = Vec::new();
        for (name, default) in BUILT_IN {
            let act = s.detectors.get(name).copied().unwrap_or(default);
            if act != Act::Off {
                rules.push(Rule::detector(name));
                detectors.push(Detector {
                    name: name.into(),
                    act,
                });
            }
        }
        for c in &s.custom {
            let rule = match (&c.regex, c.words.is_empty()) {
                (Some(re), true) => Rule::regex(re),
                (None, false) => Rule::words(c.words.iter().map(|w| w.trim())),
                _ => {
                    return Err(format!(
                        "custom detector `{}`: set exactly one of regex and words",
                        c.name
                    ));
                }
            };
            // An operator's rule that is off is still checked.
            Matcher::compile(std::slice::from_ref(&rule))
                .map_err(|e| format!("detector `{}`: {e}", c.name))?;
            if c.action != Act::Off {
                rules.push(rule);
                detectors.push(Detector {
                    name: c.name.clone(),
                    act: c.action,
                });
            }
        }
        if rules.is_empty() {
            return Err("every detector is off: nothing to look for".into());
        }
        let matcher = Matcher::compile(&rules).map_err(|e| format!("detectors: {e}"))?;
        Ok(Dlp {
            matcher,
            detectors,
            reason: s.reason,
        })
    }

    fn handle(&mut self, event: &Event<'_>) -> Verdict {
        let Some(body) = event.body() else {
            return self.handle_texts(event);
        };
        let findings = self.findings(&body);
        if findings.is_empty() {
            return Verdict::allow();
        }
        let mut names: Vec<&str> = findings
            .iter()
            .map(|f| self.detectors[f.detector].name.as_str())
            .collect();
        names.dedup();
        names.sort_unstable();
        names.dedup();
        let strongest = findings
            .iter()
            .map(|f| self.detectors[f.detector].act)
            .max()
            .unwrap_or(Act::Tag);
        let mut verdict = match strongest {
            Act::Block => {
                let blocking: Vec<&str> = names
                    .iter()
                    .copied()
                    .filter(|n| {
                        self.detectors
                            .iter()
                            .any(|d| d.name == *n && d.act == Act::Block)
                    })
                    .collect();
                Verdict::block(self.reason.replace("{detectors}", &blocking.join(", ")))
            }
            Act::Redact => Verdict::rewrite(self.redact(&body, &findings)),
            _ => Verdict::allow(),
        };
        for n in names {
            verdict = verdict.with_tag(format!("dlp:{n}"));
        }
        verdict
    }
}

impl Dlp {
    /// An event with no rewritable text: judged by every text it holds.
    fn handle_texts(&self, event: &Event<'_>) -> Verdict {
        let mut names: Vec<&str> = Vec::new();
        let mut strongest = Act::Off;
        for text in event.texts() {
            for f in self.findings(&text.value) {
                let d = &self.detectors[f.detector];
                names.push(&d.name);
                strongest = strongest.max(d.act);
            }
        }
        names.sort_unstable();
        names.dedup();
        let mut verdict = if strongest >= Act::Redact {
            Verdict::block(self.reason.replace("{detectors}", &names.join(", ")))
        } else {
            Verdict::allow()
        };
        for n in names {
            verdict = verdict.with_tag(format!("dlp:{n}"));
        }
        verdict
    }
}

imgate_sdk::export_plugin!(Dlp);

#[cfg(test)]
mod tests {
    use super::*;
    use imgate_sdk::Action;
    use imgate_sdk::testing::{Harness, file_offer, message, reaction};
    use serde_json::json;

    #[test]
    fn texts_without_a_body_are_searched_and_what_would_be_redacted_blocks() {
        let mut h: Harness<Dlp> = Harness::new(json!({})).unwrap();
        let v = h.handle(&file_offer("a", "b", "card 4111 1111 1111 1111.pdf", 3));
        assert!(v.is_block(), "{v:?}");
        assert!(v.tags.contains(&"dlp:card".to_string()));
        let v = h.handle(&reaction("a", "r@muc", "m1", "4111111111111111"));
        assert!(v.is_block(), "{v:?}");
        assert!(h.handle(&reaction("a", "r@muc", "m1", "👍")).is_allow());
    }

    fn run(config: serde_json::Value, body: &str) -> Verdict {
        let mut h: Harness<Dlp> = Harness::new(config).unwrap();
        h.handle(&message("alice@corp.example", "bob@example.net", body))
    }

    fn rewritten(v: &Verdict) -> &str {
        match &v.action {
            Action::Rewrite(b) => b,
            other => panic!("not a rewrite: {other:?}"),
        }
    }

    #[test]
    fn cards_are_redacted_keeping_the_last_four_and_luhn_failures_are_not_cards() {
        let v = run(json!({}), "card 4111 1111 1111 1111 exp 12/29");
        assert_eq!(rewritten(&v), "card **** **** **** 1111 exp 12/29");
        assert!(v.tags.contains(&"dlp:card".to_string()));
        assert_eq!(
            rewritten(&run(json!({}), "pay 5500-0000-0000-0004")),
            "pay ****-****-****-0004"
        );
        // 16 digits, Luhn fails: an order number, not a card.
        assert!(run(json!({}), "order 4111 1111 1111 1112 shipped").is_allow());
        assert!(run(json!({}), "call 0044 20 7946 0958").is_allow());
    }

    #[test]
    fn ssns_in_valid_ranges_only() {
        assert!(run(json!({}), "ssn 123-45-6789").is_block());
        for invalid in [
            "000-12-3456",
            "666-12-3456",
            "900-12-3456",
            "123-00-4567",
            "123-45-0000",
        ] {
            assert!(
                run(json!({}), &format!("id {invalid}")).is_allow(),
                "{invalid}"
            );
        }
    }

    #[test]
    fn ibans_with_a_valid_checksum() {
        let v = run(json!({}), "wire to GB82 WEST 1234 5698 7654 32 today");
        assert_eq!(rewritten(&v), "wire to GB** **** **** **** **54 32 today");
        assert!(run(json!({}), "wire to GB82 WEST 1234 5698 7654 33 today").is_allow());
    }

    #[test]
    fn secrets_and_private_keys_are_blocked_naming_the_detector() {
        for body in [
            "key AKIAIOSFODNN7EXAMPLE",
            "token ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            "slack xoxb-1234567890-abcdefghij",
            "google AIzaSyA-1234567890abcdefghijklmnopqrstu",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
            "-----BEGIN PRIVATE KEY-----\nMIIE (truncated)",
        ] {
            let v = run(json!({}), body);
            assert!(v.is_block(), "{body}");
        }
        match run(json!({}), "key AKIAIOSFODNN7EXAMPLE").action {
            Action::Block(reason) => assert!(reason.contains("aws-key"), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert!(run(json!({}), "ghp_ is a prefix, AKIA too").is_allow());
    }

    #[test]
    fn emails_and_custom_detectors_follow_their_configured_action() {
        assert!(
            run(json!({}), "mail bob@example.net").is_allow(),
            "email is off by default"
        );
        let v = run(
            json!({"detectors": {"email": "tag"}}),
            "mail bob@example.net",
        );
        assert!(v.is_allow() && v.tags.contains(&"dlp:email".to_string()));
        let v = run(
            json!({"detectors": {"email": "redact"}}),
            "mail bob@example.net now",
        );
        assert_eq!(rewritten(&v), "mail [redacted:email] now");
        let config = json!({
            "custom": [
                {"name": "project-code", "regex": "PRJ-[0-9]{4}", "action": "redact"},
                {"name": "codewords", "words": ["Falcon", "osprey"], "action": "block"},
            ],
        });
        assert_eq!(
            rewritten(&run(config.clone(), "see PRJ-1234")),
            "see [redacted:project-code]"
        );
        assert!(run(config.clone(), "about FALCON").is_block());
        assert!(
            run(config, "falconry is a hobby").is_allow(),
            "whole words only"
        );
    }

    #[test]
    fn block_wins_over_redact_and_all_findings_are_tagged() {
        let v = run(json!({}), "4111 1111 1111 1111 and 123-45-6789");
        assert!(v.is_block());
        assert!(
            v.tags.contains(&"dlp:card".to_string()) && v.tags.contains(&"dlp:ssn".to_string())
        );
    }

    #[test]
    fn adversarial_input_stays_linear() {
        // Long runs of digits, separators and near-misses; the regex
        // engine's guarantee is what keeps this fast, the assertion only
        // that it finishes with the right answer.
        let body = "1 ".repeat(200_000) + &"4".repeat(100_000) + &"-".repeat(100_000);
        assert!(run(json!({}), &body).is_allow());
    }

    #[test]
    fn bad_config_is_refused_with_a_reason() {
        assert!(Harness::<Dlp>::new(json!({"detectors": {"dna": "block"}})).is_err());
        let e =
            Harness::<Dlp>::new(json!({"custom": [{"name": "x", "regex": "(", "action": "tag"}]}))
                .err()
                .unwrap();
        assert!(e.contains("`x`"), "{e}");
        assert!(Harness::<Dlp>::new(json!({"custom": [{"name": "y", "action": "tag"}]})).is_err());
    }
}
