//! imgate's text matchers: the host side of the contract's `match`
//! interface, and the Rust SDK's test harness.
//!
//! A plugin compiles its rules once (keyword lists, regexes, the built-in
//! detectors) and asks for hits in each text. What a word character is,
//! what "ignoring case" means and what a link is are defined here and
//! nowhere else, so a plugin written in Rust, Python or JavaScript that
//! uses `match` gives the same answer by construction:
//! - a word character is a Unicode letter or number ([`is_word_char`]);
//! - case is ignored by Unicode simple case folding ([`fold`]);
//! - links and hosts are as [`url`] says.
//!
//! Matching is linear in the text: Aho-Corasick for keywords, the `regex`
//! crate (no backtracking, compiled size bounded) for patterns.

pub mod detectors;
pub mod fold;
mod keywords;
pub mod url;

use regex::{Regex, RegexBuilder};

use detectors::Check;
use keywords::Keywords;

pub use url::normalize_host;

/// Most rules one matcher compiles.
pub const MAX_RULES: usize = 256;
/// Most keywords, across a matcher's lists.
pub const MAX_WORDS: usize = 100_000;
/// Most bytes of keywords and regex sources, across a matcher's rules
/// (a megabyte of keywords compiles to about 15 MB).
pub const MAX_SOURCE_BYTES: usize = 1 << 20;
/// Most regexes (and built-in detectors) in one matcher.
pub const MAX_REGEXES: usize = 32;
/// Largest compiled form of one regex, and of its search cache.
pub const MAX_REGEX_BYTES: usize = 1 << 20;
/// Most hits one `find` returns (the first ones, in order).
pub const MAX_HITS: usize = 10_000;

/// Whether `c` belongs to a word: a Unicode letter (Alphabetic, which
/// includes some combining marks) or number. `_` is not.
pub fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MatchError {
    #[error("{0}")]
    Rule(String),
    #[error("rule {index}: {message}")]
    At { index: usize, message: String },
}

/// What one rule looks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Rule {
    /// Any of these words or phrases.
    Keywords {
        words: Vec<String>,
        /// No word character right before or after the match.
        whole_word: bool,
        /// By simple case folding.
        ignore_case: bool,
    },
    /// A regular expression in the `regex` crate's syntax.
    Regex { pattern: String, ignore_case: bool },
    /// A built-in detector by name ([`detectors::NAMES`]).
    Detector(String),
}

/// One thing found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The rule's index in the list the matcher was compiled from.
    pub rule: usize,
    /// Which keyword of a keyword rule; 0 for other rules.
    pub item: usize,
    /// Byte offsets in the text searched.
    pub start: usize,
    pub end: usize,
    /// A link's host ([`url`]); `None` for other hits and for a link whose
    /// host is not a valid name.
    pub host: Option<String>,
}

enum Compiled {
    Keywords(Keywords),
    Regex(Regex, Check, &'static str),
    Url,
}

/// Compiled rules.
pub struct Matcher {
    rules: Vec<Compiled>,
}

impl Matcher {
    pub fn compile(rules: &[Rule]) -> Result<Matcher, MatchError> {
        if rules.is_empty() {
            return Err(MatchError::Rule("no rules to compile".into()));
        }
        if rules.len() > MAX_RULES {
            return Err(MatchError::Rule(format!(
                "{} rules; at most {MAX_RULES}",
                rules.len()
            )));
        }
        let words: usize = rules
            .iter()
            .map(|r| match r {
                Rule::Keywords { words, .. } => words.len(),
                _ => 0,
            })
            .sum();
        if words > MAX_WORDS {
            return Err(MatchError::Rule(format!(
                "{words} keywords; at most {MAX_WORDS}"
            )));
        }
        let bytes: usize = rules
            .iter()
            .map(|r| match r {
                Rule::Keywords { words, .. } => words.iter().map(String::len).sum(),
                Rule::Regex { pattern, .. } => pattern.len(),
                Rule::Detector(name) => name.len(),
            })
            .sum();
        if bytes > MAX_SOURCE_BYTES {
            return Err(MatchError::Rule(format!(
                "{bytes} bytes of keywords and patterns; at most {MAX_SOURCE_BYTES}"
            )));
        }
        let regexes = rules
            .iter()
            .filter(|r| !matches!(r, Rule::Keywords { .. }))
            .count();
        if regexes > MAX_REGEXES {
            return Err(MatchError::Rule(format!(
                "{regexes} regexes and detectors; at most {MAX_REGEXES}"
            )));
        }
        let compiled = rules
            .iter()
            .enumerate()
            .map(|(index, rule)| {
                compile_rule(rule).map_err(|e| MatchError::At {
                    index,
                    message: e.to_string(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Matcher { rules: compiled })
    }

    /// Every hit in `text` (at most [`MAX_HITS`]), by start, the longer
    /// first at the same start, then by rule. A rule's own hits do not
    /// overlap, except a keyword list's (every listed word found).
    pub fn find(&self, text: &str) -> Vec<Hit> {
        let mut hits = Vec::new();
        for (index, rule) in self.rules.iter().enumerate() {
            self.scan(index, rule, text, &mut |hit| {
                hits.push(hit);
                hits.len() >= MAX_HITS * 2
            });
        }
        hits.sort_by(|a, b| {
            (a.start, std::cmp::Reverse(a.end), a.rule, a.item).cmp(&(
                b.start,
                std::cmp::Reverse(b.end),
                b.rule,
                b.item,
            ))
        });
        hits.truncate(MAX_HITS);
        hits
    }

    /// The hit a reader going left to right finishes first: the earliest
    /// end, then the longer, then the earlier rule and keyword.
    pub fn first(&self, text: &str) -> Option<Hit> {
        let key = |h: &Hit| (h.end, std::cmp::Reverse(h.end - h.start), h.rule, h.item);
        let mut best: Option<Hit> = None;
        for (index, rule) in self.rules.iter().enumerate() {
            let mut mine: Option<Hit> = None;
            self.scan(index, rule, text, &mut |hit| {
                // A rule's later hits start after this one ends.
                let done = mine.as_ref().is_some_and(|m| hit.start >= m.end);
                if !done && mine.as_ref().is_none_or(|m| key(&hit) < key(m)) {
                    mine = Some(hit);
                }
                done || matches!(rule, Compiled::Keywords(_))
            });
            if let Some(hit) = mine
                && best.as_ref().is_none_or(|b| key(&hit) < key(b))
            {
                best = Some(hit);
            }
        }
        best
    }

    /// Heap bytes it may hold: its keyword automata, and each regex at its
    /// compiled and cache limits (the `regex` crate does not say).
    pub fn memory(&self) -> usize {
        self.rules
            .iter()
            .map(|r| match r {
                Compiled::Keywords(k) => k.memory(),
                Compiled::Regex(..) => 2 * MAX_REGEX_BYTES,
                Compiled::Url => 0,
            })
            .sum()
    }

    /// Whether anything in `text` is a hit: the cheapest question.
    pub fn is_match(&self, text: &str) -> bool {
        let mut found = false;
        for (index, rule) in self.rules.iter().enumerate() {
            self.scan(index, rule, text, &mut |_| {
                found = true;
                true
            });
            if found {
                return true;
            }
        }
        false
    }

    /// What rule `index` is: `keyword`, `regex`, or a detector's name.
    pub fn kind(&self, index: usize) -> &'static str {
        match self.rules.get(index) {
            Some(Compiled::Keywords(_)) => "keyword",
            Some(Compiled::Regex(_, _, name)) => name,
            Some(Compiled::Url) => "url",
            None => "",
        }
    }

    /// Feeds `rule`'s hits in `text` to `each` until it returns true.
    fn scan(&self, index: usize, rule: &Compiled, text: &str, each: &mut dyn FnMut(Hit) -> bool) {
        match rule {
            Compiled::Keywords(k) => k.scan(text, |f| {
                each(Hit {
                    rule: index,
                    item: f.word,
                    start: f.start,
                    end: f.end,
                    host: None,
                })
            }),
            Compiled::Regex(re, check, _) => {
                for m in re.find_iter(text) {
                    if !m.is_empty()
                        && check.passes(m.as_str())
                        && each(Hit {
                            rule: index,
                            item: 0,
                            start: m.start(),
                            end: m.end(),
                            host: None,
                        })
                    {
                        return;
                    }
                }
            }
            Compiled::Url => {
                for link in url::links(text) {
                    if each(Hit {
                        rule: index,
                        item: 0,
                        start: link.start,
                        end: link.end,
                        host: link.host,
                    }) {
                        return;
                    }
                }
            }
        }
    }
}

fn compile_rule(rule: &Rule) -> Result<Compiled, MatchError> {
    Ok(match rule {
        Rule::Keywords {
            words,
            whole_word,
            ignore_case,
        } => {
            if words.is_empty() {
                return Err(MatchError::Rule("a keyword list is empty".into()));
            }
            Compiled::Keywords(Keywords::new(words, *whole_word, *ignore_case)?)
        }
        Rule::Regex {
            pattern,
            ignore_case,
        } => {
            let re = RegexBuilder::new(pattern)
                .case_insensitive(*ignore_case)
                .size_limit(MAX_REGEX_BYTES)
                .dfa_size_limit(MAX_REGEX_BYTES)
                .build()
                .map_err(|e| MatchError::Rule(e.to_string()))?;
            Compiled::Regex(re, Check::None, "regex")
        }
        Rule::Detector(name) if name == "url" => Compiled::Url,
        Rule::Detector(name) => {
            let (re, check) = detectors::compile(name)?;
            let name = detectors::NAMES
                .iter()
                .find(|n| **n == name.as_str())
                .copied()
                .unwrap_or("detector");
            Compiled::Regex(re, check, name)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keywords(words: &[&str], whole_word: bool) -> Rule {
        Rule::Keywords {
            words: words.iter().map(|w| w.to_string()).collect(),
            whole_word,
            ignore_case: true,
        }
    }

    #[test]
    fn find_orders_hits_and_first_takes_the_earliest_end() {
        let m = Matcher::compile(&[
            keywords(&["secret", "top secret"], true),
            Rule::Detector("card".into()),
            Rule::Detector("url".into()),
        ])
        .unwrap();
        let text = "top secret: 4111 1111 1111 1111 at https://x.example/";
        let hits = m.find(text);
        let seen: Vec<(&str, &str)> = hits
            .iter()
            .map(|h| (m.kind(h.rule), &text[h.start..h.end]))
            .collect();
        assert_eq!(
            seen,
            [
                ("keyword", "top secret"),
                ("keyword", "secret"),
                ("card", "4111 1111 1111 1111"),
                ("url", "https://x.example/"),
            ]
        );
        let first = m.first(text).unwrap();
        assert_eq!(&text[first.start..first.end], "top secret");
        assert_eq!(first.item, 1);
        assert_eq!(m.first("nothing here"), None);
        assert!(m.is_match(text) && !m.is_match("nothing here"));
    }

    #[test]
    fn regex_rules_fold_case_like_keywords() {
        let m = Matcher::compile(&[Rule::Regex {
            pattern: "kelvin".into(),
            ignore_case: true,
        }])
        .unwrap();
        assert!(m.first("\u{212A}ELVIN").is_some());
    }

    #[test]
    fn failed_checks_are_not_hits() {
        let m = Matcher::compile(&[Rule::Detector("card".into())]).unwrap();
        assert!(m.find("4111 1111 1111 1112").is_empty());
    }

    #[test]
    fn bad_rules_are_refused_with_their_index() {
        let err = Matcher::compile(&[
            keywords(&["a"], true),
            Rule::Regex {
                pattern: "(".into(),
                ignore_case: false,
            },
        ])
        .err()
        .unwrap();
        assert!(matches!(err, MatchError::At { index: 1, .. }), "{err}");
        let huge = Rule::Regex {
            pattern: r"\w{1000}{1000}".into(),
            ignore_case: false,
        };
        assert!(Matcher::compile(&[huge]).is_err());
        assert!(Matcher::compile(&[]).is_err());
        assert!(Matcher::compile(&[Rule::Detector("nope".into())]).is_err());
        let many = vec![Rule::Detector("email".into()); MAX_REGEXES + 1];
        assert!(Matcher::compile(&many).is_err());
        let words = |n: usize| Rule::Keywords {
            words: (0..n).map(|i| format!("word{i:08}")).collect(),
            whole_word: true,
            ignore_case: true,
        };
        assert!(Matcher::compile(&[words(MAX_SOURCE_BYTES / 12 + 1)]).is_err());
        let big = Matcher::compile(&[words(50_000)]).unwrap();
        assert!(big.memory() > 1_000_000, "{}", big.memory());
    }

    #[test]
    fn find_is_bounded() {
        let m = Matcher::compile(&[keywords(&["a"], false)]).unwrap();
        assert_eq!(m.find(&"a".repeat(50_000)).len(), MAX_HITS);
    }
}
