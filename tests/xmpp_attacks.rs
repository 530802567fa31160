//! The XMPP attacks of the first outside review, against real Prosody
//! behind `imgate run`: verdict text with characters XML 1.0 forbids, and
//! references to such characters from a client.

use std::time::Duration;

use imgate_tests::gateway::Imgate;
use imgate_tests::prosody::{DOMAIN, Prosody};
use imgate_tests::rawxmpp::RawClient;
use imgate_tests::{gateway_cert, write_config};

const ALICE: (&str, &str) = ("alice", "alice-secret");
const BOB: (&str, &str) = ("bob", "bob-secret");

/// The next `<message/>` a client receives, skipping presence and iq.
async fn next_message(c: &mut RawClient) -> imgate::adapters::xmpp::codec::Element {
    loop {
        let el = tokio::time::timeout(Duration::from_secs(10), c.element())
            .await
            .expect("a stanza within 10 s")
            .expect("the stream is open");
        if el.local_name() == "message" {
            return el;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_characters_never_reach_the_wire_and_streams_stay_open() {
    let prosody = Prosody::start(&[ALICE, BOB]);
    let config = write_config(&format!(
        r#"
[runtime]
cache_dir = "cache"

[xmpp]
listen = "127.0.0.1:0"
cert = "gateway.crt"
key = "gateway.key"

[xmpp.upstream]
address = "127.0.0.1:{}"
tls = "starttls"
ca_file = "{}"

[[plugins]]
name = "hostile"
path = "{{wasm:test_hostile}}"
grants = ["kv"]
deadline_ms = 2000
"#,
        prosody.port,
        prosody.cert.display()
    ));
    let ca = gateway_cert(&config, &[DOMAIN, "127.0.0.1"]);
    let imgate = Imgate::start(&config, &[]);
    let addr = imgate.xmpp.unwrap();
    let mut alice = RawClient::login(addr, &ca, DOMAIN, ALICE.0, ALICE.1, "a")
        .await
        .expect("alice logs in");
    let mut bob = RawClient::login(addr, &ca, DOMAIN, BOB.0, BOB.1, "b")
        .await
        .expect("bob logs in");
    let to_bob = |id: &str, body: &str| {
        format!("<message to='bob@{DOMAIN}' type='chat' id='{id}'><body>{body}</body></message>")
    };

    // A block reason with NUL, U+0001, U+000B, U+FFFE and markup: alice
    // gets a well-formed error, and her stream goes on.
    alice.send(&to_bob("m1", "reason-ctl")).await.unwrap();
    let error = next_message(&mut alice).await;
    assert_eq!(error.attr("type"), Some("error"), "{}", error.to_xml());
    let xml = error.to_xml();
    assert!(
        xml.contains("no\u{fffd}\u{fffd}\u{fffd}\u{fffd}&lt;/text&gt;"),
        "{xml}"
    );

    // A rewrite with those characters is the plugin's invalid verdict.
    alice.send(&to_bob("m2", "rewrite-ctl")).await.unwrap();
    let error = next_message(&mut alice).await;
    assert!(
        error.to_xml().contains("could not be checked"),
        "{}",
        error.to_xml()
    );

    // Both streams are still open: a clean message goes through.
    alice.send(&to_bob("m3", "hello bob")).await.unwrap();
    let got = next_message(&mut bob).await;
    assert!(got.to_xml().contains("hello bob"), "{}", got.to_xml());

    // A client's reference to a forbidden character is refused as Prosody
    // would refuse it: alice's stream ends not-well-formed; bob's goes on.
    alice.send(&to_bob("m4", "a&#1;b")).await.unwrap();
    let mut closed = false;
    for _ in 0..10 {
        match tokio::time::timeout(Duration::from_secs(5), alice.frame()).await {
            Ok(Ok(Some(imgate::adapters::xmpp::codec::Frame::Element(bytes)))) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                if text.contains("stream:error") {
                    assert!(text.contains("not-well-formed"), "{text}");
                }
            }
            Ok(Ok(Some(_))) => {}
            _ => {
                closed = true;
                break;
            }
        }
    }
    assert!(closed, "alice's stream was closed");
    let mut carol_free = RawClient::login(addr, &ca, DOMAIN, ALICE.0, ALICE.1, "again")
        .await
        .expect("alice logs in again");
    carol_free.send(&to_bob("m5", "still here")).await.unwrap();
    let got = next_message(&mut bob).await;
    assert!(got.to_xml().contains("still here"), "{}", got.to_xml());
}
