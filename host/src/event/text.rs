//! Which characters each network can carry as message text. Adapters write
//! text with these rules, and the runtime refuses a plugin's rewrite that
//! breaks them.

/// A character XML 1.0 allows (`Char`), which is what XMPP carries.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// The first character of `text` that `network` cannot carry in a
/// message body, if any.
///
/// - IRC: NUL ends the server's reading of the buffer, and `\x01` is the
///   CTCP frame, which the adapter writes itself. CR and LF are allowed:
///   the adapter sends each line of a rewrite as a message of its own.
/// - XMPP: only XML 1.0 characters (no NUL, no other C0 control but tab,
///   LF and CR, no U+FFFE or U+FFFF).
/// - Any other network (a replay, a future adapter): both rules.
pub fn unsafe_char(network: &str, text: &str) -> Option<char> {
    let irc = |c: char| matches!(c, '\0' | '\x01');
    let xml = |c: char| !is_xml_char(c);
    match network {
        "irc" => text.chars().find(|&c| irc(c)),
        "xmpp" => text.chars().find(|&c| xml(c)),
        _ => text.chars().find(|&c| irc(c) || xml(c)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_network_has_its_own_rule() {
        assert_eq!(unsafe_char("irc", "a\u{1}b"), Some('\u{1}'));
        assert_eq!(unsafe_char("irc", "a\u{2}b"), None);
        assert_eq!(unsafe_char("xmpp", "a\u{2}b"), Some('\u{2}'));
        assert_eq!(unsafe_char("xmpp", "a\r\nb"), None);
        assert_eq!(unsafe_char("matrix", "\u{1}"), Some('\u{1}'));
        assert_eq!(unsafe_char("matrix", "\u{FFFE}"), Some('\u{FFFE}'));
    }
}
