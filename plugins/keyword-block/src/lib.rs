//! `keyword-block`: blocks messages that contain a configured word, and
//! room subjects, reactions and kinds added after this build whose text
//! does. (File names and presence statuses are left to `dlp`.)
//!
//! Config (`[plugins.config]`):
//! - `words`: list of words or phrases (required, non-empty);
//! - `match`: `"whole-word"` (default) or `"substring"`;
//! - `case_insensitive`: fold case before matching (default `true`);
//! - `reason`: text shown to the sender; `{word}` is replaced by the match
//!   (default `message blocked: contains "{word}"`).
//!
//! All words are matched in one pass (Aho-Corasick), so the cost grows with
//! the message, not with the number of words. ASCII messages against an
//! ASCII word list are matched case-insensitively in place; anything else
//! is lower-cased (Unicode) first. Whole-word matching treats any letter or
//! digit next to the match as part of a longer word.

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use imgate_sdk::{Config, Event, Kind, Plugin, Verdict};
use serde::Deserialize;

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum MatchMode {
    #[default]
    WholeWord,
    Substring,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    words: Vec<String>,
    #[serde(default, rename = "match")]
    mode: MatchMode,
    #[serde(default = "yes")]
    case_insensitive: bool,
    #[serde(default)]
    reason: Option<String>,
}

fn yes() -> bool {
    true
}

pub struct KeywordBlock {
    /// Matches the folded patterns in text folded the same way.
    matcher: AhoCorasick,
    /// For ASCII text when every pattern is ASCII: matches without folding
    /// (no allocation), the common case for chat.
    ascii_matcher: Option<AhoCorasick>,
    words: Vec<String>,
    mode: MatchMode,
    case_insensitive: bool,
    reason: String,
}

impl KeywordBlock {
    /// The first configured word found in `body`, if any.
    pub fn find(&self, body: &str) -> Option<&str> {
        if let Some(ascii) = self.ascii_matcher.as_ref().filter(|_| body.is_ascii()) {
            return self.first_match(ascii, body);
        }
        if self.case_insensitive {
            self.first_match(&self.matcher, &body.to_lowercase())
        } else {
            self.first_match(&self.matcher, body)
        }
    }

    fn first_match(&self, matcher: &AhoCorasick, text: &str) -> Option<&str> {
        let mut matches = matcher.find_overlapping_iter(text);
        let hit = match self.mode {
            MatchMode::Substring => matches.next(),
            MatchMode::WholeWord => matches.find(|m| {
                let before = text[..m.start()].chars().next_back();
                let after = text[m.end()..].chars().next();
                !before.is_some_and(char::is_alphanumeric)
                    && !after.is_some_and(char::is_alphanumeric)
            }),
        }?;
        Some(&self.words[hit.pattern().as_usize()])
    }
}

impl Plugin for KeywordBlock {
    fn init(config: Config) -> Result<Self, String> {
        let s: Settings = config.parse()?;
        let words: Vec<String> = s
            .words
            .into_iter()
            .filter(|w| !w.trim().is_empty())
            .collect();
        if words.is_empty() {
            return Err("`words` must list at least one non-empty word".into());
        }
        let patterns: Vec<String> = if s.case_insensitive {
            words.iter().map(|w| w.to_lowercase()).collect()
        } else {
            words.clone()
        };
        let build = |kind, ascii_case_insensitive: bool, patterns: &[String]| {
            AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .kind(Some(kind))
                .ascii_case_insensitive(ascii_case_insensitive)
                .build(patterns)
                .map_err(|e| format!("cannot build the word matcher: {e}"))
        };
        // The general matcher serves the rarer non-ASCII messages: an NFA,
        // cheap to build. The hot ASCII path gets a DFA.
        let matcher = build(AhoCorasickKind::ContiguousNFA, false, &patterns)?;
        // ASCII folding of ASCII text equals full Unicode folding, so an
        // ASCII-only word list can skip lowering the message.
        let ascii_matcher = if words.iter().all(|w| w.is_ascii()) {
            Some(build(AhoCorasickKind::DFA, s.case_insensitive, &words)?)
        } else {
            None
        };
        Ok(KeywordBlock {
            matcher,
            ascii_matcher,
            words,
            mode: s.mode,
            case_insensitive: s.case_insensitive,
            reason: s
                .reason
                .unwrap_or_else(|| "message blocked: contains \"{word}\"".into()),
        })
    }

    fn handle(&mut self, event: &Event<'_>) -> Verdict {
        // A message's or subject's text is one host call: the hot path.
        let found = match event.body() {
            Some(body) => self.find(&body).map(str::to_owned),
            None => match event.kind() {
                Kind::Reaction | Kind::Other(_) => event
                    .texts()
                    .iter()
                    .find_map(|t| self.find(&t.value).map(str::to_owned)),
                _ => None,
            },
        };
        match found {
            Some(word) => {
                Verdict::block(self.reason.replace("{word}", &word)).with_tag("keyword:blocked")
            }
            None => Verdict::allow(),
        }
    }
}

imgate_sdk::export_plugin!(KeywordBlock);

#[cfg(test)]
mod tests {
    use super::*;
    use imgate_sdk::testing::{Harness, encrypted_message, file_offer, message, reaction, subject};
    use serde_json::json;

    fn harness(config: serde_json::Value) -> Harness<KeywordBlock> {
        Harness::new(config).unwrap()
    }

    fn blocked(h: &mut Harness<KeywordBlock>, body: &str) -> bool {
        h.handle(&message("alice@corp.example", "bob@example.net", body))
            .is_block()
    }

    #[test]
    fn whole_word_case_insensitive_by_default() {
        let mut h = harness(json!({"words": ["secret", "Project X"]}));
        assert!(blocked(&mut h, "this is SECRET"));
        assert!(blocked(&mut h, "about project x, tomorrow"));
        assert!(!blocked(&mut h, "secretary duties"));
        assert!(!blocked(&mut h, "topsecret"));
        assert!(!blocked(&mut h, "nothing to see"));
    }

    #[test]
    fn overlapping_partial_match_does_not_hide_a_whole_word() {
        let mut h = harness(json!({"words": ["secretary", "secret"]}));
        assert!(blocked(&mut h, "a secret"));
        assert!(blocked(&mut h, "the secretary"));
    }

    #[test]
    fn substring_mode_matches_inside_words() {
        let mut h = harness(json!({"words": ["secret"], "match": "substring"}));
        assert!(blocked(&mut h, "topsecret"));
    }

    #[test]
    fn case_sensitive_when_asked() {
        let mut h = harness(json!({"words": ["ACME"], "case_insensitive": false}));
        assert!(blocked(&mut h, "ACME deal"));
        assert!(!blocked(&mut h, "acme deal"));
    }

    #[test]
    fn unicode_folds_and_word_boundaries() {
        let mut h = harness(json!({"words": ["straße"]}));
        assert!(blocked(&mut h, "Die STRASSE? nein: die Straße!"));
        assert!(!blocked(&mut h, "Straßenbahn"));
    }

    #[test]
    fn ascii_and_unicode_paths_agree() {
        let mut h = harness(json!({"words": ["secret", "Project X"]}));
        for body in [
            "SeCrEt stuff",
            "über SECRET",
            "project x",
            "projekt x",
            "secretary",
            "ünsecret",
        ] {
            let ascii = body.is_ascii();
            let folded = body.to_lowercase();
            let expected = ["secret", "project x"].iter().any(|w| {
                folded.match_indices(w).any(|(i, _)| {
                    let before = folded[..i].chars().next_back();
                    let after = folded[i + w.len()..].chars().next();
                    !before.is_some_and(char::is_alphanumeric)
                        && !after.is_some_and(char::is_alphanumeric)
                })
            });
            assert_eq!(blocked(&mut h, body), expected, "{body} (ascii: {ascii})");
        }
    }

    #[test]
    fn reason_names_the_word_and_tags() {
        let mut h = harness(json!({"words": ["secret"], "reason": "no {word} here"}));
        let v = h.handle(&message("a", "b", "a secret"));
        assert_eq!(v.action, imgate_sdk::Action::Block("no secret here".into()));
        assert_eq!(v.tags, vec!["keyword:blocked".to_string()]);
    }

    #[test]
    fn other_events_and_encrypted_messages_pass() {
        let mut h = harness(json!({"words": ["secret"]}));
        assert!(h.handle(&file_offer("a", "b", "secret.pdf", 1)).is_allow());
        assert!(h.handle(&encrypted_message("a", "b")).is_allow());
    }

    #[test]
    fn subjects_reactions_and_later_kinds_are_judged_by_their_text() {
        let mut h = harness(json!({"words": ["secret"]}));
        assert!(
            h.handle(&subject("a", "r@muc", "the secret plan"))
                .is_block()
        );
        assert!(h.handle(&subject("a", "r@muc", "lunch")).is_allow());
        let mut r = reaction("a", "r@muc", "m1", "secret");
        assert!(h.handle(&r).is_block());
        r.texts[0].value = "👍".into();
        assert!(h.handle(&r).is_allow());
        let mut later = reaction("a", "r@muc", "m1", "a secret");
        later.kind = "poll".into();
        assert!(h.handle(&later).is_block());
    }

    #[test]
    fn bad_config_is_refused_with_a_reason() {
        let err = Harness::<KeywordBlock>::new(json!({"words": []}))
            .err()
            .unwrap();
        assert!(err.contains("at least one"), "{err}");
        let err = Harness::<KeywordBlock>::new(json!({"words": ["a"], "mtch": "x"}))
            .err()
            .unwrap();
        assert!(err.contains("mtch"), "{err}");
        let err = Harness::<KeywordBlock>::new(json!({"words": ["a"], "match": "fuzzy"}))
            .err()
            .unwrap();
        assert!(err.contains("fuzzy"), "{err}");
    }
}
