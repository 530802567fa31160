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
//! Matching uses the `regex` crate, which never backtracks: the time is
//! linear in the message, whatever it contains. Candidates are then checked
//! (Luhn, SSN ranges, mod-97), so a 16-digit number that fails Luhn is not
//! a card.
//!
//! See README.md for the config reference.

use std::collections::BTreeMap;

use imgate_sdk::{Config, Event, Plugin, Verdict};
use regex::{Regex, RegexBuilder};
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

#[derive(Clone, Copy, PartialEq, Debug)]
enum Check {
    None,
    Luhn,
    Ssn,
    Iban,
}

struct Detector {
    name: String,
    pattern: Regex,
    check: Check,
    act: Act,
}

pub struct Dlp {
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

fn digits(s: &str) -> Vec<u32> {
    s.chars().filter_map(|c| c.to_digit(10)).collect()
}

fn luhn(s: &str) -> bool {
    let d = digits(s);
    if !(13..=19).contains(&d.len()) {
        return false;
    }
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 { y - 9 } else { y }
            } else {
                x
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// SSA rules: no area 000, 666 or 900-999; no group 00; no serial 0000.
fn valid_ssn(s: &str) -> bool {
    let d = digits(s);
    if d.len() != 9 {
        return false;
    }
    let area = d[0] * 100 + d[1] * 10 + d[2];
    let group = d[3] * 10 + d[4];
    let serial = d[5] * 1000 + d[6] * 100 + d[7] * 10 + d[8];
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// ISO 13616: move the first four characters to the end, letters to
/// numbers, and the whole must be 1 mod 97.
fn valid_iban(s: &str) -> bool {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut rem: u32 = 0;
    for c in tail.chars().chain(head.chars()) {
        let v = match c.to_digit(36) {
            Some(v) => v,
            None => return false,
        };
        for digit in if v >= 10 {
            vec![v / 10, v % 10]
        } else {
            vec![v]
        } {
            rem = (rem * 10 + digit) % 97;
        }
    }
    rem == 1
}

fn built_in(name: &str) -> Result<(&'static str, Check), String> {
    Ok(match name {
        // 13 to 19 digits, optionally grouped by spaces or dashes.
        "card" => (r"\b\d(?:[ -]?\d){12,18}\b", Check::Luhn),
        "ssn" => (r"\b\d{3}-\d{2}-\d{4}\b", Check::Ssn),
        "iban" => (r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b", Check::Iban),
        "aws-key" => (r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", Check::None),
        // GitHub, Slack and Google API key shapes.
        "secret" => (
            r"\b(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82}|xox[baprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35})",
            Check::None,
        ),
        "private-key" => (
            r"(?s)-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----.*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|\z)",
            Check::None,
        ),
        "email" => (
            r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b",
            Check::None,
        ),
        other => return Err(format!("unknown detector `{other}`")),
    })
}

fn compile(name: &str, pattern: &str, case_insensitive: bool) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .case_insensitive(case_insensitive)
        // Bounds the compiled size of an operator's regex.
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("detector `{name}`: {e}"))
}

impl Dlp {
    fn findings(&self, body: &str) -> Vec<Finding> {
        let mut out = Vec::new();
        for (i, d) in self.detectors.iter().enumerate() {
            for m in d.pattern.find_iter(body) {
                let ok = match d.check {
                    Check::None => true,
                    Check::Luhn => luhn(m.as_str()),
                    Check::Ssn => valid_ssn(m.as_str()),
                    Check::Iban => valid_iban(m.as_str()),
                };
                if ok {
                    out.push(Finding {
                        start: m.start(),
                        end: m.end(),
                        detector: i,
                    });
                }
            }
        }
        out.sort_by_key(|f| (f.start, std::cmp::Reverse(f.end)));
        out
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
        let mut detectors = Vec::new();
        for (name, default) in BUILT_IN {
            let act = s.detectors.get(name).copied().unwrap_or(default);
            if act == Act::Off {
                continue;
            }
            let (pattern, check) = built_in(name)?;
            detectors.push(Detector {
                name: name.into(),
                pattern: compile(name, pattern, false)?,
                check,
                act,
            });
        }
        for name in s.detectors.keys() {
            built_in(name)?;
        }
        for c in &s.custom {
            let pattern = match (&c.regex, c.words.is_empty()) {
                (Some(re), true) => compile(&c.name, re, false)?,
                (None, false) => {
                    let alternatives: Vec<String> =
                        c.words.iter().map(|w| regex::escape(w.trim())).collect();
                    compile(
                        &c.name,
                        &format!(r"\b(?:{})\b", alternatives.join("|")),
                        true,
                    )?
                }
                _ => {
                    return Err(format!(
                        "custom detector `{}`: set exactly one of regex and words",
                        c.name
                    ));
                }
            };
            if c.action != Act::Off {
                detectors.push(Detector {
                    name: c.name.clone(),
                    pattern,
                    check: Check::None,
                    act: c.action,
                });
            }
        }
        Ok(Dlp {
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
