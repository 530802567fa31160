//! Text matching done by the host (contract 0.2.2, capability `match`):
//! keyword lists, regexes, the DLP detectors and links. Compile a
//! [`Matcher`] once in `init`, search each event's texts in `handle`.
//!
//! The host defines a word character (a Unicode letter or number), ignoring
//! case (Unicode simple case folding) and a link once for every language,
//! so a Rust plugin and a Python or JavaScript one that match through here
//! agree on every text. Native tests (`cargo test`) run the same matching
//! code as the host (`imgate-match`).
//!
//! ```ignore
//! use imgate_sdk::matching::{Matcher, Rule, Scope};
//!
//! let m = Matcher::compile(&[Rule::words(["secret", "project x"]), Rule::detector("url")])?;
//! if let Some(found) = m.first_in(event, Scope::Body) { /* found.hit.text */ }
//! ```

use crate::Event;

/// What one rule looks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Any of these words or phrases.
    Keywords {
        words: Vec<String>,
        /// No word character right before or after the match.
        whole_word: bool,
        /// By Unicode simple case folding.
        ignore_case: bool,
    },
    /// A regex in the `regex` crate's syntax (linear time).
    Regex { pattern: String, ignore_case: bool },
    /// `card`, `iban`, `ssn`, `secret`, `aws-key`, `private-key`, `email`
    /// or `url`.
    Detector(String),
}

impl Rule {
    /// Whole words, ignoring case: what a keyword filter usually wants.
    pub fn words<S: Into<String>>(words: impl IntoIterator<Item = S>) -> Rule {
        Rule::Keywords {
            words: words.into_iter().map(Into::into).collect(),
            whole_word: true,
            ignore_case: true,
        }
    }

    pub fn regex(pattern: &str) -> Rule {
        Rule::Regex {
            pattern: pattern.to_owned(),
            ignore_case: false,
        }
    }

    pub fn detector(name: &str) -> Rule {
        Rule::Detector(name.to_owned())
    }
}

/// One thing found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// The rule's index in the list compiled.
    pub rule: usize,
    /// Which word of a keyword rule; 0 for others.
    pub item: usize,
    /// `keyword`, `regex`, or the detector's name.
    pub kind: String,
    /// Byte offsets in the text searched.
    pub start: usize,
    pub end: usize,
    pub text: String,
    /// A `url` hit's host (UTS #46, ASCII); see [`normalize_host`].
    pub host: Option<String>,
}

/// Which of an event's texts to search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The body (a message's text or a subject, after earlier rewrites).
    Body,
    /// The body when there is one, else every text of `texts()`.
    BodyElseTexts,
    /// Every text of `texts()`.
    Texts,
}

/// A hit in one of an event's texts, with the text's role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextHit {
    pub role: String,
    pub hit: Hit,
}

/// Compiled rules, held by the host (natively, by the test harness).
pub struct Matcher {
    #[cfg(target_arch = "wasm32")]
    inner: crate::bindings::host::match_::Matcher,
    #[cfg(not(target_arch = "wasm32"))]
    inner: imgate_match::Matcher,
}

#[cfg(target_arch = "wasm32")]
mod wasm {
    use super::*;
    use crate::bindings::host::match_ as wit;

    pub fn rule(r: &Rule) -> wit::Rule {
        match r {
            Rule::Keywords {
                words,
                whole_word,
                ignore_case,
            } => wit::Rule::Keywords(wit::Keywords {
                words: words.clone(),
                whole_word: *whole_word,
                ignore_case: *ignore_case,
            }),
            Rule::Regex {
                pattern,
                ignore_case,
            } => wit::Rule::Regex(wit::Pattern {
                regex: pattern.clone(),
                ignore_case: *ignore_case,
            }),
            Rule::Detector(name) => wit::Rule::Detector(name.clone()),
        }
    }

    pub fn hit(h: wit::Hit) -> Hit {
        Hit {
            rule: h.rule as usize,
            item: h.item as usize,
            kind: h.kind,
            start: h.start as usize,
            end: h.end as usize,
            text: h.text,
            host: h.host,
        }
    }

    pub fn text_hit(h: wit::TextHit) -> TextHit {
        TextHit {
            role: h.role,
            hit: hit(h.hit),
        }
    }

    pub fn scope(s: Scope) -> wit::Scope {
        match s {
            Scope::Body => wit::Scope::Body,
            Scope::BodyElseTexts => wit::Scope::BodyElseTexts,
            Scope::Texts => wit::Scope::Texts,
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use super::*;

    pub fn rule(r: &Rule) -> imgate_match::Rule {
        match r.clone() {
            Rule::Keywords {
                words,
                whole_word,
                ignore_case,
            } => imgate_match::Rule::Keywords {
                words,
                whole_word,
                ignore_case,
            },
            Rule::Regex {
                pattern,
                ignore_case,
            } => imgate_match::Rule::Regex {
                pattern,
                ignore_case,
            },
            Rule::Detector(name) => imgate_match::Rule::Detector(name),
        }
    }

    pub fn hit(m: &imgate_match::Matcher, text: &str, h: imgate_match::Hit) -> Hit {
        Hit {
            rule: h.rule,
            item: h.item,
            kind: m.kind(h.rule).to_owned(),
            start: h.start,
            end: h.end,
            text: text[h.start..h.end].to_owned(),
            host: h.host,
        }
    }

    /// The event's texts in `scope`, as the host reads them.
    pub fn texts(event: &Event<'_>, scope: Scope) -> Vec<(String, String)> {
        let body = event.body().map(|b| ("body".to_owned(), b));
        match (scope, body) {
            (Scope::Body, body) => body.into_iter().collect(),
            (Scope::BodyElseTexts, Some(body)) => vec![body],
            _ => event
                .texts()
                .into_iter()
                .map(|t| (t.role, t.value))
                .collect(),
        }
    }
}

impl Matcher {
    /// Compiles `rules`; the error names the rule at fault.
    pub fn compile(rules: &[Rule]) -> Result<Matcher, String> {
        #[cfg(target_arch = "wasm32")]
        {
            let rules: Vec<_> = rules.iter().map(wasm::rule).collect();
            crate::bindings::host::match_::Matcher::compile(&rules).map(|inner| Matcher { inner })
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let rules: Vec<_> = rules.iter().map(native::rule).collect();
            imgate_match::Matcher::compile(&rules)
                .map(|inner| Matcher { inner })
                .map_err(|e| e.to_string())
        }
    }

    /// Every hit in `text`, by start.
    pub fn find(&self, text: &str) -> Vec<Hit> {
        #[cfg(target_arch = "wasm32")]
        {
            self.inner.find(text).into_iter().map(wasm::hit).collect()
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let m = &self.inner;
            m.find(text)
                .into_iter()
                .map(|h| native::hit(m, text, h))
                .collect()
        }
    }

    /// The hit that ends first.
    pub fn first(&self, text: &str) -> Option<Hit> {
        #[cfg(target_arch = "wasm32")]
        {
            self.inner.first(text).map(wasm::hit)
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let m = &self.inner;
            m.first(text).map(|h| native::hit(m, text, h))
        }
    }

    /// Every hit in the event's texts in `scope`, read by the host where
    /// they lie (nothing copied into the plugin but the hits).
    pub fn find_in(&self, event: &Event<'_>, scope: Scope) -> Vec<TextHit> {
        #[cfg(target_arch = "wasm32")]
        if let Some(view) = event.view() {
            return self
                .inner
                .find_in(view, wasm::scope(scope))
                .into_iter()
                .map(wasm::text_hit)
                .collect();
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = (event, scope);
        }
        self.texts_of(event, scope)
            .into_iter()
            .flat_map(|(role, text)| {
                self.find(&text).into_iter().map(move |hit| TextHit {
                    role: role.clone(),
                    hit,
                })
            })
            .collect()
    }

    /// The first hit in the event's texts in `scope`, in their order.
    pub fn first_in(&self, event: &Event<'_>, scope: Scope) -> Option<TextHit> {
        #[cfg(target_arch = "wasm32")]
        if let Some(view) = event.view() {
            return self
                .inner
                .first_in(view, wasm::scope(scope))
                .map(wasm::text_hit);
        }
        self.texts_of(event, scope)
            .into_iter()
            .find_map(|(role, text)| self.first(&text).map(|hit| TextHit { role, hit }))
    }

    /// A promise, made in `init`: `handle` allows every event in which this
    /// matcher finds nothing in `scope`, and does nothing else for it. The
    /// host then calls the plugin only for events with a hit. (Native
    /// tests call the plugin for every event, as before.)
    pub fn call_only_on_hit(&self, scope: Scope) -> Result<(), String> {
        #[cfg(target_arch = "wasm32")]
        {
            self.inner.call_only_on_hit(wasm::scope(scope))
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = scope;
            Ok(())
        }
    }

    fn texts_of(&self, event: &Event<'_>, scope: Scope) -> Vec<(String, String)> {
        #[cfg(target_arch = "wasm32")]
        {
            let _ = (event, scope);
            Vec::new()
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            native::texts(event, scope)
        }
    }
}

/// `name` as `url` hits give hosts (UTS #46, ASCII, lower case, no
/// trailing dot); `None` when it is not a valid host name.
pub fn normalize_host(name: &str) -> Option<String> {
    #[cfg(target_arch = "wasm32")]
    {
        crate::bindings::host::match_::normalize_host(name)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        imgate_match::normalize_host(name)
    }
}
