//! IRC lines to neutral events, and verdicts back to IRC lines: one
//! function per direction, no I/O.

use smallvec::{SmallVec, smallvec};

use super::codec::{Message as Line, split_text};
use crate::event::{
    Action, Conversation, Direction, EventKind, FileOffer, Message, NetworkId, Reaction,
    RoomChange, Subject,
};

/// Who this session is on the network.
#[derive(Clone, Debug, Default)]
pub struct Me {
    /// The registered nick, followed across NICK changes.
    pub nick: String,
    /// The SASL account, when there was one.
    pub account: Option<String>,
}

impl Me {
    /// The session's user: the account if SASL was used, else the nick.
    pub fn user(&self) -> &str {
        self.account.as_deref().unwrap_or(&self.nick)
    }
}

/// Which CTCP wrapping a message had (`\x01ACTION ...\x01`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Ctcp {
    None,
    Action,
}

/// What a line means to the chain.
/// A line's readings: almost always one, kept inline.
pub type Readings = SmallVec<[Reading; 1]>;

#[derive(Debug)]
pub struct Reading {
    pub direction: Direction,
    pub kind: EventKind,
    pub attributes: Vec<(String, String)>,
    pub ctcp: Ctcp,
    /// For JOIN and PART: which of the line's channels this is.
    pub channel: Option<String>,
    /// The line's IRCv3 `msgid`, when the server gave one.
    pub ids: Vec<NetworkId>,
}

/// Client-only tags that say nothing a user wrote (typing notices).
fn is_signal_tag(name: &str) -> bool {
    matches!(name, "+typing" | "+draft/typing")
}

/// The line's client-only tags (`+name=value`), values unescaped.
fn client_tags(line: &Line<'_>) -> Vec<(String, String)> {
    let Some(tags) = &line.tags else {
        return Vec::new();
    };
    tags.split(';')
        .filter(|t| t.starts_with('+'))
        .map(|t| {
            let (k, v) = t.split_once('=').unwrap_or((t, ""));
            (k.to_owned(), super::codec::unescape_tag(v))
        })
        .collect()
}

pub fn is_channel(target: &str) -> bool {
    target.starts_with(['#', '&', '+', '!'])
}

/// Whether `line` is a plain PRIVMSG or NOTICE (no CTCP): exactly one
/// message event, which [`read`] would build. With no plugins such a line
/// is counted and forwarded without being read.
pub fn is_plain_message(line: &Line<'_>) -> bool {
    matches!(line.command.as_ref(), "PRIVMSG" | "NOTICE")
        && line.params.len() >= 2
        && !line.param(1).starts_with('\x01')
}

/// What `line`, travelling `direction`, means to the chain: nothing, one
/// event, or (JOIN and PART of several channels) one per channel.
pub fn read(line: &Line<'_>, direction: Direction, me: &Me) -> Readings {
    let from_me = direction == Direction::Outbound;
    let sender = if from_me {
        me.user().to_owned()
    } else {
        line.nick().unwrap_or_default().to_owned()
    };
    let ids: Vec<NetworkId> = line
        .tag("msgid")
        .map(|id| NetworkId::new("msgid", id))
        .into_iter()
        .collect();
    let reading = |kind, attributes, ctcp, channel| Reading {
        direction,
        kind,
        attributes,
        ctcp,
        channel,
        ids: ids.clone(),
    };
    match line.command.as_ref() {
        "PRIVMSG" | "NOTICE" if line.params.len() >= 2 => {
            let target = line.param(0);
            let text = line.param(1);
            let (conversation, recipient) = if is_channel(target) {
                (Conversation::Group(target.to_owned()), target.to_owned())
            } else if from_me {
                (Conversation::Direct, target.to_owned())
            } else {
                (Conversation::Direct, me.user().to_owned())
            };
            let attributes = vec![("irc.command".to_owned(), line.command.to_string())];
            let (body, action) = match ctcp(text) {
                None => (text.to_owned(), Ctcp::None),
                Some(("ACTION", arg)) => (arg.to_owned(), Ctcp::Action),
                Some(("DCC", arg)) => {
                    let Some(offer) = dcc_send(arg) else {
                        return Readings::new();
                    };
                    let kind = EventKind::FileOffer(FileOffer {
                        id: line.tag("msgid"),
                        sender,
                        recipient,
                        name: offer.0,
                        size: offer.1,
                        media_type: None,
                    });
                    return smallvec![reading(kind, attributes, Ctcp::None, None)];
                }
                // VERSION, PING, TIME...: not something said.
                Some(_) => return Readings::new(),
            };
            let message = Message {
                id: line.tag("msgid"),
                sender,
                recipient,
                conversation,
                body,
                markup: None,
                thread: None,
                reply_to: line.tag("+draft/reply").or_else(|| line.tag("+reply")),
                attachments: Vec::new(),
                encrypted: false,
                action: action == Ctcp::Action,
                edit_of: None,
                retraction_of: None,
                subject: None,
            };
            smallvec![reading(
                EventKind::Message(message),
                attributes,
                action,
                None,
            )]
        }
        "JOIN" | "PART" if !line.params.is_empty() => {
            // Our own JOIN/PART echoed by the server was judged on the way out.
            if !from_me && line.nick() == Some(me.nick.as_str()) {
                return Readings::new();
            }
            let join = line.command == "JOIN";
            let reason = if join {
                None
            } else {
                line.params.get(1).map(|k| k.to_string())
            };
            let nick = if from_me {
                me.nick.clone()
            } else {
                line.nick().unwrap_or_default().to_owned()
            };
            line.params[0]
                .split(',')
                .filter(|c| !c.is_empty() && *c != "0")
                .map(|channel| {
                    let change = RoomChange {
                        room: channel.to_owned(),
                        occupant: sender.clone(),
                        nick: Some(nick.clone()),
                        reason: reason.clone(),
                    };
                    let kind = if join {
                        EventKind::RoomJoin(change)
                    } else {
                        EventKind::RoomLeave(change)
                    };
                    reading(kind, Vec::new(), Ctcp::None, Some(channel.to_owned()))
                })
                .collect()
        }
        // A topic set (not the query, which has no text).
        "TOPIC" if line.params.len() >= 2 => {
            let subject = Subject {
                sender,
                room: line.param(0).to_owned(),
                text: line.param(1).to_owned(),
            };
            smallvec![reading(
                EventKind::Subject(subject),
                vec![("irc.command".into(), "TOPIC".into())],
                Ctcp::None,
                None,
            )]
        }
        // IRCv3 message tags without a message: a reaction, or other
        // client-only content. Typing notices say nothing.
        "TAGMSG" if !line.params.is_empty() => {
            let tags = client_tags(line);
            if tags.iter().all(|(k, _)| is_signal_tag(k)) {
                return Readings::new();
            }
            let target = line.param(0);
            let (conversation, recipient) = if is_channel(target) {
                (Conversation::Group(target.to_owned()), target.to_owned())
            } else if from_me {
                (Conversation::Direct, target.to_owned())
            } else {
                (Conversation::Direct, me.user().to_owned())
            };
            let tag = |names: [&str; 2]| {
                tags.iter()
                    .find(|(k, _)| names.contains(&k.as_str()))
                    .map(|(_, v)| v.clone())
            };
            let mut attributes = vec![("irc.command".to_owned(), "TAGMSG".to_owned())];
            attributes.extend(
                tags.iter()
                    .filter(|(k, _)| !is_signal_tag(k))
                    .map(|(k, v)| (format!("irc.tag.{}", k.trim_start_matches('+')), v.clone())),
            );
            let kind = match tag(["+draft/react", "+react"]) {
                Some(key) => EventKind::Reaction(Reaction {
                    sender,
                    recipient,
                    conversation,
                    target: tag(["+draft/reply", "+reply"]).unwrap_or_default(),
                    keys: vec![key],
                }),
                None => EventKind::Message(Message {
                    id: line.tag("msgid"),
                    sender,
                    recipient,
                    conversation,
                    body: String::new(),
                    markup: None,
                    thread: None,
                    reply_to: tag(["+draft/reply", "+reply"]),
                    attachments: Vec::new(),
                    encrypted: false,
                    action: false,
                    edit_of: None,
                    retraction_of: None,
                    subject: None,
                }),
            };
            smallvec![reading(kind, attributes, Ctcp::None, None)]
        }
        "KICK" if line.params.len() >= 2 => {
            let change = RoomChange {
                room: line.param(0).to_owned(),
                occupant: line.param(1).to_owned(),
                nick: Some(line.param(1).to_owned()),
                reason: line.params.get(2).map(|r| r.to_string()),
            };
            smallvec![reading(
                EventKind::RoomLeave(change),
                vec![("irc.command".into(), "KICK".into())],
                Ctcp::None,
                None,
            )]
        }
        _ => Readings::new(),
    }
}

/// `\x01CMD arg\x01` → (CMD, arg); the closing `\x01` is optional.
fn ctcp(text: &str) -> Option<(&str, &str)> {
    let inner = text.strip_prefix('\x01')?;
    let inner = inner.strip_suffix('\x01').unwrap_or(inner);
    Some(inner.split_once(' ').unwrap_or((inner, "")))
}

/// `SEND filename ip port [size]`, the filename possibly quoted.
fn dcc_send(arg: &str) -> Option<(String, Option<u64>)> {
    let rest = arg.strip_prefix("SEND ")?.trim_start();
    let (name, rest) = if let Some(quoted) = rest.strip_prefix('"') {
        let end = quoted.find('"')?;
        (&quoted[..end], &quoted[end + 1..])
    } else {
        rest.split_once(' ').unwrap_or((rest, ""))
    };
    let mut fields = rest.split_whitespace();
    let (_ip, _port) = (fields.next()?, fields.next()?);
    let size = fields.next().and_then(|s| s.parse().ok());
    Some((name.to_owned(), size))
}

/// What the session writes after the verdict.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Forward,
    /// These lines instead (a rewrite, re-split to fit).
    Rewritten(Vec<String>),
    Drop,
    /// Nothing goes on; this line goes back towards the sender.
    Bounce(String),
}

/// Applies `action` to a PRIVMSG/NOTICE (or a JOIN/PART/KICK, which can
/// only be allowed, dropped or blocked). `gateway` is the prefix the
/// gateway's own NOTICEs carry.
pub fn apply(
    line: &Line<'_>,
    direction: Direction,
    ctcp: Ctcp,
    action: &Action,
    me: &Me,
    gateway: &str,
) -> Outcome {
    match action {
        Action::Allow => Outcome::Forward,
        // A held message is not delivered; the hold queue keeps it.
        Action::Drop | Action::Hold(_) => Outcome::Drop,
        Action::Rewrite(body) => match rewrite(line, ctcp, body, &me.nick) {
            Some(lines) => Outcome::Rewritten(lines),
            None => Outcome::Forward,
        },
        Action::Block(reason) => {
            let reason = if reason.is_empty() {
                "blocked by policy".to_owned()
            } else {
                one_line(reason)
            };
            match direction {
                // Our client is told by the gateway.
                Direction::Outbound => Outcome::Bounce(
                    Line {
                        tags: None,
                        prefix: Some(gateway.into()),
                        command: "NOTICE".into(),
                        params: [me.nick.as_str().into(), reason.into()]
                            .into_iter()
                            .collect(),
                    }
                    .to_line(),
                ),
                // The remote sender of a PRIVMSG is told, by a NOTICE (never
                // an automatic reply to a NOTICE: RFC 1459 §4.4.2).
                Direction::Inbound => match (line.command.as_ref(), line.nick()) {
                    ("PRIVMSG", Some(nick)) => Outcome::Bounce(
                        Line {
                            tags: None,
                            prefix: None,
                            command: "NOTICE".into(),
                            params: [nick.into(), reason.into()].into_iter().collect(),
                        }
                        .to_line(),
                    ),
                    _ => Outcome::Drop,
                },
            }
        }
    }
}

/// The message with its text replaced, split into lines that each fit in
/// 512 bytes, each keeping the tags, prefix, command and target.
fn rewrite(line: &Line<'_>, ctcp: Ctcp, body: &str, nick: &str) -> Option<Vec<String>> {
    if line.command == "TOPIC" && line.params.len() >= 2 {
        // A topic is one line: the rewrite's lines are joined.
        let mut topic = line.clone();
        topic.params[1] = one_line(&without_nul(body)).into();
        return Some(vec![topic.to_line()]);
    }
    if !matches!(line.command.as_ref(), "PRIVMSG" | "NOTICE") || line.params.len() < 2 {
        return None;
    }
    let (open, close) = match ctcp {
        Ctcp::Action => ("\x01ACTION ", "\x01"),
        Ctcp::None => ("", ""),
    };
    let tags = line
        .tags
        .as_ref()
        .map(|t| format!("@{t} "))
        .unwrap_or_default();
    let prefix = line
        .prefix
        .as_ref()
        .map(|p| format!(":{p} "))
        .unwrap_or_default();
    let head = format!("{prefix}{} {} :", line.command, line.params[0]);
    // Tags have their own budget; the 512 covers the rest, CRLF included
    // (counted by split_text). A line from our client has no prefix yet,
    // but the server adds `:nick!user@host ` when it relays it, and cuts
    // what no longer fits: leave room for it (user and host at their
    // usual limits, 10 and 63).
    let relay_prefix = if line.prefix.is_none() {
        nick.len() + 77
    } else {
        0
    };
    let head_len = head.len() + open.len() + close.len() + relay_prefix;
    // Each line of the text is a message of its own; an empty text still
    // needs one (IRC cannot send an empty PRIVMSG).
    let body = without_nul(body);
    let mut texts: Vec<&str> = body.split(['\r', '\n']).filter(|l| !l.is_empty()).collect();
    if texts.is_empty() {
        texts.push(" ");
    }
    let lines = texts
        .into_iter()
        .flat_map(|text| split_text(text, head_len))
        .map(|piece| format!("{tags}{head}{open}{piece}{close}\r\n"))
        .collect();
    Some(lines)
}

/// Text a plugin gave (a block reason), made fit for the last parameter
/// of one line: CR, LF and NUL each become a space, and it is cut to fit
/// (on a character boundary) so the server does not drop the line.
pub fn one_line(text: &str) -> String {
    const ROOM: usize = 300;
    let mut out: String = text
        .chars()
        .map(|c| {
            if matches!(c, '\r' | '\n' | '\0') {
                ' '
            } else {
                c
            }
        })
        .collect();
    if out.len() > ROOM {
        let mut cut = ROOM;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

/// The chain refuses a rewrite with NUL (see `plugins::verdict`); this is
/// the adapter's own guard, whatever it is handed.
fn without_nul(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        text.replace('\0', "").into()
    } else {
        text.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::irc::codec::MAX_REST;

    fn me() -> Me {
        Me {
            nick: "alice".into(),
            account: None,
        }
    }

    fn line(s: &str) -> Line<'_> {
        Line::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn a_plain_message_is_exactly_one_message_event() {
        let me = Me {
            nick: "alice".into(),
            account: None,
        };
        for (raw, plain) in [
            ("PRIVMSG #c :hello", true),
            (":bob!b@h NOTICE alice :hi there", true),
            ("privmsg bob :", true),
            ("PRIVMSG bob :\x01ACTION waves\x01", false),
            ("PRIVMSG bob :\x01VERSION\x01", false),
            ("PRIVMSG bob", false),
            ("JOIN #c", false),
        ] {
            let l = line(raw);
            assert_eq!(is_plain_message(&l), plain, "{raw}");
            if plain {
                for direction in [Direction::Outbound, Direction::Inbound] {
                    let readings = read(&l, direction, &me);
                    assert_eq!(readings.len(), 1, "{raw}");
                    assert!(matches!(readings[0].kind, EventKind::Message(_)));
                }
            }
        }
    }

    /// Reads `raw` in `direction` and applies `action` to it.
    fn verdict(raw: &str, direction: Direction, action: Action) -> Outcome {
        let l = line(raw);
        let r = &read(&l, direction, &me())[0];
        apply(&l, r.direction, r.ctcp, &action, &me(), "imgate")
    }

    #[test]
    fn topic_and_tagmsg_are_events_and_typing_is_not() {
        let r = read(
            &line("TOPIC #ops :secret plans"),
            Direction::Outbound,
            &me(),
        );
        let EventKind::Subject(s) = &r[0].kind else {
            panic!("{:?}", r[0].kind)
        };
        assert_eq!((s.room.as_str(), s.text.as_str()), ("#ops", "secret plans"));
        assert!(read(&line("TOPIC #ops"), Direction::Outbound, &me()).is_empty());
        // A rewritten topic stays one TOPIC line.
        assert_eq!(
            verdict(
                "TOPIC #ops :secret plans",
                Direction::Outbound,
                Action::Rewrite("a\r\nb".into())
            ),
            Outcome::Rewritten(vec!["TOPIC #ops :a  b\r\n".into()])
        );

        let r = read(
            &line("@+draft/react=👍;+draft/reply=m7 TAGMSG #ops"),
            Direction::Outbound,
            &me(),
        );
        let EventKind::Reaction(re) = &r[0].kind else {
            panic!("{:?}", r[0].kind)
        };
        assert_eq!(
            (re.target.as_str(), re.keys.as_slice()),
            ("m7", &["👍".to_owned()][..])
        );
        let r = read(
            &line("@msgid=x1;+example/poll=lunch\\swhere? :bob!b@h TAGMSG alice"),
            Direction::Inbound,
            &me(),
        );
        assert!(matches!(r[0].kind, EventKind::Message(_)));
        assert!(
            r[0].attributes
                .contains(&("irc.tag.example/poll".into(), "lunch where?".into()))
        );
        assert_eq!(r[0].ids, [NetworkId::new("msgid", "x1")]);
        assert!(
            read(
                &line("@+typing=active TAGMSG #ops"),
                Direction::Outbound,
                &me()
            )
            .is_empty()
        );
    }

    #[test]
    fn privmsg_to_a_channel_and_to_a_user() {
        let r = read(
            &line("PRIVMSG #ops :deploy now"),
            Direction::Outbound,
            &me(),
        );
        let EventKind::Message(m) = &r[0].kind else {
            panic!()
        };
        assert_eq!(
            (m.sender.as_str(), m.body.as_str()),
            ("alice", "deploy now")
        );
        assert_eq!(m.conversation, Conversation::Group("#ops".into()));
        let r = read(
            &line(":bob!b@h PRIVMSG alice :hi"),
            Direction::Inbound,
            &me(),
        );
        let EventKind::Message(m) = &r[0].kind else {
            panic!()
        };
        assert_eq!((m.sender.as_str(), m.recipient.as_str()), ("bob", "alice"));
        assert_eq!(m.conversation, Conversation::Direct);
    }

    #[test]
    fn ctcp_action_and_dcc_send() {
        let r = read(
            &line("PRIVMSG #ops :\x01ACTION waves\x01"),
            Direction::Outbound,
            &me(),
        );
        let EventKind::Message(m) = &r[0].kind else {
            panic!()
        };
        assert!(m.action);
        assert_eq!(m.body, "waves");
        let r = read(
            &line("PRIVMSG bob :\x01DCC SEND \"q3 report.xlsx\" 3232235777 5000 48213\x01"),
            Direction::Outbound,
            &me(),
        );
        let EventKind::FileOffer(f) = &r[0].kind else {
            panic!()
        };
        assert_eq!((f.name.as_str(), f.size), ("q3 report.xlsx", Some(48213)));
        assert!(
            read(
                &line("PRIVMSG bob :\x01VERSION\x01"),
                Direction::Outbound,
                &me()
            )
            .is_empty()
        );
    }

    #[test]
    fn joins_parts_and_kicks() {
        let r = read(&line("JOIN #a,#b key"), Direction::Outbound, &me());
        assert_eq!(r.len(), 2);
        assert!(matches!(&r[1].kind, EventKind::RoomJoin(c) if c.room == "#b"));
        assert!(read(&line(":alice!a@h JOIN #a"), Direction::Inbound, &me()).is_empty());
        let r = read(&line(":bob!b@h PART #a :bye"), Direction::Inbound, &me());
        assert!(
            matches!(&r[0].kind, EventKind::RoomLeave(c) if c.occupant == "bob" && c.reason.as_deref() == Some("bye"))
        );
        let r = read(
            &line(":op!o@h KICK #a bob :spam"),
            Direction::Inbound,
            &me(),
        );
        assert!(matches!(&r[0].kind, EventKind::RoomLeave(c) if c.occupant == "bob"));
    }

    #[test]
    fn a_long_rewrite_is_split_keeping_tags_command_and_target() {
        let body = "ü".repeat(700);
        let Outcome::Rewritten(lines) = verdict(
            "@+client=x :alice!a@h PRIVMSG #ops :short",
            Direction::Inbound,
            Action::Rewrite(body.clone()),
        ) else {
            panic!()
        };
        assert!(lines.len() >= 3, "{}", lines.len());
        let mut joined = String::new();
        for text in &lines {
            assert!(
                text.starts_with("@+client=x :alice!a@h PRIVMSG #ops :"),
                "{text}"
            );
            let rest = text.split_once(' ').unwrap().1;
            assert!(rest.len() <= MAX_REST, "{}", rest.len());
            joined += &Line::parse(text.trim_end().as_bytes()).unwrap().params[1];
        }
        assert_eq!(joined, body);
        // An action stays an action on every line.
        let Outcome::Rewritten(lines) = verdict(
            "PRIVMSG #ops :\x01ACTION x\x01",
            Direction::Outbound,
            Action::Rewrite("y ".repeat(400)),
        ) else {
            panic!()
        };
        assert!(
            lines
                .iter()
                .all(|t| t.contains(":\x01ACTION ") && t.ends_with("\x01\r\n"))
        );
    }

    #[test]
    fn blocks_notice_the_sender() {
        assert_eq!(
            verdict(
                "PRIVMSG #ops :secret",
                Direction::Outbound,
                Action::Block("no secrets".into())
            ),
            Outcome::Bounce(":imgate NOTICE alice :no secrets\r\n".into())
        );
        assert_eq!(
            verdict(
                ":eve!e@h PRIVMSG alice :spam",
                Direction::Inbound,
                Action::Block("not accepted".into())
            ),
            Outcome::Bounce("NOTICE eve :not accepted\r\n".into())
        );
        assert_eq!(
            verdict(
                ":eve!e@h NOTICE alice :spam",
                Direction::Inbound,
                Action::Block("x".into())
            ),
            Outcome::Drop
        );
    }

    #[test]
    fn verdict_text_never_becomes_protocol() {
        // Every line a verdict produces is one line: exactly one CRLF, at
        // its end, and no NUL.
        let one_line_each = |outcome: Outcome| -> Vec<String> {
            let lines = match outcome {
                Outcome::Rewritten(lines) => lines,
                Outcome::Bounce(line) => vec![line],
                other => panic!("{other:?}"),
            };
            for l in &lines {
                assert!(l.ends_with("\r\n"), "{l:?}");
                let body = &l[..l.len() - 2];
                assert!(!body.contains(['\r', '\n', '\0']), "{l:?}");
            }
            lines
        };
        let lines = one_line_each(verdict(
            "PRIVMSG #ops :x",
            Direction::Outbound,
            Action::Rewrite("hi\r\nQUIT :pwned\rPRIVMSG #other :injected\nn\0ul".into()),
        ));
        assert_eq!(
            lines,
            vec![
                "PRIVMSG #ops :hi\r\n",
                "PRIVMSG #ops :QUIT :pwned\r\n",
                "PRIVMSG #ops :PRIVMSG #other :injected\r\n",
                "PRIVMSG #ops :nul\r\n",
            ]
        );
        // Over 512 bytes, CRLF inside the text still never reaches the wire.
        let long = format!("{}\r\nQUIT :x\r\n{}", "a ".repeat(300), "b".repeat(600));
        let lines = one_line_each(verdict(
            "PRIVMSG #ops :x",
            Direction::Outbound,
            Action::Rewrite(long),
        ));
        assert!(lines.len() >= 4, "{lines:?}");
        // A reason is one line, cut to fit.
        let lines = one_line_each(verdict(
            "PRIVMSG #ops :x",
            Direction::Outbound,
            Action::Block(format!("no\r\nQUIT :bye\0{}", "z".repeat(1000))),
        ));
        assert!(lines[0].starts_with(":imgate NOTICE alice :no  QUIT :bye "));
        assert!(lines[0].len() < MAX_REST, "{}", lines[0].len());
        let lines = one_line_each(verdict(
            ":eve!e@h PRIVMSG alice :spam",
            Direction::Inbound,
            Action::Block("a\nPRIVMSG #x :b".into()),
        ));
        assert_eq!(lines, vec!["NOTICE eve :a PRIVMSG #x :b\r\n"]);
    }
}
