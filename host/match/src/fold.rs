//! Unicode simple case folding (CaseFolding.txt, statuses C and S): the one
//! definition of "the same letter, ignoring case" for every plugin language.
//!
//! Simple folding maps one character to one character (`ß` stays `ß`;
//! full folding would make it `ss`), so a folded text has as many
//! characters as the original and a match's span maps back character by
//! character. Each character is mapped to the smallest member of its case
//! orbit (`k`, `K` and the Kelvin sign `K` all become `K`): two texts are
//! equal under simple folding exactly when their mapped forms are equal.
//! The orbits are the `regex` crate's, so a `(?i)` regex and a
//! case-insensitive keyword agree.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

use regex_syntax::hir::{Class, ClassUnicode, ClassUnicodeRange, HirKind};

/// Non-ASCII characters whose orbit's smallest member is another character.
fn table() -> &'static HashMap<char, char> {
    static TABLE: OnceLock<HashMap<char, char>> = OnceLock::new();
    TABLE.get_or_init(|| {
        // Every character with a case mapping is cased or changes when
        // case-folded; the rest fold to themselves.
        let hir = regex_syntax::Parser::new()
            .parse(r"[\p{Cased}\p{Changes_When_Casefolded}]")
            .expect("a fixed, valid class");
        let HirKind::Class(Class::Unicode(cased)) = hir.kind() else {
            unreachable!("a Unicode class parses to one")
        };
        let mut table = HashMap::new();
        for range in cased.ranges() {
            for c in range.start()..=range.end() {
                if c.is_ascii() {
                    continue;
                }
                let mut orbit = ClassUnicode::new([ClassUnicodeRange::new(c, c)]);
                orbit.case_fold_simple();
                let least = orbit.ranges()[0].start();
                if least != c {
                    table.insert(c, least);
                }
            }
        }
        table
    })
}

/// The representative of `c`'s case orbit.
pub fn fold_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_uppercase();
    }
    table().get(&c).copied().unwrap_or(c)
}

/// `text` with every character folded.
pub fn fold(text: &str) -> String {
    text.chars().map(fold_char).collect()
}

/// A folded text and the way back to the original's byte offsets.
pub struct Folded<'a> {
    pub text: Cow<'a, str>,
    /// Original byte offset of each folded byte offset, when some
    /// character's folded form has another UTF-8 length (the Kelvin sign
    /// is three bytes, `K` one); `None` when offsets are the same.
    back: Option<Vec<u32>>,
}

impl<'a> Folded<'a> {
    pub fn new(text: &'a str) -> Folded<'a> {
        let mut folded = String::with_capacity(text.len());
        let mut same_lengths = true;
        for c in text.chars() {
            let f = fold_char(c);
            same_lengths &= f.len_utf8() == c.len_utf8();
            folded.push(f);
        }
        let back = (!same_lengths).then(|| {
            let mut back = Vec::with_capacity(folded.len() + 1);
            for (at, c) in text.char_indices() {
                for _ in 0..fold_char(c).len_utf8() {
                    back.push(at as u32);
                }
            }
            back.push(text.len() as u32);
            back
        });
        Folded {
            text: Cow::Owned(folded),
            back,
        }
    }

    /// The original byte offset of a folded one (a character boundary).
    pub fn original(&self, at: usize) -> usize {
        match &self.back {
            Some(back) => back[at] as usize,
            None => at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orbits_fold_together() {
        assert_eq!(fold("Kelvin"), fold("\u{212A}ELVIN"));
        assert_eq!(fold("straße"), fold("STRAẞE"));
        assert_ne!(
            fold("straße"),
            fold("STRASSE"),
            "simple folding: ß is not ss"
        );
        assert_eq!(fold("ſ"), fold("s"));
        assert_eq!(fold("ΣΑΣ"), fold("σας"));
        assert_eq!(fold("École"), fold("éCOLE"));
        assert_eq!(fold("日本"), "日本");
    }

    #[test]
    fn spans_map_back_across_length_changes() {
        let f = Folded::new("a\u{212A}b");
        assert_eq!(f.text, "AKB");
        assert_eq!(f.original(1), 1);
        assert_eq!(f.original(2), 4);
        assert_eq!(f.original(3), 5);
        let same = Folded::new("éa");
        assert_eq!(same.original(2), 2);
    }
}
