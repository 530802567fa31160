//! XMPP bytes to frames, with no I/O: the stream header, each top-level
//! element (stanza or nonza) as its exact bytes, and the stream's end.
//!
//! The framer scans tags without building a tree, so a stanza that is
//! passed through untouched is forwarded byte for byte. Only stanzas the
//! adapter looks into are parsed, by [`Element::parse`] (quick-xml).
//!
//! What XMPP forbids is refused here, before any parser sees it (RFC 6120
//! §11.1): DTDs (so no entity can be declared, which defeats XML bombs),
//! comments and processing instructions. Stanza size and nesting depth are
//! limited. "Not enough bytes yet" is `Ok(None)`, distinct from malformed.

use crate::event::text::is_xml_char;
use std::fmt::Write as _;

/// Limits on what one peer may send.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_stanza_bytes: usize,
    pub max_depth: usize,
}

/// One unit of the stream.
#[derive(Debug, PartialEq)]
pub enum Frame {
    /// `<stream:stream ...>`: the stream's start, or its restart after
    /// STARTTLS or SASL. The bytes are the tag itself.
    StreamOpen(Vec<u8>),
    /// A complete top-level element, exactly as received.
    Element(Vec<u8>),
    /// Whitespace between elements: a keepalive.
    Whitespace(Vec<u8>),
    /// `</stream:stream>`.
    StreamClose,
}

/// Why the stream cannot go on; each maps to a stream error condition.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CodecError {
    #[error("malformed XML: {0}")]
    Malformed(String),
    #[error("stanza larger than {0} bytes")]
    TooLarge(usize),
    #[error("elements nested deeper than {0}")]
    TooDeep(usize),
    #[error("{0} are not allowed in XMPP")]
    Forbidden(&'static str),
}

impl CodecError {
    /// The RFC 6120 stream error condition to send.
    pub fn condition(&self) -> &'static str {
        match self {
            CodecError::Malformed(_) => "not-well-formed",
            CodecError::TooLarge(_) => "policy-violation",
            CodecError::TooDeep(_) => "policy-violation",
            CodecError::Forbidden(_) => "restricted-xml",
        }
    }
}

/// Splits one direction of a stream into frames. Keeps its place between
/// calls, so bytes arriving a few at a time are scanned once.
#[derive(Debug)]
pub struct Framer {
    limits: Limits,
    /// Inside `<stream:stream>`.
    open: bool,
    /// Depth inside the current top-level element (0: between elements).
    depth: usize,
    /// Bytes of the buffer already scanned as part of the current frame.
    scanned: usize,
}

enum Step {
    /// Need more bytes.
    More,
    /// Consumed `n` bytes into the current frame.
    Advance(usize),
    Done(Frame, usize),
}

impl Framer {
    pub fn new(limits: Limits) -> Self {
        Framer {
            limits,
            open: false,
            depth: 0,
            scanned: 0,
        }
    }

    /// Takes the next frame from the front of `buf`; the caller drains the
    /// returned byte count.
    ///
    /// # Errors
    /// The bytes are not XMPP's XML subset, or break a limit.
    pub fn next(&mut self, buf: &[u8]) -> Result<Option<(Frame, usize)>, CodecError> {
        loop {
            if self.depth > 0 && self.scanned > self.limits.max_stanza_bytes {
                return Err(CodecError::TooLarge(self.limits.max_stanza_bytes));
            }
            match self.step(buf)? {
                Step::More => {
                    // An incomplete stanza counts against the limit too, so a
                    // peer cannot make the buffer grow without bound.
                    if buf.len() > self.limits.max_stanza_bytes + 4096 {
                        return Err(CodecError::TooLarge(self.limits.max_stanza_bytes));
                    }
                    return Ok(None);
                }
                Step::Advance(n) => self.scanned += n,
                Step::Done(frame, end) => {
                    self.scanned = 0;
                    if let Frame::StreamOpen(b) | Frame::Element(b) = &frame {
                        check_chars(b)?;
                        // Again on the whole frame: a reference split
                        // across two reads was only half seen while scanning.
                        check_references(b)?;
                    }
                    return Ok(Some((frame, end)));
                }
            }
        }
    }

    fn step(&mut self, buf: &[u8]) -> Result<Step, CodecError> {
        let at = self.scanned;
        let rest = &buf[at..];
        let Some(&first) = rest.first() else {
            return Ok(Step::More);
        };
        if first != b'<' {
            // Character data.
            let end = rest.iter().position(|&b| b == b'<').unwrap_or(rest.len());
            let text = &rest[..end];
            check_references(text)?;
            if self.depth == 0 {
                if !text.iter().all(|b| is_xml_space(*b)) {
                    return Err(CodecError::Malformed("text outside any element".into()));
                }
                if end == rest.len() && end == 0 {
                    return Ok(Step::More);
                }
                return Ok(Step::Done(Frame::Whitespace(text.to_vec()), at + end));
            }
            if end == rest.len() {
                return Ok(if end == 0 {
                    Step::More
                } else {
                    Step::Advance(end)
                });
            }
            return Ok(Step::Advance(end));
        }
        if rest.len() < 2 {
            return Ok(Step::More);
        }
        match rest[1] {
            b'?' => {
                let Some(end) = find(rest, b"?>") else {
                    return Ok(Step::More);
                };
                // Only the XML declaration, and only before a stream (re)start.
                if self.depth == 0
                    && rest.starts_with(b"<?xml")
                    && rest
                        .get(5)
                        .is_some_and(|b| b.is_ascii_whitespace() || *b == b'?')
                {
                    return Ok(Step::Done(Frame::Whitespace(Vec::new()), at + end + 2));
                }
                Err(CodecError::Forbidden("processing instructions"))
            }
            b'!' => {
                if rest.starts_with(b"<!--") {
                    return Err(CodecError::Forbidden("comments"));
                }
                if rest.starts_with(b"<![CDATA[") {
                    if self.depth == 0 {
                        return Err(CodecError::Malformed("CDATA outside any element".into()));
                    }
                    return Ok(match find(rest, b"]]>") {
                        Some(end) => Step::Advance(end + 3),
                        None => Step::More,
                    });
                }
                // Too few bytes yet to tell which it is.
                if b"<![CDATA[".starts_with(rest) || b"<!--".starts_with(rest) {
                    return Ok(Step::More);
                }
                Err(CodecError::Forbidden("DTDs and entity declarations"))
            }
            b'/' => {
                let Some(end) = tag_end(rest)? else {
                    return Ok(Step::More);
                };
                let name = tag_name(&rest[2..end]);
                check_name(name)?;
                if self.depth == 0 {
                    if is_stream_tag(name) {
                        self.open = false;
                        return Ok(Step::Done(Frame::StreamClose, at + end + 1));
                    }
                    return Err(CodecError::Malformed(format!(
                        "unexpected end tag </{}>",
                        String::from_utf8_lossy(name)
                    )));
                }
                self.depth -= 1;
                if self.depth == 0 {
                    let frame = buf[..at + end + 1].to_vec();
                    return Ok(Step::Done(Frame::Element(frame), at + end + 1));
                }
                Ok(Step::Advance(end + 1))
            }
            _ => {
                let Some(end) = tag_end(rest)? else {
                    return Ok(Step::More);
                };
                let tag = &rest[..=end];
                check_references(tag)?;
                let empty = end > 0 && rest[end - 1] == b'/';
                check_name(tag_name(&rest[1..end]))?;
                if self.depth == 0 && is_stream_tag(tag_name(&rest[1..end])) {
                    if empty {
                        return Err(CodecError::Malformed("empty stream element".into()));
                    }
                    self.open = true;
                    return Ok(Step::Done(Frame::StreamOpen(tag.to_vec()), at + end + 1));
                }
                if !self.open {
                    return Err(CodecError::Malformed(
                        "element before the stream header".into(),
                    ));
                }
                if empty {
                    if self.depth == 0 {
                        return Ok(Step::Done(
                            Frame::Element(buf[..at + end + 1].to_vec()),
                            at + end + 1,
                        ));
                    }
                    return Ok(Step::Advance(end + 1));
                }
                self.depth += 1;
                if self.depth > self.limits.max_depth {
                    return Err(CodecError::TooDeep(self.limits.max_depth));
                }
                Ok(Step::Advance(end + 1))
            }
        }
    }
}

/// After the element: nothing but white space. (The framer hands over one
/// element; a parser that stopped early would judge less than is sent.)
fn nothing_after(reader: &mut quick_xml::Reader<&[u8]>) -> Result<(), CodecError> {
    use quick_xml::events::Event as X;
    loop {
        match reader.read_event() {
            Ok(X::Eof) => return Ok(()),
            Ok(X::Text(t)) if t.iter().all(|b| is_xml_space(*b)) => {}
            Ok(_) => return Err(CodecError::Malformed("more after the element".into())),
            Err(e) => return Err(CodecError::Malformed(e.to_string())),
        }
    }
}

/// Whether `name` is an XML `Name` as far as writing it back needs: it
/// starts with a letter, `_`, `:` or a non-ASCII character, and holds no
/// white space or markup character.
fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_alphabetic() || matches!(c, '_' | ':') || !c.is_ascii())
        && chars.all(|c| {
            !c.is_whitespace()
                && !c.is_control()
                && !matches!(
                    c,
                    '"' | '\'' | '<' | '>' | '=' | '/' | '&' | ';' | '?' | '!'
                )
        })
}

/// An element name must start as an XML `Name` does (not empty, not a
/// digit, `-` or `.`); the server refuses `<>` or `<1a>`, so imgate does too.
fn check_name(name: &[u8]) -> Result<(), CodecError> {
    match name.first() {
        Some(b) if b.is_ascii_alphabetic() || matches!(b, b'_' | b':') || *b >= 0x80 => Ok(()),
        _ => Err(CodecError::Malformed(format!(
            "`{}` is not an element name",
            String::from_utf8_lossy(name)
        ))),
    }
}

/// XML's white space (`S`): form feed and vertical tab are not.
fn is_xml_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// A frame must be UTF-8 made of XML characters only, as the server
/// demands (Prosody closes the stream otherwise): refusing it here keeps
/// the gateway's reading and the server's the same.
fn check_chars(bytes: &[u8]) -> Result<(), CodecError> {
    let text =
        std::str::from_utf8(bytes).map_err(|e| CodecError::Malformed(format!("not UTF-8: {e}")))?;
    // Only control characters and U+FFFE/U+FFFF can be outside `Char`
    // in a Rust string; scan bytes for the common case.
    let suspect = bytes
        .iter()
        .any(|&b| (b < 0x20 && !is_xml_space(b)) || b == 0xEF);
    if suspect && let Some(c) = text.chars().find(|&c| !is_xml_char(c)) {
        return Err(CodecError::Malformed(format!(
            "character U+{:04X} is not allowed in XML",
            c as u32
        )));
    }
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Index of the `>` closing the tag at the start of `s`, skipping quoted
/// attribute values (which may contain `>`).
/// A `/` outside quotes may only end the tag (`<a/>`, or begin `</a>`):
/// a parser reads `<a/ >` differently from a scanner, so it is refused.
fn tag_end(s: &[u8]) -> Result<Option<usize>, CodecError> {
    let mut quote = None;
    let end_tag = s.get(1) == Some(&b'/');
    let mut slash = false;
    for (i, &b) in s.iter().enumerate().skip(if end_tag { 2 } else { 1 }) {
        if slash && b != b'>' {
            return Err(CodecError::Malformed("'/' inside a tag".into()));
        }
        match (quote, b) {
            (None, b'"' | b'\'') if !end_tag => quote = Some(b),
            (Some(q), _) if b == q => quote = None,
            (None, b'>') => return Ok(Some(i)),
            (None, b'<') => return Err(CodecError::Malformed("'<' inside a tag".into())),
            (None, b'/') if !end_tag => slash = true,
            (None, b'/' | b'"' | b'\'' | b'=') if end_tag => {
                return Err(CodecError::Malformed("an end tag holds only a name".into()));
            }
            _ => {}
        }
    }
    Ok(None)
}

fn tag_name(s: &[u8]) -> &[u8] {
    let end = s
        .iter()
        .position(|b| b.is_ascii_whitespace() || *b == b'/' || *b == b'>')
        .unwrap_or(s.len());
    &s[..end]
}

/// The stream element: `stream:stream`, or any prefix's `stream`.
fn is_stream_tag(name: &[u8]) -> bool {
    name == b"stream" || name.ends_with(b":stream")
}

/// Only the five predefined entities and character references exist in
/// XMPP; anything else would need a DTD.
fn check_references(s: &[u8]) -> Result<(), CodecError> {
    let mut i = 0;
    while let Some(p) = s[i..].iter().position(|&b| b == b'&') {
        let start = i + p + 1;
        let Some(len) = s[start..].iter().position(|&b| b == b';') else {
            // The reference may continue in the next read; a stray '&'
            // without ';' is caught by the parser.
            return Ok(());
        };
        let name = &s[start..start + len];
        let ok = matches!(name, b"lt" | b"gt" | b"amp" | b"quot" | b"apos")
            || (name.len() > 1
                && name[0] == b'#'
                && (name[1..].iter().all(u8::is_ascii_digit)
                    || (name.len() > 2
                        && name[1] == b'x'
                        && name[2..].iter().all(u8::is_ascii_hexdigit))));
        if !ok {
            return Err(CodecError::Forbidden("entity references"));
        }
        if name[0] == b'#' {
            // A reference must name an XML character too (`&#0;` is not).
            let digits = std::str::from_utf8(&name[1..]).unwrap_or("");
            let value = match digits.strip_prefix('x') {
                Some(hex) => u32::from_str_radix(hex, 16),
                None => digits.parse(),
            };
            if !value.ok().and_then(char::from_u32).is_some_and(is_xml_char) {
                return Err(CodecError::Malformed(format!(
                    "reference &{}; is not an XML character",
                    String::from_utf8_lossy(name)
                )));
            }
        }
        i = start + len + 1;
    }
    Ok(())
}

/// A parsed element: what the adapter needs to read and, when a verdict
/// changes it, to write back. Attribute values are unescaped; names are as
/// written, namespace declarations included, so writing it back keeps its
/// meaning inside the same stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Element {
    pub name: String,
    /// The resolved namespace of this element.
    pub ns: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Element(Element),
    Text(String),
}

/// The default namespace of stanzas in a client-to-server stream.
pub const JABBER_CLIENT: &str = "jabber:client";
pub const STREAMS: &str = "http://etherx.jabber.org/streams";

struct Scope {
    default: String,
    prefixes: Vec<(String, String)>,
}

impl Element {
    pub fn new(name: &str, ns: &str) -> Element {
        Element {
            name: name.to_owned(),
            ns: ns.to_owned(),
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }

    pub fn with_attr(mut self, name: &str, value: &str) -> Element {
        self.set_attr(name, value);
        self
    }

    pub fn with_child(mut self, child: Element) -> Element {
        self.children.push(Node::Element(child));
        self
    }

    pub fn with_text(mut self, text: &str) -> Element {
        self.children.push(Node::Text(text.to_owned()));
        self
    }

    /// The local name of a framed element's start tag (`message` for
    /// `<message ...>` and `<c:message ...>`), read without parsing, so an
    /// element the adapter does not look into is never parsed.
    pub fn local_name_of(frame: &[u8]) -> &[u8] {
        let start = frame
            .iter()
            .position(|&b| b == b'<')
            .map_or(frame.len(), |i| i + 1);
        let rest = &frame[start..];
        let end = rest
            .iter()
            .position(|&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'/' | b'>'))
            .unwrap_or(rest.len());
        let name = &rest[..end];
        // After the last colon: a name with two is not a stanza to the
        // server, but reading it as one only means parsing it.
        match name.iter().rposition(|&b| b == b':') {
            Some(colon) => &name[colon + 1..],
            None => name,
        }
    }

    /// Parses one complete top-level element as framed by [`Framer`].
    /// Stanzas inherit `jabber:client` and the `stream:` prefix.
    ///
    /// # Errors
    /// The bytes are not well-formed XML or not UTF-8.
    pub fn parse(bytes: &[u8]) -> Result<Element, CodecError> {
        use quick_xml::events::Event as X;
        let mut reader = quick_xml::Reader::from_reader(bytes);
        reader.config_mut().check_end_names = true;
        let bad = |e: &dyn std::fmt::Display| CodecError::Malformed(e.to_string());
        let mut stack: Vec<(Element, Scope)> = Vec::new();
        let root_scope = Scope {
            default: JABBER_CLIENT.into(),
            prefixes: vec![("stream".into(), STREAMS.into())],
        };
        loop {
            match reader.read_event().map_err(|e| bad(&e))? {
                X::Start(start) => {
                    let parent = stack.last().map(|(_, s)| s).unwrap_or(&root_scope);
                    let (el, scope) = open_element(&start, parent)?;
                    stack.push((el, scope));
                }
                X::Empty(start) => {
                    let parent = stack.last().map(|(_, s)| s).unwrap_or(&root_scope);
                    let (el, _) = open_element(&start, parent)?;
                    match stack.last_mut() {
                        Some((p, _)) => p.children.push(Node::Element(el)),
                        None => return nothing_after(&mut reader).map(|()| el),
                    }
                }
                X::End(_) => {
                    let Some((el, _)) = stack.pop() else {
                        return Err(CodecError::Malformed("unbalanced end tag".into()));
                    };
                    match stack.last_mut() {
                        Some((p, _)) => p.children.push(Node::Element(el)),
                        None => return nothing_after(&mut reader).map(|()| el),
                    }
                }
                X::Text(t) => {
                    // XML 1.0 line ends (xml_content would also fold
                    // U+0085 and U+2028, as XML 1.1 does; the server does not).
                    let text = t.xml10_content().map_err(|e| bad(&e))?;
                    let text = unescape(&text)?;
                    if let Some((p, _)) = stack.last_mut() {
                        push_text(p, &text);
                    }
                }
                X::GeneralRef(r) => {
                    let name = std::str::from_utf8(&r).map_err(|e| bad(&e))?;
                    let text = unescape(&format!("&{name};"))?;
                    if let Some((p, _)) = stack.last_mut() {
                        push_text(p, &text);
                    }
                }
                X::CData(c) => {
                    // Line ends are normalised here too, as the server's
                    // parser does (XML 1.0 §2.11): the text judged is the
                    // text it reads.
                    let text = c.xml10_content().map_err(|e| bad(&e))?.into_owned();
                    if let Some((p, _)) = stack.last_mut() {
                        push_text(p, &text);
                    }
                }
                X::Eof => return Err(CodecError::Malformed("element ends early".into())),
                X::Comment(_) => return Err(CodecError::Forbidden("comments")),
                X::PI(_) | X::Decl(_) => {
                    return Err(CodecError::Forbidden("processing instructions"));
                }
                X::DocType(_) => return Err(CodecError::Forbidden("DTDs and entity declarations")),
            }
        }
    }

    pub fn local_name(&self) -> &str {
        self.name.rsplit(':').next().unwrap_or(&self.name)
    }

    /// Is this `local` in namespace `ns`?
    pub fn is(&self, local: &str, ns: &str) -> bool {
        self.local_name() == local && self.ns == ns
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn set_attr(&mut self, name: &str, value: &str) {
        match self.attrs.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value.to_owned(),
            None => self.attrs.push((name.to_owned(), value.to_owned())),
        }
    }

    pub fn remove_attr(&mut self, name: &str) {
        self.attrs.retain(|(n, _)| n != name);
    }

    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    pub fn child(&self, local: &str, ns: &str) -> Option<&Element> {
        self.elements().find(|e| e.is(local, ns))
    }

    pub fn child_mut(&mut self, local: &str, ns: &str) -> Option<&mut Element> {
        self.children.iter_mut().find_map(|n| match n {
            Node::Element(e) if e.is(local, ns) => Some(e),
            _ => None,
        })
    }

    /// The element's own text, children's excluded.
    pub fn text(&self) -> String {
        self.children
            .iter()
            .filter_map(|n| match n {
                Node::Text(t) => Some(t.as_str()),
                Node::Element(_) => None,
            })
            .collect()
    }

    pub fn set_text(&mut self, text: &str) {
        self.children = vec![Node::Text(text.to_owned())];
    }

    /// The XML of this element.
    pub fn to_xml(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    /// The XML of the children only (the element's content).
    pub fn inner_xml(&self) -> String {
        let mut out = String::new();
        for child in &self.children {
            match child {
                Node::Element(e) => e.write(&mut out),
                Node::Text(t) => out.push_str(&escape(t, false)),
            }
        }
        out
    }

    fn write(&self, out: &mut String) {
        let _ = write!(out, "<{}", self.name);
        for (n, v) in &self.attrs {
            let _ = write!(out, " {n}='{}'", escape(v, true));
        }
        if self.children.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for child in &self.children {
            match child {
                Node::Element(e) => e.write(out),
                Node::Text(t) => out.push_str(&escape(t, false)),
            }
        }
        let _ = write!(out, "</{}>", self.name);
    }
}

fn push_text(el: &mut Element, text: &str) {
    if text.is_empty() {
        return;
    }
    if let Some(Node::Text(t)) = el.children.last_mut() {
        t.push_str(text);
    } else {
        el.children.push(Node::Text(text.to_owned()));
    }
}

fn unescape(s: &str) -> Result<String, CodecError> {
    quick_xml::escape::unescape(s)
        .map(|c| c.into_owned())
        .map_err(|_| CodecError::Forbidden("entity references"))
}

/// Escapes markup, and replaces what XML 1.0 cannot carry (NUL, other
/// control characters, U+FFFE, U+FFFF) with U+FFFD: text from a plugin or
/// a client is data, and must never break the stream it is written to.
pub fn escape(s: &str, attr: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            c if !is_xml_char(c) => out.push('\u{FFFD}'),
            // A raw CR would be read back as LF (line-end normalisation),
            // and in an attribute LF and tab as spaces.
            '\r' => out.push_str("&#13;"),
            '\n' if attr => out.push_str("&#10;"),
            '\t' if attr => out.push_str("&#9;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' if attr => out.push_str("&apos;"),
            '"' if attr => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

fn open_element(
    start: &quick_xml::events::BytesStart<'_>,
    parent: &Scope,
) -> Result<(Element, Scope), CodecError> {
    let bad = |e: &dyn std::fmt::Display| CodecError::Malformed(e.to_string());
    let name = std::str::from_utf8(start.name().as_ref())
        .map_err(|e| bad(&e))?
        .to_owned();
    if !is_name(&name) {
        return Err(CodecError::Malformed(format!(
            "`{name}` is not an element name"
        )));
    }
    let mut attrs = Vec::new();
    let mut scope = Scope {
        default: parent.default.clone(),
        prefixes: parent.prefixes.clone(),
    };
    for attr in start.attributes() {
        let attr = attr.map_err(|e| bad(&e))?;
        let key = std::str::from_utf8(attr.key.as_ref())
            .map_err(|e| bad(&e))?
            .to_owned();
        // quick-xml is lenient with names; what it let through could not
        // be written back as XML.
        if !is_name(&key) {
            return Err(CodecError::Malformed(format!(
                "`{key}` is not an attribute name"
            )));
        }
        let raw = std::str::from_utf8(&attr.value).map_err(|e| bad(&e))?;
        // Attribute-value normalisation (XML 1.0 §3.3.3), as the server's
        // parser does it: literal white space becomes a space; references
        // (`&#10;`) keep theirs.
        let value = unescape(&raw.replace("\r\n", " ").replace(['\r', '\n', '\t'], " "))?;
        if key == "xmlns" {
            scope.default = value.clone();
        } else if let Some(prefix) = key.strip_prefix("xmlns:") {
            scope.prefixes.push((prefix.to_owned(), value.clone()));
        }
        attrs.push((key, value));
    }
    let ns = match name.split_once(':') {
        Some((prefix, _)) => scope
            .prefixes
            .iter()
            .rev()
            .find(|(p, _)| p == prefix)
            .map(|(_, ns)| ns.clone())
            .ok_or_else(|| CodecError::Malformed(format!("undeclared prefix `{prefix}`")))?,
        None => scope.default.clone(),
    };
    Ok((
        Element {
            name,
            ns,
            attrs,
            children: Vec::new(),
        },
        scope,
    ))
}

/// Reads the attributes of a stream header tag (`<stream:stream ...>`).
pub fn stream_attrs(tag: &[u8]) -> Result<Vec<(String, String)>, CodecError> {
    // Close the tag so it parses as one empty element.
    let mut closed = tag.to_vec();
    if closed.last() == Some(&b'>') {
        closed.pop();
        closed.extend_from_slice(b"/>");
    }
    let mut reader = quick_xml::Reader::from_reader(closed.as_slice());
    match reader.read_event() {
        Ok(quick_xml::events::Event::Empty(start)) => {
            let mut attrs = Vec::new();
            for attr in start.attributes() {
                let attr = attr.map_err(|e| CodecError::Malformed(e.to_string()))?;
                let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
                let raw = String::from_utf8_lossy(&attr.value).into_owned();
                attrs.push((key, unescape(&raw)?));
            }
            Ok(attrs)
        }
        Ok(_) => Err(CodecError::Malformed("not a stream header".into())),
        Err(e) => Err(CodecError::Malformed(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_stanza_bytes: 1024,
        max_depth: 8,
    };

    fn frames(input: &[u8]) -> Result<Vec<Frame>, CodecError> {
        let mut framer = Framer::new(LIMITS);
        let mut buf = input.to_vec();
        let mut out = Vec::new();
        while let Some((frame, n)) = framer.next(&buf)? {
            buf.drain(..n);
            out.push(frame);
        }
        Ok(out)
    }

    const OPEN: &str = "<?xml version='1.0'?><stream:stream to='example.com' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";

    #[test]
    fn a_stream_splits_into_header_stanzas_and_close() {
        let input = format!(
            "{OPEN}<message to='a@b' id='1'><body>hi &amp; &lt;bye&gt; &#x263A;</body></message> <r xmlns='urn:xmpp:sm:3'/></stream:stream>"
        );
        let got = frames(input.as_bytes()).unwrap();
        assert!(matches!(got[0], Frame::Whitespace(ref w) if w.is_empty()));
        assert!(matches!(got[1], Frame::StreamOpen(_)));
        assert_eq!(
            got[2],
            Frame::Element(
                b"<message to='a@b' id='1'><body>hi &amp; &lt;bye&gt; &#x263A;</body></message>"
                    .to_vec()
            )
        );
        assert_eq!(got[3], Frame::Whitespace(b" ".to_vec()));
        assert_eq!(
            got[4],
            Frame::Element(b"<r xmlns='urn:xmpp:sm:3'/>".to_vec())
        );
        assert_eq!(got[5], Frame::StreamClose);
    }

    #[test]
    fn bytes_arriving_one_at_a_time_give_the_same_frames() {
        let input = format!(
            "{OPEN}<message to='a@b' id='x>y'><body>one</body><![CDATA[<not a tag>]]></message><presence/>"
        );
        let whole = frames(input.as_bytes()).unwrap();
        let mut framer = Framer::new(LIMITS);
        let mut buf = Vec::new();
        let mut got = Vec::new();
        for &b in input.as_bytes() {
            buf.push(b);
            while let Some((frame, n)) = framer.next(&buf).unwrap() {
                buf.drain(..n);
                got.push(frame);
            }
        }
        assert_eq!(got, whole);
        assert_eq!(got.len(), 4);
    }

    #[test]
    fn a_restart_inside_the_stream_is_a_new_header() {
        let input = format!("{OPEN}<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>{OPEN}");
        let got = frames(input.as_bytes()).unwrap();
        let opens = got
            .iter()
            .filter(|f| matches!(f, Frame::StreamOpen(_)))
            .count();
        assert_eq!(opens, 2);
    }

    #[test]
    fn forbidden_xml_is_refused() {
        let bomb = "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'><!ENTITY lol2 '&lol;&lol;'>]><stream:stream>";
        assert_eq!(
            frames(bomb.as_bytes()).unwrap_err(),
            CodecError::Forbidden("DTDs and entity declarations")
        );
        let entity = format!("{OPEN}<message><body>&lol9;</body></message>");
        assert_eq!(
            frames(entity.as_bytes()).unwrap_err(),
            CodecError::Forbidden("entity references")
        );
        let comment = format!("{OPEN}<!-- hi -->");
        assert_eq!(
            frames(comment.as_bytes()).unwrap_err(),
            CodecError::Forbidden("comments")
        );
        let pi = format!("{OPEN}<message><?evil?></message>");
        assert_eq!(
            frames(pi.as_bytes()).unwrap_err(),
            CodecError::Forbidden("processing instructions")
        );
    }

    #[test]
    fn only_xml_characters_pass_as_the_server_demands() {
        for bad in [
            "<message><body>a\u{0}b</body></message>",
            "<message><body>a\u{1}b</body></message>",
            "<message><body>a\u{b}b</body></message>",
            "<message><body>a\u{fffe}b</body></message>",
            "<message><body>a&#0;b</body></message>",
            "<message><body>a&#x1;b</body></message>",
            "<message><body>a&#xFFFF;b</body></message>",
            "<message><body>a&#99999999;b</body></message>",
            "<message to='a\u{1}'/>",
        ] {
            let input = format!("{OPEN}{bad}");
            assert!(
                matches!(frames(input.as_bytes()), Err(CodecError::Malformed(_))),
                "{bad:?}"
            );
        }
        let mut latin1 = format!("{OPEN}<message><body>").into_bytes();
        latin1.extend_from_slice(b"s\xe9cret</body></message>");
        assert!(matches!(frames(&latin1), Err(CodecError::Malformed(_))));
        // Form feed is not XML white space between stanzas.
        let ff = format!("{OPEN}\u{c}<presence/>");
        assert!(matches!(
            frames(ff.as_bytes()),
            Err(CodecError::Malformed(_))
        ));
        // A reference split across reads is still checked.
        let mut framer = Framer::new(LIMITS);
        let mut buf = format!("{OPEN}<message><body>a&#").into_bytes();
        while let Some((_, n)) = framer.next(&buf).unwrap() {
            buf.drain(..n);
        }
        buf.extend_from_slice(b"0;</body></message>");
        assert!(framer.next(&buf).is_err());
        // What is allowed still passes.
        let ok = format!(
            "{OPEN}<message><body>tab\there &#x263A; \u{1F600} &#10;</body></message>\t\r\n"
        );
        let ok = frames(ok.as_bytes()).unwrap();
        assert!(
            matches!(&ok[..], [.., Frame::Element(_), Frame::Whitespace(_)]),
            "{ok:?}"
        );
    }

    #[test]
    fn written_text_is_always_xml() {
        let el = Element::new("message", "jabber:client")
            .with_attr("id", "a\u{0}b")
            .with_child(
                Element::new("body", "jabber:client").with_text("x\u{1}\u{b}\u{fffe}\u{ffff}y\nz"),
            );
        let xml = el.to_xml();
        assert!(xml.chars().all(is_xml_char), "{xml:?}");
        assert!(
            xml.contains("x\u{fffd}\u{fffd}\u{fffd}\u{fffd}y\nz"),
            "{xml:?}"
        );
        let input = format!("{OPEN}{xml}");
        let frames = frames(input.as_bytes()).unwrap();
        assert!(
            matches!(frames.last(), Some(Frame::Element(_))),
            "{frames:?}"
        );
    }

    #[test]
    fn limits_hold_even_for_incomplete_stanzas() {
        let big = format!("{OPEN}<message><body>{}", "a".repeat(8000));
        assert_eq!(
            frames(big.as_bytes()).unwrap_err(),
            CodecError::TooLarge(1024)
        );
        let deep = format!("{OPEN}{}", "<a>".repeat(9));
        assert_eq!(frames(deep.as_bytes()).unwrap_err(), CodecError::TooDeep(8));
    }

    #[test]
    fn malformed_input_is_malformed() {
        for bad in [
            "hello".to_string(),
            format!("{OPEN}</message>"),
            format!("{OPEN}stray text"),
            "<message/>".to_string(),
        ] {
            let err = frames(bad.as_bytes());
            assert!(
                matches!(err, Err(CodecError::Malformed(_))),
                "{bad}: {err:?}"
            );
        }
        assert!(matches!(
            Element::parse(b"<message><body></message>"),
            Err(CodecError::Malformed(_))
        ));
    }

    #[test]
    fn elements_parse_with_namespaces_and_write_back() {
        let xml = b"<message to='a@b' id='1'><body>x &lt; y</body><html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'><p>x <b>bold</b></p></body></html></message>";
        let el = Element::parse(xml).unwrap();
        assert!(el.is("message", JABBER_CLIENT));
        assert_eq!(el.child("body", JABBER_CLIENT).unwrap().text(), "x < y");
        let html = el
            .child("html", "http://jabber.org/protocol/xhtml-im")
            .unwrap();
        let body = html.child("body", "http://www.w3.org/1999/xhtml").unwrap();
        assert_eq!(body.inner_xml(), "<p>x <b>bold</b></p>");
        let again = Element::parse(el.to_xml().as_bytes()).unwrap();
        assert_eq!(again, el);
        let prefixed = Element::parse(b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></stream:features>").unwrap();
        assert!(prefixed.is("features", STREAMS));
    }

    #[test]
    fn stream_header_attributes() {
        let attrs = stream_attrs(&OPEN.as_bytes()[21..]).unwrap();
        assert!(attrs.contains(&("to".into(), "example.com".into())));
    }

    #[test]
    fn the_local_name_is_read_without_parsing() {
        assert_eq!(
            Element::local_name_of(b"<message to='a'>x</message>"),
            b"message"
        );
        assert_eq!(Element::local_name_of(b"<c:iq/>"), b"iq");
        assert_eq!(Element::local_name_of(b"<a:b:message>"), b"message");
        assert_eq!(
            Element::local_name_of(b"<a xmlns='urn:xmpp:sm:3' h='1'/>"),
            b"a"
        );
        assert_eq!(Element::local_name_of(b"<stream:features>"), b"features");
        assert_eq!(Element::local_name_of(b""), b"");
    }
}
