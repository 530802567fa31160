//! The built-in detectors: sensitive data found by a pattern, then checked
//! (Luhn for cards, the SSA's ranges for SSNs, mod-97 for IBANs) so a
//! 16-digit number that fails Luhn is not a card.

use regex::Regex;

use crate::MatchError;

/// Every built-in detector name, `url` included (see [`crate::url`]).
pub const NAMES: [&str; 8] = [
    "card",
    "ssn",
    "iban",
    "secret",
    "aws-key",
    "private-key",
    "email",
    "url",
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Check {
    None,
    Luhn,
    Ssn,
    Iban,
}

impl Check {
    pub fn passes(self, text: &str) -> bool {
        match self {
            Check::None => true,
            Check::Luhn => luhn(text),
            Check::Ssn => valid_ssn(text),
            Check::Iban => valid_iban(text),
        }
    }
}

/// The pattern and check of a built-in detector other than `url`.
pub fn pattern(name: &str) -> Result<(&'static str, Check), MatchError> {
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
        other => {
            return Err(MatchError::Rule(format!(
                "unknown detector `{other}` (known: {})",
                NAMES.join(", ")
            )));
        }
    })
}

pub fn compile(name: &str) -> Result<(Regex, Check), MatchError> {
    let (source, check) = pattern(name)?;
    let regex =
        Regex::new(source).map_err(|e| MatchError::Rule(format!("detector `{name}`: {e}")))?;
    Ok((regex, check))
}

fn digits(s: &str) -> Vec<u32> {
    s.chars().filter_map(|c| c.to_digit(10)).collect()
}

pub fn luhn(s: &str) -> bool {
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
pub fn valid_ssn(s: &str) -> bool {
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
pub fn valid_iban(s: &str) -> bool {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&compact.len()) || !compact.is_ascii() {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut rem: u32 = 0;
    for c in tail.chars().chain(head.chars()) {
        let Some(v) = c.to_digit(36) else {
            return false;
        };
        if v >= 10 {
            rem = (rem * 10 + v / 10) % 97;
            rem = (rem * 10 + v % 10) % 97;
        } else {
            rem = (rem * 10 + v) % 97;
        }
    }
    rem == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks() {
        assert!(luhn("4111 1111 1111 1111"));
        assert!(!luhn("4111 1111 1111 1112"));
        assert!(valid_ssn("123-45-6789"));
        assert!(!valid_ssn("666-45-6789") && !valid_ssn("123-00-6789"));
        assert!(valid_iban("GB82 WEST 1234 5698 7654 32"));
        assert!(!valid_iban("GB82 WEST 1234 5698 7654 33"));
    }

    #[test]
    fn every_name_compiles_and_unknown_names_are_refused() {
        for name in NAMES.iter().filter(|n| **n != "url") {
            compile(name).unwrap();
        }
        let err = compile("passport").unwrap_err().to_string();
        assert!(err.contains("passport") && err.contains("card"), "{err}");
    }
}
