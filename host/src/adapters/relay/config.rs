//! `[bridge]`: the relay identities, one account per network, that write
//! bridged copies and hear the linked rooms; and how a copy reads.
//!
//! ```toml
//! [bridge]
//! irc_format = "<{author}@{network}> {text}"
//! xmpp_format = "[{network}] {author}: {text}"
//!
//! [bridge.xmpp]
//! jid = "imgate-relay@corp.example"
//! password_file = "relay-xmpp.secret"
//! nick = "imgate"
//! rooms = ["lobby@conference.corp.example"]
//!
//! [bridge.irc]
//! nick = "imgate"
//! channels = ["#lobby"]
//!
//! [bridge.matrix]
//! user = "imgate-relay"
//! password_file = "relay-matrix.secret"
//! rooms = ["!lobby:corp.example"]
//! ```
//!
//! A relay reaches the server its network's section names (`[xmpp.upstream]`,
//! `[irc.upstream]`, `[matrix.upstream]`), with the same TLS settings.

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BridgeConfig {
    /// How a copy reads on IRC: `{author}`, `{network}` (the origin's),
    /// `{text}`.
    #[serde(default = "default_irc_format")]
    pub irc_format: String,
    /// How a copy reads in XMPP.
    #[serde(default = "default_xmpp_format")]
    pub xmpp_format: String,
    /// How a copy reads in a Matrix room.
    #[serde(default = "default_xmpp_format")]
    pub matrix_format: String,
    pub xmpp: Option<XmppRelayConfig>,
    pub irc: Option<IrcRelayConfig>,
    pub matrix: Option<MatrixRelayConfig>,
    /// Waiting for a relay to write a copy, after which it counts as
    /// failed.
    #[serde(default = "default_send_timeout_ms")]
    pub send_timeout_ms: u64,
    /// The wait before a relay reconnects, doubling from the first to the
    /// last; a connection that lasted a minute starts again from the first.
    #[serde(default = "default_reconnect_first_ms")]
    pub reconnect_first_ms: u64,
    #[serde(default = "default_reconnect_last_ms")]
    pub reconnect_last_ms: u64,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        BridgeConfig {
            irc_format: default_irc_format(),
            xmpp_format: default_xmpp_format(),
            matrix_format: default_xmpp_format(),
            xmpp: None,
            irc: None,
            matrix: None,
            send_timeout_ms: default_send_timeout_ms(),
            reconnect_first_ms: default_reconnect_first_ms(),
            reconnect_last_ms: default_reconnect_last_ms(),
        }
    }
}

fn default_irc_format() -> String {
    "<{author}@{network}> {text}".into()
}
fn default_xmpp_format() -> String {
    "[{network}] {author}: {text}".into()
}
fn default_send_timeout_ms() -> u64 {
    10_000
}
fn default_reconnect_first_ms() -> u64 {
    500
}
fn default_reconnect_last_ms() -> u64 {
    30_000
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct XmppRelayConfig {
    /// The relay account's bare JID.
    pub jid: String,
    /// Its password, or a file holding it (first line).
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    /// Its nick in the rooms.
    #[serde(default = "default_nick")]
    pub nick: String,
    /// Rooms (MUC JIDs) it joins: where it hears and writes.
    #[serde(default)]
    pub rooms: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IrcRelayConfig {
    pub nick: String,
    /// SASL PLAIN account and password (or a file holding it); without
    /// them the relay registers with its nick alone.
    pub sasl_account: Option<String>,
    pub sasl_password: Option<String>,
    pub sasl_password_file: Option<PathBuf>,
    /// Channels it joins.
    #[serde(default)]
    pub channels: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MatrixRelayConfig {
    /// The bot account's user name (`imgate-relay`) or id
    /// (`@imgate-relay:corp.example`).
    pub user: String,
    /// Its password, or a file holding it (first line).
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    /// Rooms it joins, by id (`!abc:corp.example`) or alias
    /// (`#lobby:corp.example`), as the bridge's links name them.
    #[serde(default)]
    pub rooms: Vec<String>,
}

fn default_nick() -> String {
    "imgate".into()
}

impl BridgeConfig {
    /// Paths relative to the config file's folder.
    pub fn resolve(mut self, base: &Path) -> Self {
        if let Some(x) = &mut self.xmpp {
            x.password_file = x.password_file.take().map(|p| base.join(p));
        }
        if let Some(i) = &mut self.irc {
            i.sasl_password_file = i.sasl_password_file.take().map(|p| base.join(p));
        }
        if let Some(m) = &mut self.matrix {
            m.password_file = m.password_file.take().map(|p| base.join(p));
        }
        self
    }

    /// The backoff between reconnects: first and last.
    pub fn backoff(&self) -> (std::time::Duration, std::time::Duration) {
        (
            std::time::Duration::from_millis(self.reconnect_first_ms),
            std::time::Duration::from_millis(self.reconnect_last_ms),
        )
    }

    /// The networks with a relay.
    pub fn networks(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.xmpp.is_some() {
            out.push("xmpp".to_owned());
        }
        if self.irc.is_some() {
            out.push("irc".to_owned());
        }
        if self.matrix.is_some() {
            out.push("matrix".to_owned());
        }
        out
    }

    /// Everything wrong with it; `xmpp`/`irc` say whether those sections
    /// exist (a relay uses its network's upstream).
    /// Every configured name the relays write into the wire, named as
    /// the config names it.
    fn written_names(&self) -> Vec<(String, &str)> {
        let mut out = vec![
            ("irc_format".to_owned(), self.irc_format.as_str()),
            ("xmpp_format".to_owned(), self.xmpp_format.as_str()),
            ("matrix_format".to_owned(), self.matrix_format.as_str()),
        ];
        if let Some(x) = &self.xmpp {
            out.push(("[bridge.xmpp] jid".into(), &x.jid));
            out.push(("[bridge.xmpp] nick".into(), &x.nick));
            out.extend(
                x.rooms
                    .iter()
                    .map(|r| ("[bridge.xmpp] room".into(), r.as_str())),
            );
        }
        if let Some(i) = &self.irc {
            out.push(("[bridge.irc] nick".into(), &i.nick));
            out.extend(
                i.sasl_account
                    .iter()
                    .map(|a| ("[bridge.irc] sasl_account".into(), a.as_str())),
            );
            out.extend(
                i.channels
                    .iter()
                    .map(|c| ("[bridge.irc] channel".into(), c.as_str())),
            );
        }
        if let Some(m) = &self.matrix {
            out.push(("[bridge.matrix] user".into(), &m.user));
            out.extend(
                m.rooms
                    .iter()
                    .map(|r| ("[bridge.matrix] room".into(), r.as_str())),
            );
        }
        out
    }

    pub fn problems(&self, xmpp: bool, irc: bool, matrix: bool) -> Vec<String> {
        let mut out = Vec::new();
        for (name, format) in [
            ("irc_format", &self.irc_format),
            ("xmpp_format", &self.xmpp_format),
            ("matrix_format", &self.matrix_format),
        ] {
            if !format.contains("{text}") {
                out.push(format!("{name} must contain {{text}}"));
            }
        }
        // What is written into a protocol line or stanza: a control
        // character (a CR, LF or NUL) there would end the line early.
        for (name, value) in self.written_names() {
            if value.chars().any(char::is_control) {
                out.push(format!(
                    "{name} `{}` holds a control character",
                    value.escape_debug()
                ));
            }
        }
        if let Some(x) = &self.xmpp {
            if !xmpp {
                out.push(
                    "[bridge.xmpp] needs an [xmpp] section: its upstream is the relay's server"
                        .into(),
                );
            }
            if !x.jid.contains('@') || x.jid.contains('/') {
                out.push(format!(
                    "[bridge.xmpp] jid `{}` must be a bare JID (user@domain)",
                    x.jid
                ));
            }
            if x.password.is_some() == x.password_file.is_some() {
                out.push("[bridge.xmpp] needs one of password or password_file".into());
            }
            if x.nick.is_empty() || x.nick.contains(['/', ' ']) {
                out.push(format!(
                    "[bridge.xmpp] nick `{}` is not a room nick",
                    x.nick
                ));
            }
            for r in &x.rooms {
                if !r.contains('@') || r.contains('/') {
                    out.push(format!(
                        "[bridge.xmpp] room `{r}` must be a room JID (room@conference.example)"
                    ));
                }
            }
        }
        if let Some(i) = &self.irc {
            if !irc {
                out.push(
                    "[bridge.irc] needs an [irc] section: its upstream is the relay's server"
                        .into(),
                );
            }
            if i.nick.is_empty() || i.nick.contains([' ', ',', '*', '?', '!', '@', '#', ':']) {
                out.push(format!("[bridge.irc] nick `{}` is not an IRC nick", i.nick));
            }
            if i.sasl_password.is_some() && i.sasl_password_file.is_some() {
                out.push("[bridge.irc] give sasl_password or sasl_password_file, not both".into());
            }
            for c in &i.channels {
                if !c.starts_with(['#', '&', '+', '!']) || c.contains([' ', ',', '\x07']) {
                    out.push(format!(
                        "[bridge.irc] channel `{c}` is not a channel (#name)"
                    ));
                }
            }
        }
        if let Some(m) = &self.matrix {
            if !matrix {
                out.push(
                    "[bridge.matrix] needs a [matrix] section: its upstream is the relay's homeserver"
                        .into(),
                );
            }
            if m.user.is_empty() || m.user.contains(char::is_whitespace) {
                out.push(format!(
                    "[bridge.matrix] user `{}` is not a user name",
                    m.user
                ));
            }
            if m.password.is_some() == m.password_file.is_some() {
                out.push("[bridge.matrix] needs one of password or password_file".into());
            }
            for r in &m.rooms {
                if !is_matrix_room(r) {
                    out.push(format!(
                        "[bridge.matrix] room `{r}` must be a room id (!abc) or alias (#name:server)"
                    ));
                }
            }
        }
        if self.send_timeout_ms == 0 {
            out.push("send_timeout_ms must be at least 1".into());
        }
        if self.reconnect_first_ms == 0 || self.reconnect_first_ms > self.reconnect_last_ms {
            out.push("reconnect_first_ms must be at least 1 and at most reconnect_last_ms".into());
        }
        out
    }
}

/// A secret given inline or in a file (its first line).
///
/// # Errors
/// The file cannot be read.
pub fn secret(inline: &Option<String>, file: &Option<PathBuf>) -> Result<String, String> {
    if let Some(s) = inline {
        return Ok(s.clone());
    }
    match file {
        Some(path) => std::fs::read_to_string(path)
            .map(|s| s.lines().next().unwrap_or_default().to_owned())
            .map_err(|e| format!("{}: {e}", path.display())),
        None => Ok(String::new()),
    }
}

/// A Matrix room id (`!opaque`, with `:server` before room version 12)
/// or alias (`#name:server`).
fn is_matrix_room(r: &str) -> bool {
    r.len() > 1 && (r.starts_with('!') || (r.starts_with('#') && r.contains(':')))
}

/// A copy's text in `format`.
pub fn render(format: &str, author: Option<&str>, network: &str, text: &str) -> String {
    match author {
        Some(author) => format
            .replace("{author}", author)
            .replace("{network}", network)
            .replace("{text}", text),
        // Nobody to name (a notice the bridge wrote itself): the text.
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_formats_read_as_the_issue_says() {
        let c = BridgeConfig::default();
        assert_eq!(
            render(&c.irc_format, Some("alice"), "xmpp", "hi"),
            "<alice@xmpp> hi"
        );
        assert_eq!(
            render(&c.xmpp_format, Some("bob"), "irc", "hi"),
            "[irc] bob: hi"
        );
        assert_eq!(
            render(&c.irc_format, None, "xmpp", "* x joined"),
            "* x joined"
        );
    }

    #[test]
    fn problems_are_named() {
        let c: BridgeConfig = toml::from_str(
            "irc_format = 'x'\n[xmpp]\njid = 'relay'\nrooms = ['lobby']\n[irc]\nnick = 'a b'\nchannels = ['lobby']\n",
        )
        .unwrap();
        let p = c.problems(false, true, false).join("\n");
        for expected in [
            "irc_format must contain",
            "needs an [xmpp] section",
            "bare JID",
            "password",
            "room `lobby`",
            "nick `a b`",
            "channel `lobby`",
        ] {
            assert!(p.contains(expected), "{expected}: {p}");
        }
    }

    #[test]
    fn control_characters_cannot_reach_the_wire() {
        let c: BridgeConfig = toml::from_str(
            "irc_format = \"<{author}> {text}\\r\\nQUIT\"\n[xmpp]\njid = 'relay@corp.example'\npassword = 'p'\nnick = \"relay\\u0000\"\nrooms = ['lobby@conference.corp.example']\n[irc]\nnick = 'relay'\nchannels = [\"#lobby\\nJOIN #secret\"]\n",
        )
        .unwrap();
        let p = c.problems(true, true, true).join("\n");
        for expected in [
            "irc_format `<{author}> {text}\\r\\nQUIT` holds a control character",
            "[bridge.xmpp] nick `relay\\0` holds",
            "[bridge.irc] channel `#lobby\\nJOIN #secret` holds",
        ] {
            assert!(p.contains(expected), "{expected}: {p}");
        }
    }
}
