//! What each fuzz target checks, as plain functions: the libFuzzer
//! binaries in `fuzz_targets/` call them under coverage guidance
//! (`make fuzz`), and `tests/smoke.rs` runs them over the committed corpus
//! and mutations of it in every `cargo test`.
//!
//! Each function panics when imgate breaks a promise on that input; a
//! clean return means the input was handled (accepted or refused).

pub mod ngircd;

use imgate::adapters::irc::codec::{self, Frame, Framer, LineError, Message, Next};
use imgate::adapters::irc::events::{self as irc_events, Ctcp, Me, Outcome};
use imgate::adapters::xmpp::codec::{self as xmpp, Element, Limits};
use imgate::event::{Action, Direction};

/// `input` in the pieces a socket might deliver: sizes from `cuts`
/// (`scale` bytes per unit, plus one), or whole when `cuts` is empty.
fn pieces<'a>(input: &'a [u8], cuts: &'a [u8], scale: usize) -> impl Iterator<Item = &'a [u8]> {
    let mut sizes = cuts
        .iter()
        .map(move |&c| usize::from(c) * scale + 1)
        .cycle();
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= input.len() {
            return None;
        }
        let n = sizes.next().unwrap_or(input.len());
        let end = (at + n).min(input.len());
        let piece = &input[at..end];
        at = end;
        Some(piece)
    })
}

/// Frames `input` fed in pieces whose sizes come from `cuts`, as a socket
/// would deliver it.
pub fn irc_frames(input: &[u8], cuts: &[u8]) -> Vec<Frame> {
    let mut framer = Framer::default();
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for piece in pieces(input, cuts, 7) {
        buf.extend_from_slice(piece);
        loop {
            match framer.next(&buf) {
                Next::Frame(frame, used) => {
                    buf.drain(..used);
                    out.push(frame);
                }
                Next::Discard(used) => {
                    buf.drain(..used);
                }
                Next::More => break,
            }
        }
        // The framer never holds more than one over-long line's worth.
        assert!(
            buf.len() <= codec::MAX_TAGS + codec::MAX_REST + 1,
            "buffer {}",
            buf.len()
        );
    }
    out
}

fn split_input(data: &[u8]) -> (&[u8], &[u8]) {
    let n = usize::from(data.first().copied().unwrap_or(0) % 16);
    let rest = data.get(1..).unwrap_or_default();
    rest.split_at(n.min(rest.len()))
}

/// The IRC line codec and what the adapter writes: framing does not
/// depend on how bytes arrive; a line never holds CR, LF or NUL; a parsed
/// line written back is one line; a verdict's text, whatever it holds,
/// becomes lines that each end in their only CRLF.
pub fn irc_codec(data: &[u8]) {
    let (cuts, input) = split_input(data);
    let whole = irc_frames(input, &[]);
    assert_eq!(
        whole,
        irc_frames(input, cuts),
        "framing depends on chunking"
    );
    for frame in &whole {
        let Frame::Line(line) = frame else { continue };
        assert!(!line.is_empty());
        assert!(
            !line.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)),
            "{line:?}"
        );
        let Ok(line) = codec::into_utf8(line.clone()) else {
            continue;
        };
        let Some(msg) = Message::parse(&line) else {
            continue;
        };
        let written = msg.to_line();
        assert_one_line(&written);
        // A verdict on it whose text is raw input (CR, LF, NUL and all),
        // as long as the line plus a little: bounded, so a run stays linear.
        let text = String::from_utf8_lossy(&input[..input.len().min(line.len() + 16)]);
        let me = Me {
            nick: "alice".into(),
            account: None,
        };
        for action in [
            Action::Rewrite(text.to_string()),
            Action::Block(text.to_string()),
        ] {
            for direction in [Direction::Outbound, Direction::Inbound] {
                match irc_events::apply(&msg, direction, Ctcp::None, &action, &me, "imgate") {
                    Outcome::Rewritten(lines) => lines.iter().for_each(|l| assert_one_line(l)),
                    Outcome::Bounce(line) => assert_one_line(&line),
                    Outcome::Forward | Outcome::Drop => {}
                }
            }
        }
    }
}

fn assert_one_line(line: &str) {
    let body = line
        .strip_suffix("\r\n")
        .unwrap_or_else(|| panic!("no CRLF: {line:?}"));
    assert!(!body.contains(['\r', '\n', '\0']), "{line:?}");
}

/// The gateway frames IRC exactly as ngircd does, or stricter: every line
/// ngircd would execute from a client's bytes is a line imgate judged, the
/// same bytes, or one imgate refused; and what imgate forwards, ngircd
/// splits into exactly the lines imgate judged.
pub fn irc_split_vs_ngircd(data: &[u8]) {
    let (cuts, input) = split_input(data);
    let ours = irc_frames(input, cuts);
    let server = ngircd::lines(input);
    for (i, s) in server.iter().enumerate() {
        let ngircd::Read::Line(line) = s else { break };
        match ours.get(i) {
            Some(Frame::Line(l)) => assert_eq!(l, line, "line {i} differs"),
            Some(Frame::Refused(_)) => {}
            None => panic!("ngircd runs line {i} {line:?}, which imgate never framed"),
        }
        if matches!(ours.get(i), Some(Frame::Refused(LineError::Nul))) {
            break; // the session ends here
        }
    }
    // What imgate forwards: each line it accepted, as UTF-8, with CRLF.
    let mut forwarded = Vec::new();
    let mut sent = Vec::new();
    for frame in &ours {
        match frame {
            Frame::Line(l) => {
                if let Ok(l) = codec::into_utf8(l.clone()) {
                    forwarded.extend_from_slice(&l);
                    forwarded.extend_from_slice(b"\r\n");
                    sent.push(l);
                }
            }
            Frame::Refused(LineError::Nul) => break,
            Frame::Refused(LineError::TooLong) => {}
        }
    }
    for (i, s) in ngircd::lines(&forwarded).iter().enumerate() {
        match s {
            ngircd::Read::Line(line) => assert_eq!(Some(line), sent.get(i), "forwarded line {i}"),
            // Longer than ngircd takes (tags): it closes the connection.
            ngircd::Read::Close => break,
        }
    }
}

const XMPP_LIMITS: Limits = Limits {
    max_stanza_bytes: 4096,
    max_depth: 16,
};

/// The XMPP framer and parser: framing does not depend on how bytes
/// arrive; what passes is UTF-8 of XML characters only; an element that
/// parses writes back as XML that frames and parses to the same element.
pub fn xmpp_codec(data: &[u8]) {
    let (cuts, input) = split_input(data);
    // The same frames, whatever the chunking. (Whether a bad stanza that
    // never completes is refused early may differ: a reference is checked
    // while it arrives when it arrives whole; either way nothing of it is
    // forwarded.)
    let (frames, _) = xmpp_frames(input, &[]);
    let (chunked, _) = xmpp_frames(input, cuts);
    assert_eq!(frames, chunked, "framing depends on chunking");
    for frame in frames {
        let xmpp::Frame::Element(bytes) = frame else {
            continue;
        };
        let text = std::str::from_utf8(&bytes).expect("a framed element is UTF-8");
        assert!(
            text.chars().all(imgate::event::text::is_xml_char),
            "{text:?}"
        );
        let Ok(element) = Element::parse(&bytes) else {
            continue;
        };
        let written = element.to_xml();
        assert!(
            written.chars().all(imgate::event::text::is_xml_char),
            "{written:?}"
        );
        let again = Element::parse(written.as_bytes()).expect("written XML parses");
        assert_eq!(again.to_xml(), written, "write, parse, write differs");
    }
}

/// The frames, and the error that ended the stream, if one did.
fn xmpp_frames(input: &[u8], cuts: &[u8]) -> (Vec<xmpp::Frame>, Option<xmpp::CodecError>) {
    let mut framer = xmpp::Framer::new(XMPP_LIMITS);
    // The stream is open, as after a client's header.
    let mut buf =
        b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
            .to_vec();
    let mut out = Vec::new();
    let mut input = pieces(input, cuts, 5);
    loop {
        loop {
            match framer.next(&buf) {
                Ok(Some((frame, used))) => {
                    buf.drain(..used);
                    // White space between stanzas is forwarded as it
                    // comes (a keepalive), so its framing may follow the
                    // reads; elements may not.
                    if !matches!(
                        frame,
                        xmpp::Frame::StreamOpen(_) | xmpp::Frame::Whitespace(_)
                    ) {
                        out.push(frame);
                    }
                }
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
        match input.next() {
            Some(piece) => buf.extend_from_slice(piece),
            None => return (out, None),
        }
    }
}

/// The replay transcript reader: any bytes give events or errors with
/// line numbers, never a panic.
pub fn replay_json(data: &[u8]) {
    match imgate::cli::replay::parse_transcript("fuzz", data) {
        Ok(events) => {
            for entry in events {
                assert!(entry.line >= 1);
            }
        }
        Err(errors) => assert!(errors.iter().all(|e| e.starts_with("fuzz:"))),
    }
}

/// The config loader: any text gives a config or located problems, never
/// a panic.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(problems) = imgate::Config::parse(text, std::path::Path::new("/etc/imgate")) {
        assert!(!problems.is_empty());
        for p in problems {
            assert!(!p.location.is_empty() && !p.message.is_empty(), "{p:?}");
        }
    }
}
