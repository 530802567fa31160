//! What the gateway itself writes on an XMPP stream: stream headers and
//! stream errors, and the namespaces the adapter reads.

use super::codec::escape;

pub const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
pub const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
pub const NS_SASL2: &str = "urn:xmpp:sasl:2";
pub const NS_SASL_CB: &str = "urn:xmpp:sasl-cb:0";
pub const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
pub const NS_SM: &str = "urn:xmpp:sm:3";
pub const NS_STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";

/// The stream close tag.
pub const CLOSE: &[u8] = b"</stream:stream>";

/// A server's stream header, as the gateway answers a client itself.
pub fn header_from(domain: &str, id: &str) -> String {
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
         xmlns:stream='http://etherx.jabber.org/streams' id='{id}' from='{}' \
         version='1.0' xml:lang='en'>",
        escape(domain, true)
    )
}

/// A client's stream header, as the gateway opens one to the server.
pub fn header_to(domain: &str) -> String {
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
         xmlns:stream='http://etherx.jabber.org/streams' to='{}' version='1.0'>",
        escape(domain, true)
    )
}

/// A stream error and the stream's close.
pub fn stream_error(condition: &str, text: &str) -> String {
    format!(
        "<stream:error><{condition} xmlns='{NS_STREAM_ERRORS}'/><text xmlns='{NS_STREAM_ERRORS}' \
         xml:lang='en'>{}</text></stream:error></stream:stream>",
        escape(text, false)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::xmpp::codec::{Element, STREAMS};

    #[test]
    fn stream_errors_are_well_formed() {
        let e = stream_error("policy-violation", "no <script> & such");
        let body = e.trim_end_matches("</stream:stream>");
        let el = Element::parse(body.as_bytes()).unwrap();
        assert!(el.is("error", STREAMS));
        assert!(el.child("policy-violation", NS_STREAM_ERRORS).is_some());
        assert_eq!(
            el.child("text", NS_STREAM_ERRORS).unwrap().text(),
            "no <script> & such"
        );
    }
}
