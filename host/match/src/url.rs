//! Links in text, and their hosts: the one definition every plugin
//! language shares.
//!
//! A link starts with `http://`, `https://` or `ftp://` (any case) or with
//! `www.`, where no letter or digit comes before it. It ends at white space
//! (Unicode White_Space, U+0085 included), at any control character
//! (U+001C…) or format character (U+FEFF, U+200B…), or at `<`, `>`, `"` or
//! a backtick; trailing punctuation (`.,;:!?'`) and an unbalanced closing
//! bracket are left out, as chat clients do when they make a link.
//!
//! Its host is read as a browser reads it (the WHATWG URL standard): after
//! any `user:password@`, up to `/`, `\`, `?`, `#` or a port; percent
//! escapes decoded; then UTS #46 processing (`idna`): case folded, the
//! Kelvin sign a `k`, `É` an `é`, and the result in its ASCII form
//! (`xn--…`) with no trailing dot. A host that is not a valid domain name
//! has none.

use std::sync::OnceLock;

use regex::Regex;

/// A link found: its span in the text, and its host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub start: usize,
    pub end: usize,
    pub host: Option<String>,
}

fn pattern() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r#"(?i)(?:(?:https?|ftp)://|www\.)[^\s\p{Cc}\p{Cf}<>"`]*"#)
            .expect("a fixed, valid pattern")
    })
}

/// Every link in `text`, in order.
pub fn links(text: &str) -> impl Iterator<Item = Link> + '_ {
    pattern().find_iter(text).filter_map(move |m| {
        let before = text[..m.start()].chars().next_back();
        if before.is_some_and(crate::is_word_char) {
            return None;
        }
        let end = m.start() + trimmed_len(m.as_str());
        let url = &text[m.start()..end];
        let authority = match url.find("://") {
            Some(i) => &url[i + 3..],
            None => url,
        };
        if authority.is_empty() || url.len() <= 4 {
            return None;
        }
        Some(Link {
            start: m.start(),
            end,
            host: host_of(authority),
        })
    })
}

/// How much of a candidate is the link: trailing punctuation and
/// unbalanced closing brackets are the sentence's.
fn trimmed_len(candidate: &str) -> usize {
    let mut end = candidate.len();
    loop {
        let Some(last) = candidate[..end].chars().next_back() else {
            return end;
        };
        let drop = match last {
            '.' | ',' | ';' | ':' | '!' | '?' | '\'' => true,
            ')' | ']' | '}' => {
                let open = match last {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                let body = &candidate[..end];
                body.matches(open).count() < body.matches(last).count()
            }
            _ => false,
        };
        if !drop {
            return end;
        }
        end -= last.len_utf8();
    }
}

/// The host of a link's authority part (what follows `scheme://`).
fn host_of(authority: &str) -> Option<String> {
    let authority = authority
        .split(['/', '\\', '?', '#'])
        .next()
        .unwrap_or(authority);
    let host_port = match authority.rfind('@') {
        Some(at) => &authority[at + 1..],
        None => authority,
    };
    let host = if host_port.starts_with('[') {
        // An IPv6 literal keeps its brackets.
        return host_port
            .find(']')
            .map(|close| host_port[..=close].to_ascii_lowercase());
    } else {
        host_port.split(':').next().unwrap_or(host_port)
    };
    normalize_host(&percent_decode(host)?)
}

fn percent_decode(text: &str) -> Option<String> {
    if !text.contains('%') {
        return Some(text.to_owned());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h)? * 16 + hex(l)?) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// A host name in the form links' hosts are reported in (UTS #46, ASCII,
/// lower case, no trailing dot), or `None` when it is not a valid one:
/// how an allow-list entry is made comparable with a link's host.
pub fn normalize_host(name: &str) -> Option<String> {
    let ascii = idna::domain_to_ascii(name.trim()).ok()?;
    let ascii = ascii.strip_suffix('.').unwrap_or(&ascii);
    // The WHATWG standard's forbidden domain code points.
    let forbidden = |c: char| c.is_ascii_control() || " #%/:<>?@[\\]^|".contains(c);
    if ascii.is_empty() || ascii.contains(forbidden) {
        return None;
    }
    Some(ascii.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(&str, Option<String>)> {
        links(text)
            .map(|l| (&text[l.start..l.end], l.host))
            .collect()
    }

    fn host(h: &str) -> Option<String> {
        Some(h.to_string())
    }

    #[test]
    fn links_and_their_hosts() {
        assert_eq!(
            found("see https://Docs.Corp.example/a?b#c, then www.partner.example."),
            [
                ("https://Docs.Corp.example/a?b#c", host("docs.corp.example")),
                ("www.partner.example", host("www.partner.example"))
            ]
        );
        assert_eq!(
            found("(http://user:pw@evil.example:8080/x)"),
            [("http://user:pw@evil.example:8080/x", host("evil.example"))]
        );
        assert_eq!(
            found("https://evil.example\\@corp.example/"),
            [("https://evil.example\\@corp.example/", host("evil.example"))]
        );
        assert_eq!(
            found("http://[::1]:80/"),
            [("http://[::1]:80/", host("[::1]"))]
        );
        assert_eq!(
            found("https://en.wikipedia.org/wiki/Rust_(language)"),
            [(
                "https://en.wikipedia.org/wiki/Rust_(language)",
                host("en.wikipedia.org")
            )]
        );
        assert!(found("xhttps://evil.example nohttp:// www.").is_empty());
    }

    #[test]
    fn controls_format_characters_and_white_space_end_a_link() {
        for sep in ['\u{1C}', '\u{85}', '\u{FEFF}', '\u{200B}', '\u{A0}', '\n'] {
            let text = format!("go https://evil.example{sep}.corp.example/ now");
            assert_eq!(
                found(&text),
                [("https://evil.example", host("evil.example"))],
                "{sep:?}"
            );
            let text = format!("{sep}https://evil.example");
            assert_eq!(found(&text).len(), 1, "{sep:?} before");
        }
    }

    #[test]
    fn hosts_are_read_as_a_browser_reads_them() {
        assert_eq!(
            found("https://\u{212A}elvin.example/"),
            [("https://\u{212A}elvin.example/", host("kelvin.example"))]
        );
        assert_eq!(
            found("https://ÉCOLE.example"),
            [("https://ÉCOLE.example", host("xn--cole-9oa.example"))]
        );
        assert_eq!(found("https://%65vil.example")[0].1, host("evil.example"));
        assert_eq!(found("https://corp.example./")[0].1, host("corp.example"));
        assert_eq!(found("https://exa%00mple/")[0].1, None);
        assert_eq!(found("https://exa%ffmple/")[0].1, None);
        assert_eq!(
            normalize_host("École.Example."),
            host("xn--cole-9oa.example")
        );
        assert_eq!(normalize_host(""), None);
    }
}
