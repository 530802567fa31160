//! The IRC relay identity: a client of the real server (the `[irc]`
//! upstream, secured the same way) that registers its nick (with SASL
//! PLAIN when configured), joins its channels, turns what they say into
//! events, and writes the bridge's copies as `PRIVMSG` lines in the
//! configured format. IRC has no edits, retractions or replies: those
//! arrive as text (`* alice corrected: …`, a quoted reply).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use tokio::sync::watch;

use super::codec::{Frame, Message as Line, split_text};
use super::config::UpstreamTls;
use super::events::{self, Me, is_channel, one_line};
use super::{Irc, IrcConfig};
use crate::adapters::AdapterError;
use crate::adapters::relay::config::{IrcRelayConfig, render, secret};
use crate::adapters::relay::{Command, Link, RelayHandle, RelayStatus, Timing, relay_session};
use crate::adapters::stream::upstream;
use crate::adapters::stream::{Io, Peer, Side};
use crate::event::bridge::Copy;
use crate::event::{Direction, Event, Judge, event_id_text, new_event_uuid_at, now_ms};

/// Room a server's prefix (`:nick!user@host `) takes in a relayed line.
const PREFIX_ROOM: usize = 100;
const KEEPALIVE: Duration = Duration::from_secs(60);

/// Starts the relay; it connects in the background and keeps connected.
///
/// # Errors
/// The `[irc]` section's certificates or CA file are unusable.
pub fn start(
    relay: &IrcRelayConfig,
    format: &str,
    irc: &IrcConfig,
    judge: Arc<dyn Judge>,
    timing: Timing,
    stopping: watch::Receiver<bool>,
) -> Result<(RelayHandle, tokio::task::JoinHandle<()>), AdapterError> {
    let protocol = Arc::new(Irc::new(irc, judge.clone())?);
    let account = relay
        .sasl_account
        .clone()
        .unwrap_or_else(|| relay.nick.clone());
    let status = RelayStatus::new("irc", &account, &relay.channels);
    let session = relay_session("irc", &account);
    let relay = Arc::new(relay.clone());
    let format: Arc<str> = Arc::from(format);
    Ok(crate::adapters::relay::start(
        status,
        session,
        judge,
        timing,
        stopping,
        move |link| {
            let (protocol, relay, format) = (protocol.clone(), relay.clone(), format.clone());
            async move {
                let mut link = link;
                let result = connection(&protocol, &relay, &format, &mut link).await;
                (result, link)
            }
        },
    ))
}

type Error = crate::adapters::stream::SessionError<super::session::IrcError>;

fn text(e: Error) -> String {
    e.to_string()
}

/// Reads the next line, waiting for more bytes as needed.
async fn next_line(side: &mut Side<super::codec::Framer>) -> Result<String, String> {
    loop {
        if let Some(frame) = side
            .next_frame::<super::session::IrcError>()
            .map_err(text)?
        {
            match frame {
                Frame::Line(bytes) => return Ok(String::from_utf8_lossy(&bytes).into_owned()),
                Frame::Refused(_) => continue,
            }
        }
        match side.fill().await {
            Ok(0) => return Err("the server closed the relay's connection".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("reading from the server: {e}")),
        }
    }
}

async fn send(side: &mut Side<super::codec::Framer>, line: &str) -> Result<(), String> {
    side.send::<super::session::IrcError>(format!("{line}\r\n").as_bytes(), "relay")
        .await
        .map_err(text)
}

/// One connection: register, join, then serve until it breaks.
async fn connection(
    irc: &Irc,
    relay: &IrcRelayConfig,
    format: &str,
    link: &mut Link,
) -> Result<(), String> {
    let up = &irc.config.upstream;
    let tcp: Box<dyn Io> = Box::new(
        upstream::connect::<super::session::IrcError>(&up.address, irc.base.timeouts.connect)
            .await
            .map_err(text)?,
    );
    let io: Box<dyn Io> = match up.tls {
        UpstreamTls::Plain => tcp,
        UpstreamTls::Tls => {
            let name = up
                .server_name
                .as_deref()
                .unwrap_or_else(|| irc.config.upstream_host());
            upstream::tls_to::<super::session::IrcError>(&irc.connector, name, tcp)
                .await
                .map_err(text)?
        }
    };
    let mut side = Side::new(io, Peer::Upstream, super::codec::Framer::default());
    let sasl = match &relay.sasl_account {
        Some(account) => Some((
            account.clone(),
            secret(&relay.sasl_password, &relay.sasl_password_file)?,
        )),
        None => None,
    };
    let mut me = Me {
        nick: relay.nick.clone(),
        account: sasl.as_ref().map(|(a, _)| a.clone()),
    };
    let register = async {
        if sasl.is_some() {
            send(&mut side, "CAP REQ :sasl").await?;
        }
        send(&mut side, &format!("NICK {}", me.nick)).await?;
        send(&mut side, &format!("USER {} 0 * :imgate relay", relay.nick)).await?;
        loop {
            let raw = next_line(&mut side).await?;
            let Some(line) = Line::parse(raw.as_bytes()) else {
                continue;
            };
            match line.command.as_ref() {
                "PING" => send(&mut side, &format!("PONG :{}", line.param(0))).await?,
                "CAP" if line.param(1) == "ACK" => send(&mut side, "AUTHENTICATE PLAIN").await?,
                "CAP" if line.param(1) == "NAK" => {
                    return Err("the server offers no SASL to the relay".to_owned());
                }
                "AUTHENTICATE" if line.param(0) == "+" => {
                    if let Some((account, password)) = &sasl {
                        let token = base64::engine::general_purpose::STANDARD
                            .encode(format!("{account}\0{account}\0{password}"));
                        send(&mut side, &format!("AUTHENTICATE {token}")).await?;
                    }
                }
                "903" => send(&mut side, "CAP END").await?,
                "902" | "904" | "905" | "906" => {
                    return Err(format!("the server refused the relay's SASL login: {raw}"));
                }
                "433" => {
                    // The nick is taken (the last connection may linger).
                    me.nick.push('_');
                    send(&mut side, &format!("NICK {}", me.nick)).await?;
                }
                "001" => {
                    if let Some(nick) = line.params.first() {
                        me.nick = nick.to_string();
                    }
                    return Ok(());
                }
                "ERROR" => return Err(format!("the server refused the relay: {raw}")),
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), register)
        .await
        .map_err(|_| "the relay's registration took longer than 20 s".to_owned())??;
    if !relay.channels.is_empty() {
        send(&mut side, &format!("JOIN {}", relay.channels.join(","))).await?;
    }

    let mut joined: HashSet<String> = HashSet::new();
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    keepalive.reset();
    // Up once the server has put it in every channel.
    let mut up = false;
    loop {
        while let Some(frame) = side
            .next_frame::<super::session::IrcError>()
            .map_err(text)?
        {
            let Frame::Line(bytes) = frame else { continue };
            let Some(line) = Line::parse(&bytes) else {
                continue;
            };
            match line.command.as_ref() {
                "PING" => send(&mut side, &format!("PONG :{}", line.param(0))).await?,
                "NICK" if line.nick() == Some(me.nick.as_str()) => {
                    me.nick = line.param(0).to_owned();
                }
                "JOIN" if line.nick() == Some(me.nick.as_str()) => {
                    joined.insert(line.param(0).to_ascii_lowercase());
                }
                "ERROR" => return Err(format!("the server closed the link: {}", line.param(0))),
                "PRIVMSG" | "NOTICE" | "JOIN" | "PART" => {
                    let channel = line.param(0).split(',').next().unwrap_or_default();
                    // What the relay's channels hear, once it is in them.
                    if !is_channel(channel) || !joined.contains(&channel.to_ascii_lowercase()) {
                        continue;
                    }
                    if line.nick() == Some(me.nick.as_str()) {
                        continue;
                    }
                    for reading in events::read(&line, Direction::Inbound, &me) {
                        let at = now_ms();
                        link.heard(Event {
                            id: event_id_text(new_event_uuid_at(at)),
                            network: "irc".into(),
                            direction: Direction::Inbound,
                            session: link.session.clone(),
                            timestamp: at,
                            kind: reading.kind,
                            tags: Vec::new(),
                            attributes: reading.attributes,
                            ids: reading.ids,
                        })
                        .await;
                    }
                }
                _ => {}
            }
        }
        if !up
            && relay
                .channels
                .iter()
                .all(|c| joined.contains(&c.to_ascii_lowercase()))
        {
            link.status.up();
            up = true;
        }
        tokio::select! {
            n = side.fill() => match n {
                Ok(0) => return Err("the server closed the relay's connection".into()),
                Ok(_) => {}
                Err(e) => return Err(format!("reading from the server: {e}")),
            },
            command = link.commands.recv() => match command {
                Some(Command::Send(copy, reply)) if !is_target(&copy.to) => {
                    let _ = reply.send(Err(format!("`{}` is not an IRC channel or nick", one_line(&copy.to))));
                }
                Some(Command::Send(copy, reply)) => {
                    for l in lines(format, &copy) {
                        send(&mut side, &l).await?;
                    }
                    // IRC gives a line no id (without message-tags).
                    let _ = reply.send(Ok(Vec::new()));
                }
                Some(Command::Tell { who, text: note, .. }) => {
                    let note = one_line(&note);
                    send(&mut side, &format!("NOTICE {who} :{note}")).await?;
                }
                None => return Ok(()),
            },
            _ = keepalive.tick() => send(&mut side, &format!("PING :{}", me.nick)).await?,
        }
    }
}

/// A copy as the lines that say it. Relations become text, since IRC has
/// none: a correction, a retraction notice, a quoted reply.
pub fn lines(format: &str, copy: &Copy) -> Vec<String> {
    let author = copy.author.as_deref();
    let who = author.unwrap_or("someone");
    let body = one_line_all(&copy.body);
    let text = match copy.relation.as_ref().map(|f| (f.rel_type.as_str(), f)) {
        Some(("edit", _)) => format!("* {who} corrected: {body}"),
        Some(("retraction", f)) => match &f.excerpt {
            Some(e) => format!("* {who} retracted: \"{}\"", one_line_all(e)),
            None => format!("* {who} retracted a message"),
        },
        Some(("reply", f)) => {
            let quoted = f.excerpt.as_deref().map(one_line_all).unwrap_or_default();
            let to = f.author.as_deref().unwrap_or("someone");
            render(
                format,
                author,
                &copy.from_network,
                &format!("[> {to}: {quoted}] {body}"),
            )
        }
        Some(("reaction", f)) => {
            let quoted = f.excerpt.as_deref().map(one_line_all).unwrap_or_default();
            format!(
                "* {who} reacted {} to \"{quoted}\"",
                f.key.as_deref().unwrap_or(&copy.body)
            )
        }
        _ if copy.emote => format!("* {who}@{} {body}", copy.from_network),
        _ => render(format, author, &copy.from_network, &body),
    };
    // The author and the format came from a plugin and the config: one line.
    let text = one_line_all(&text);
    let head = format!("PRIVMSG {} :", copy.to);
    split_text(&text, head.len() + PREFIX_ROOM)
        .into_iter()
        .map(|piece| format!("{head}{piece}"))
        .collect()
}

/// Whether `to` can be the target of a PRIVMSG: one word, no control
/// characters (a plugin names it; a line break would start a command).
pub fn is_target(to: &str) -> bool {
    !to.is_empty()
        && to.len() <= 200
        && !to.starts_with(':')
        && !to
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ',')
}

/// Text on one line: line breaks become spaces, NUL goes.
fn one_line_all(text: &str) -> String {
    text.chars()
        .filter(|&c| c != '\0')
        .map(|c| if matches!(c, '\r' | '\n') { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::bridge::Follows;

    fn copy(body: &str) -> Copy {
        Copy {
            id: "c1".into(),
            to: "#lobby".into(),
            body: body.into(),
            markup: None,
            author: Some("alice".into()),
            from_network: "xmpp".into(),
            emote: false,
            relation: None,
        }
    }

    const FORMAT: &str = "<{author}@{network}> {text}";

    #[test]
    fn a_copy_reads_in_the_format_and_relations_become_text() {
        assert_eq!(
            lines(FORMAT, &copy("hi\nall")),
            ["PRIVMSG #lobby :<alice@xmpp> hi all"]
        );
        let follows = |rel: &str| Follows {
            rel_type: rel.into(),
            ids: Vec::new(),
            author: Some("bob".into()),
            excerpt: Some("hello wrld".into()),
            key: None,
        };
        let mut edit = copy("hello world");
        edit.relation = Some(follows("edit"));
        assert_eq!(
            lines(FORMAT, &edit),
            ["PRIVMSG #lobby :* alice corrected: hello world"]
        );
        let mut reply = copy("yes");
        reply.relation = Some(follows("reply"));
        assert_eq!(
            lines(FORMAT, &reply),
            ["PRIVMSG #lobby :<alice@xmpp> [> bob: hello wrld] yes"]
        );
        let mut retract = copy("");
        retract.relation = Some(follows("retraction"));
        assert_eq!(
            lines(FORMAT, &retract),
            ["PRIVMSG #lobby :* alice retracted: \"hello wrld\""]
        );
    }

    #[test]
    fn a_plugin_cannot_break_out_of_the_line() {
        assert!(!is_target("#lobby\r\nQUIT"));
        assert!(!is_target("#a b") && !is_target("") && !is_target(":x") && !is_target("#a,#b"));
        assert!(is_target("#lobby") && is_target("bob"));
        let mut c = copy("hi");
        c.author = Some("eve\r\nQUIT :bye".into());
        let out = lines(FORMAT, &c);
        assert_eq!(out, ["PRIVMSG #lobby :<eve  QUIT :bye@xmpp> hi"]);
    }

    #[test]
    fn a_long_copy_is_split_into_lines_that_fit() {
        let long = "word ".repeat(300);
        let out = lines(FORMAT, &copy(&long));
        assert!(out.len() > 2);
        assert!(
            out.iter().all(|l| l.len() + PREFIX_ROOM + 2 <= 512),
            "{out:?}"
        );
    }
}
