//! Keyword lists: every word of a list found in one pass (Aho-Corasick),
//! whole-word or substring, case-insensitive by simple case folding.

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

use crate::fold::{Folded, fold};
use crate::{MatchError, is_word_char};

/// One keyword found: which word, where (bytes of the searched text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub word: usize,
    pub start: usize,
    pub end: usize,
}

pub struct Keywords {
    /// Over the folded words, for folded text (or the words themselves
    /// when case matters).
    matcher: AhoCorasick,
    /// When every word is ASCII and case does not matter: ASCII text is
    /// matched in place, without folding (the common case for chat).
    ascii: Option<AhoCorasick>,
    whole_word: bool,
    ignore_case: bool,
}

impl Keywords {
    pub fn new(words: &[String], whole_word: bool, ignore_case: bool) -> Result<Self, MatchError> {
        if words.iter().any(|w| w.is_empty()) {
            return Err(MatchError::Rule("a keyword is empty".into()));
        }
        let build = |kind, ascii_case_insensitive: bool, patterns: &[String]| {
            AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .kind(kind)
                .ascii_case_insensitive(ascii_case_insensitive)
                .build(patterns)
                .map_err(|e| MatchError::Rule(format!("cannot build the keyword matcher: {e}")))
        };
        let patterns: Vec<String> = if ignore_case {
            words.iter().map(|w| fold(w)).collect()
        } else {
            words.to_vec()
        };
        // The general matcher serves the rarer non-ASCII texts: an NFA,
        // cheap to build. The hot ASCII path gets a DFA while the list is
        // small (the crate's choice): 100,000 words as a DFA take 285 MB,
        // as an NFA 39 MB.
        let matcher = build(Some(AhoCorasickKind::ContiguousNFA), false, &patterns)?;
        let ascii = if ignore_case && words.iter().all(|w| w.is_ascii()) {
            Some(build(None, true, words)?)
        } else {
            None
        };
        Ok(Keywords {
            matcher,
            ascii,
            whole_word,
            ignore_case,
        })
    }

    /// Heap bytes the automata hold.
    pub fn memory(&self) -> usize {
        self.matcher.memory_usage() + self.ascii.as_ref().map_or(0, AhoCorasick::memory_usage)
    }

    /// Every keyword found, in order of end (then longest first), each
    /// whole word when asked; `stop` ends the scan after a hit it accepts.
    pub fn scan(&self, text: &str, mut stop: impl FnMut(Found) -> bool) {
        let accept = |start: usize, end: usize| {
            !self.whole_word
                || (!text[..start].chars().next_back().is_some_and(is_word_char)
                    && !text[end..].chars().next().is_some_and(is_word_char))
        };
        if let Some(ascii) = self.ascii.as_ref().filter(|_| text.is_ascii()) {
            for m in ascii.find_overlapping_iter(text) {
                if accept(m.start(), m.end())
                    && stop(Found {
                        word: m.pattern().as_usize(),
                        start: m.start(),
                        end: m.end(),
                    })
                {
                    return;
                }
            }
            return;
        }
        if !self.ignore_case {
            for m in self.matcher.find_overlapping_iter(text) {
                if accept(m.start(), m.end())
                    && stop(Found {
                        word: m.pattern().as_usize(),
                        start: m.start(),
                        end: m.end(),
                    })
                {
                    return;
                }
            }
            return;
        }
        let folded = Folded::new(text);
        for m in self.matcher.find_overlapping_iter(folded.text.as_ref()) {
            let (start, end) = (folded.original(m.start()), folded.original(m.end()));
            if accept(start, end)
                && stop(Found {
                    word: m.pattern().as_usize(),
                    start,
                    end,
                })
            {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| w.to_string()).collect()
    }

    fn first(k: &Keywords, text: &str) -> Option<Found> {
        let mut found = None;
        k.scan(text, |f| {
            found = Some(f);
            true
        });
        found
    }

    #[test]
    fn whole_words_ignoring_case() {
        let k = Keywords::new(&words(&["secret", "project x"]), true, true).unwrap();
        assert_eq!(first(&k, "this is SECRET").map(|f| f.word), Some(0));
        assert_eq!(first(&k, "about Project X!").map(|f| f.word), Some(1));
        assert!(first(&k, "secretary").is_none());
        assert!(first(&k, "ünsecret").is_none());
        assert!(first(&k, "secret_x").is_some(), "_ is not a word character");
    }

    #[test]
    fn a_partial_match_does_not_hide_a_whole_word() {
        let k = Keywords::new(&words(&["secretary", "secret"]), true, true).unwrap();
        assert_eq!(first(&k, "the secretary").map(|f| f.word), Some(0));
        assert_eq!(first(&k, "a secret").map(|f| f.word), Some(1));
    }

    #[test]
    fn the_kelvin_sign_is_a_k() {
        let k = Keywords::new(&words(&["kelvin"]), true, true).unwrap();
        let text = "the \u{212A}ELVIN scale";
        let f = first(&k, text).expect("found");
        assert_eq!(&text[f.start..f.end], "\u{212A}ELVIN");
        let exact = Keywords::new(&words(&["kelvin"]), true, false).unwrap();
        assert!(first(&exact, text).is_none());
    }

    #[test]
    fn substrings_and_every_hit() {
        let k = Keywords::new(&words(&["secret"]), false, true).unwrap();
        let mut all = Vec::new();
        k.scan("topsecret Secret", |f| {
            all.push(f.start);
            false
        });
        assert_eq!(all, [3, 10]);
    }

    #[test]
    fn an_empty_word_is_refused() {
        assert!(Keywords::new(&words(&["a", ""]), true, true).is_err());
    }
}
