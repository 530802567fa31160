//! IRC bytes to lines, with no I/O, and lines to their parts.
//!
//! A line ends at the first CR or LF, and CRLF counts as one end: the
//! rule of ngircd, which also ends a line on a bare CR (as do most
//! servers, for mIRC's sake). Framing exactly as the server does is a
//! security property: a gateway that ended lines only on LF would judge
//! `PRIVMSG x :hi\rJOIN #walled` as one message while the server ran two
//! commands. Empty lines are skipped, as servers skip them. IRCv3 allows
//! up to 8191 bytes of message tags (`@...` and its space) plus 512 bytes
//! for the rest, CRLF included. Longer lines are skipped up to their end
//! and reported, so the peer can be told without the buffer growing. NUL
//! bytes are refused (RFC 1459 §2.3.1; ngircd stops reading at one). Bytes
//! need not be UTF-8 here; the session decides what to do with them.

use std::borrow::Cow;

use smallvec::SmallVec;

/// Limits from the IRCv3 message-tags spec.
pub const MAX_TAGS: usize = 8191;
pub const MAX_REST: usize = 512;

/// One thing the framer found.
#[derive(Debug, PartialEq)]
pub enum Frame {
    /// A complete line without its line ending.
    Line(Vec<u8>),
    /// A line that broke a limit or carried a NUL; it was skipped.
    Refused(LineError),
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum LineError {
    #[error("line too long (at most {MAX_TAGS} bytes of tags and {MAX_REST} bytes of message)")]
    TooLong,
    #[error("NUL byte in line")]
    Nul,
}

/// What the framer found at the front of the buffer.
#[derive(Debug, PartialEq)]
pub enum Next {
    /// A frame, and the bytes it used.
    Frame(Frame, usize),
    /// Bytes of an over-long line to throw away; its end is reported as
    /// [`LineError::TooLong`] when it comes.
    Discard(usize),
    /// No complete line yet.
    More,
}

/// Splits a byte stream into lines. Keeps its place between calls.
#[derive(Debug, Default)]
pub struct Framer {
    /// Bytes of the buffer known to hold no line ending.
    scanned: usize,
    /// Inside an over-long line: dropping bytes up to its end.
    skipping: bool,
}

impl Framer {
    pub fn next(&mut self, buf: &[u8]) -> Next {
        let mut start = 0;
        loop {
            let from = self.scanned.max(start).min(buf.len());
            let Some(i) = buf[from..].iter().position(|&b| b == b'\n' || b == b'\r') else {
                break;
            };
            let end = from + i;
            self.scanned = 0;
            if std::mem::take(&mut self.skipping) {
                return Next::Frame(Frame::Refused(LineError::TooLong), end + 1);
            }
            let line = &buf[start..end];
            if line.is_empty() {
                // The LF of a CRLF, or an empty line: nothing to frame.
                start = end + 1;
                continue;
            }
            if too_long(line) {
                return Next::Frame(Frame::Refused(LineError::TooLong), end + 1);
            }
            if line.contains(&0) {
                return Next::Frame(Frame::Refused(LineError::Nul), end + 1);
            }
            return Next::Frame(Frame::Line(line.to_vec()), end + 1);
        }
        if start > 0 {
            // Line ends consumed with no line: let the caller drop them.
            return Next::Discard(start);
        }
        if !buf.is_empty() && (self.skipping || buf.len() > MAX_TAGS + MAX_REST) {
            self.skipping = true;
            self.scanned = 0;
            return Next::Discard(buf.len());
        }
        self.scanned = buf.len();
        Next::More
    }
}

/// The line as UTF-8: bytes that are not are replaced by U+FFFD. The
/// chain judges text, so the line that goes on must be the text that was
/// judged; a client that fell back to Latin-1 would otherwise show the
/// recipient words the policy never saw. `Err` when the replacement (three
/// bytes for one) makes the line too long.
pub fn into_utf8(line: Vec<u8>) -> Result<Vec<u8>, LineError> {
    match String::from_utf8(line) {
        Ok(text) => Ok(text.into_bytes()),
        Err(e) => {
            let text = String::from_utf8_lossy(e.as_bytes())
                .into_owned()
                .into_bytes();
            if too_long(&text) {
                Err(LineError::TooLong)
            } else {
                Ok(text)
            }
        }
    }
}

fn too_long(line: &[u8]) -> bool {
    let (tags, rest) = split_tags(line);
    tags.map_or(0, |t| t.len() + 2) > MAX_TAGS || rest.len() + 2 > MAX_REST
}

fn split_tags(line: &[u8]) -> (Option<&[u8]>, &[u8]) {
    if line.first() == Some(&b'@') {
        match line.iter().position(|&b| b == b' ') {
            Some(i) => (Some(&line[1..i]), trim_spaces(&line[i + 1..])),
            None => (Some(&line[1..]), &[]),
        }
    } else {
        (None, line)
    }
}

fn trim_spaces(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| b != b' ').unwrap_or(s.len());
    &s[start..]
}

/// A line taken apart: `[@tags] [:prefix] COMMAND params... [:trailing]`.
/// It borrows from the line: reading one allocates nothing (up to four
/// parameters, a PRIVMSG has two), and a line built to be written (a
/// NOTICE, a rewrite) owns what it must.
#[derive(Clone, Debug, PartialEq)]
pub struct Message<'a> {
    /// The tags as written, without `@`.
    pub tags: Option<Cow<'a, str>>,
    pub prefix: Option<Cow<'a, str>>,
    /// Upper-cased.
    pub command: Cow<'a, str>,
    /// The trailing parameter is the last one.
    pub params: Params<'a>,
}

/// A line's parameters: inline up to four.
pub type Params<'a> = SmallVec<[Cow<'a, str>; 4]>;

impl<'a> Message<'a> {
    /// Parses a line; `None` when it is not UTF-8 (a session makes every
    /// line UTF-8 first, [`into_utf8`]) or has no command.
    pub fn parse(line: &'a [u8]) -> Option<Message<'a>> {
        let mut rest = std::str::from_utf8(line).ok()?;
        let mut tags = None;
        if let Some(r) = rest.strip_prefix('@') {
            let (t, r) = r.split_once(' ').unwrap_or((r, ""));
            tags = Some(Cow::Borrowed(t));
            rest = r.trim_start_matches(' ');
        }
        let mut prefix = None;
        if let Some(r) = rest.strip_prefix(':') {
            let (p, r) = r.split_once(' ').unwrap_or((r, ""));
            prefix = Some(Cow::Borrowed(p));
            rest = r.trim_start_matches(' ');
        }
        let (command, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
        if command.is_empty() {
            return None;
        }
        let mut params = Params::new();
        loop {
            rest = rest.trim_start_matches(' ');
            if rest.is_empty() {
                break;
            }
            if let Some(trailing) = rest.strip_prefix(':') {
                params.push(Cow::Borrowed(trailing));
                break;
            }
            let (p, r) = rest.split_once(' ').unwrap_or((rest, ""));
            params.push(Cow::Borrowed(p));
            rest = r;
        }
        let command = if command.bytes().any(|b| b.is_ascii_lowercase()) {
            Cow::Owned(command.to_ascii_uppercase())
        } else {
            Cow::Borrowed(command)
        };
        Some(Message {
            tags,
            prefix,
            command,
            params,
        })
    }

    /// The value of tag `key`, unescaped (IRCv3 escaping).
    pub fn tag(&self, key: &str) -> Option<String> {
        self.tags.as_deref()?.split(';').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == key).then(|| unescape_tag(v))
        })
    }

    /// The nick part of the prefix (`nick!user@host`).
    pub fn nick(&self) -> Option<&str> {
        let p = self.prefix.as_deref()?;
        Some(p.split(['!', '@']).next().unwrap_or(p))
    }

    /// Parameter `i`, or "".
    pub fn param(&self, i: usize) -> &str {
        self.params.get(i).map_or("", |p| p)
    }

    /// The line, ending in CRLF.
    pub fn to_line(&self) -> String {
        let mut out = String::new();
        if let Some(t) = &self.tags {
            out.push('@');
            out.push_str(t);
            out.push(' ');
        }
        if let Some(p) = &self.prefix {
            out.push(':');
            out.push_str(p);
            out.push(' ');
        }
        out.push_str(&self.command);
        let n = self.params.len();
        for (i, p) in self.params.iter().enumerate() {
            out.push(' ');
            if i + 1 == n && (p.is_empty() || p.contains(' ') || p.starts_with(':')) {
                out.push(':');
            }
            out.push_str(p);
        }
        out.push_str("\r\n");
        out
    }
}

pub(super) fn unescape_tag(v: &str) -> String {
    let mut out = String::new();
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(':') => out.push(';'),
            Some('s') => out.push(' '),
            Some('\\') => out.push('\\'),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Splits `text` into pieces that each fit, as the last parameter, in a
/// line of at most [`MAX_REST`] bytes after `head` (`:prefix CMD target :`
/// with CRLF counted), never inside a UTF-8 character. Breaks at a space
/// when there is one in the second half of the piece, and that space is
/// the line break (clients strip trailing spaces): the pieces joined with
/// spaces give the text back.
pub fn split_text(text: &str, head_len: usize) -> Vec<String> {
    let room = MAX_REST.saturating_sub(head_len + 2).max(4);
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > room {
        let mut cut = room;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        match rest[..cut].rfind(' ').filter(|&s| s > cut / 2) {
            Some(space) => {
                out.push(rest[..space].to_owned());
                rest = &rest[space + 1..];
            }
            None => {
                out.push(rest[..cut].to_owned());
                rest = &rest[cut..];
            }
        }
    }
    out.push(rest.to_owned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes every frame `f` finds in `buf`, draining what it used.
    fn drain(f: &mut Framer, buf: &mut Vec<u8>) -> Vec<Frame> {
        let mut out = Vec::new();
        loop {
            match f.next(buf) {
                Next::Frame(frame, n) => {
                    buf.drain(..n);
                    out.push(frame);
                }
                Next::Discard(n) => {
                    buf.drain(..n);
                }
                Next::More => return out,
            }
        }
    }

    fn frames(input: &[u8]) -> Vec<Frame> {
        drain(&mut Framer::default(), &mut input.to_vec())
    }

    #[test]
    fn crlf_bare_lf_and_bare_cr_each_end_a_line() {
        assert_eq!(
            frames(b"NICK a\r\nUSER a 0 * :A\nPING x\r\npartial"),
            vec![
                Frame::Line(b"NICK a".to_vec()),
                Frame::Line(b"USER a 0 * :A".to_vec()),
                Frame::Line(b"PING x".to_vec()),
            ]
        );
        // The smuggling case: the server runs two commands, so the gateway
        // must see two lines.
        assert_eq!(
            frames(b"PRIVMSG nobody :y\rJOIN #trading\r\n\n\r\r\nLF\n\rCR\r"),
            vec![
                Frame::Line(b"PRIVMSG nobody :y".to_vec()),
                Frame::Line(b"JOIN #trading".to_vec()),
                Frame::Line(b"LF".to_vec()),
                Frame::Line(b"CR".to_vec()),
            ]
        );
    }

    #[test]
    fn a_crlf_split_across_reads_is_one_line_end() {
        let mut f = Framer::default();
        let mut buf = b"PING a\r".to_vec();
        assert_eq!(
            f.next(&buf),
            Next::Frame(Frame::Line(b"PING a".to_vec()), 7)
        );
        buf.drain(..7);
        assert_eq!(f.next(&buf), Next::More);
        buf.extend_from_slice(b"\nPING b\r\n");
        assert_eq!(
            drain(&mut f, &mut buf),
            vec![Frame::Line(b"PING b".to_vec())]
        );
    }

    #[test]
    fn long_lines_and_nul_are_refused_and_skipped() {
        let mut input = b"PRIVMSG #a :".to_vec();
        input.extend(std::iter::repeat_n(b'x', 100_000));
        input.extend_from_slice(b"\r\nPRIVMSG #a :ok\r\nPRIVMSG #a :n\0ul\r\n");
        let mut f = Framer::default();
        let mut buf = Vec::new();
        let mut out = Vec::new();
        let mut peak = 0;
        // Fed in chunks, as a socket would; the buffer never holds the
        // whole 100 KB line.
        for chunk in input.chunks(4096) {
            buf.extend_from_slice(chunk);
            peak = peak.max(buf.len());
            out.extend(drain(&mut f, &mut buf));
        }
        assert_eq!(
            out,
            vec![
                Frame::Refused(LineError::TooLong),
                Frame::Line(b"PRIVMSG #a :ok".to_vec()),
                Frame::Refused(LineError::Nul),
            ]
        );
        assert!(peak < 16 * 1024, "{peak}");
        // Tags may take 8191 bytes on their own.
        let tags = format!("@{} PRIVMSG #a :hi\r\n", "a".repeat(8000));
        assert!(matches!(frames(tags.as_bytes())[0], Frame::Line(_)));
        let rest = format!("PRIVMSG #a :{}\r\n", "a".repeat(600));
        assert_eq!(
            frames(rest.as_bytes()),
            vec![Frame::Refused(LineError::TooLong)]
        );
    }

    #[test]
    fn lines_that_are_not_utf8_become_utf8() {
        assert_eq!(
            into_utf8(b"PRIVMSG a :ok".to_vec()).unwrap(),
            b"PRIVMSG a :ok"
        );
        assert_eq!(
            into_utf8(b"PRIVMSG a :s\xe9cret".to_vec()).unwrap(),
            "PRIVMSG a :s\u{fffd}cret".as_bytes()
        );
        let mut long = b"PRIVMSG a :".to_vec();
        long.extend(std::iter::repeat_n(0xe9, 400));
        assert_eq!(into_utf8(long), Err(LineError::TooLong));
    }

    #[test]
    fn messages_parse_and_write_back() {
        let m = Message::parse(b"@+typing=active;msgid=a\\sb :nick!u@h privmsg #chan :hello there")
            .unwrap();
        assert_eq!(m.command, "PRIVMSG");
        assert_eq!(m.nick(), Some("nick"));
        assert_eq!(m.params.as_slice(), ["#chan", "hello there"]);
        assert_eq!(m.tag("msgid").as_deref(), Some("a b"));
        assert_eq!(m.tag("+typing").as_deref(), Some("active"));
        assert_eq!(
            m.to_line(),
            "@+typing=active;msgid=a\\sb :nick!u@h PRIVMSG #chan :hello there\r\n"
        );
        let m = Message::parse(b"CAP LS 302").unwrap();
        assert_eq!(m.params.as_slice(), ["LS", "302"]);
        assert!(matches!(m.command, Cow::Borrowed(_)), "nothing copied");
        assert!(Message::parse(b"").is_none());
        assert!(Message::parse(b":prefix-only").is_none());
    }

    #[test]
    fn text_splits_on_utf8_boundaries_within_the_limit() {
        let head = "PRIVMSG #chan :".len();
        let text = "é".repeat(600);
        let parts = split_text(&text, head);
        assert!(parts.len() > 1);
        assert_eq!(parts.concat(), text);
        for p in &parts {
            assert!(p.len() + head + 2 <= MAX_REST, "{}", p.len());
        }
        let words = "word ".repeat(200);
        let parts = split_text(words.trim_end(), head);
        assert_eq!(parts.join(" "), words.trim_end());
        assert!(
            parts
                .iter()
                .all(|p| !p.starts_with(' ') && !p.ends_with(' '))
        );
    }
}
