//! Bridging: what the `bridge` plugin sends is judged as a copy on the
//! other network. Offline through `imgate replay` here; against real
//! Prosody and ngircd below.

use imgate_tests::{imgate_bin, replay, write_config};
use serde_json::Value;

const LOBBY: &str = "lobby@conference.corp.example";

fn heard(id: &str, network: &str, sender: &str, body: &str, extra: &str) -> String {
    let room = if network == "xmpp" { LOBBY } else { "#lobby" };
    format!(
        r#"{{"id":"{id}","network":"{network}","direction":"inbound","attributes":{{"imgate.relay":"relay"}},"ids":[{{"kind":"message-id","value":"m-{id}"}}],"message":{{"sender":"{sender}","recipient":"relay","room":"{room}","body":"{body}"{extra}}}}}"#
    )
}

fn transcript(lines: &[String]) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), lines.join("\n")).unwrap();
    file
}

const BRIDGE: &str = r##"
[[plugins]]
name = "irc-words"
path = "{wasm:keyword_block}"
networks = ["irc"]
directions = ["outbound"]
[plugins.config]
words = ["confidential"]

[[plugins]]
name = "bridge"
path = "{wasm:bridge}"
grants = ["bridge", "log"]
[plugins.config]
links = [{ xmpp = "lobby@conference.corp.example", irc = "#lobby" }]
"##;

fn copies(lines: &[Value]) -> Vec<&Value> {
    lines
        .iter()
        .filter(|l| l.get("emitted").is_some())
        .collect()
}

#[test]
fn replay_prints_each_copy_judged_on_its_own_network() {
    let cfg = write_config(BRIDGE);
    let t = transcript(&[
        heard("e1", "xmpp", &format!("{LOBBY}/alice"), "hello wrld", ""),
        heard(
            "e2",
            "xmpp",
            &format!("{LOBBY}/alice"),
            "hello world",
            r#","edit_of":"m-e1""#,
        ),
        heard(
            "e3",
            "xmpp",
            &format!("{LOBBY}/alice"),
            "the confidential plan",
            "",
        ),
        heard("e4", "irc", "bob", "confidential on irc", ""),
    ]);
    let out = replay(&cfg.path, t.path());
    assert_eq!(out.len(), 8, "{out:#?}");
    let c = copies(&out);
    assert_eq!(c.len(), 4);
    // Each copy names the event that caused it, and is outbound elsewhere.
    for (copy, origin) in c.iter().zip(["e1", "e2", "e3", "e4"]) {
        assert_eq!(copy["caused_by"], origin);
        assert_ne!(copy["event"], origin);
    }
    assert_eq!(c[0]["emitted"]["network"], "irc");
    assert_eq!(c[0]["emitted"]["to"], "#lobby");
    assert_eq!(c[0]["emitted"]["author"], "alice");
    assert_eq!(c[0]["action"], "allow");
    // The correction found the copy of the message it corrects.
    assert_eq!(
        c[1]["emitted"]["relation"],
        serde_json::json!(["edit", "m-e1"])
    );
    assert!(c[1]["emitted"]["follows"].is_array(), "{:#?}", c[1]);
    // The word IRC forbids stays off IRC; the original was allowed.
    assert_eq!(out[4]["action"], "allow");
    assert_eq!(c[2]["action"], "block");
    assert!(c[2]["reason"].as_str().unwrap().contains("confidential"));
    // Said on IRC, the same word reaches XMPP, which allows it.
    assert_eq!(c[3]["emitted"]["network"], "xmpp");
    assert_eq!(c[3]["action"], "allow");
    // The bridge never sees a copy: only the IRC words plugin judged them.
    for copy in c {
        let plugins: Vec<&str> = copy["timings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["plugin"].as_str().unwrap())
            .collect();
        assert!(!plugins.contains(&"bridge"), "{copy:#?}");
    }
}

#[test]
fn two_bridges_configured_both_ways_twice_copy_each_message_once() {
    let mut toml = String::new();
    for (name, direction) in [
        ("a-to-b", "xmpp-to-irc"),
        ("b-to-a", "irc-to-xmpp"),
        ("a-to-b-again", "both"),
        ("b-to-a-again", "both"),
    ] {
        toml.push_str(&format!(
            r##"
[[plugins]]
name = "{name}"
path = "{{wasm:bridge}}"
grants = ["bridge", "log"]
[plugins.config]
direction = "{direction}"
links = [{{ xmpp = "lobby@conference.corp.example", irc = "#lobby" }}]
"##
        ));
    }
    let cfg = write_config(&toml);
    let t = transcript(&[
        heard("e1", "xmpp", &format!("{LOBBY}/alice"), "one", ""),
        heard("e2", "irc", "bob", "two", ""),
    ]);
    let out = replay(&cfg.path, t.path());
    let c = copies(&out);
    assert_eq!(c.len(), 2, "{out:#?}");
    assert_eq!(c[0]["caused_by"], "e1");
    assert_eq!(c[1]["caused_by"], "e2");
}

#[test]
fn a_message_blocked_at_its_source_is_not_bridged() {
    let cfg =
        write_config(&BRIDGE.replace("networks = [\"irc\"]\ndirections = [\"outbound\"]\n", ""));
    let t = transcript(&[heard("e1", "irc", "bob", "confidential", "")]);
    let out = replay(&cfg.path, t.path());
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0]["action"], "block");
}

#[test]
fn a_bridge_must_be_granted_bridge() {
    let cfg = write_config(&BRIDGE.replace("grants = [\"bridge\", \"log\"]", "grants = [\"log\"]"));
    let out = std::process::Command::new(imgate_bin())
        .args(["check", "--config"])
        .arg(&cfg.path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("not granted `bridge`"), "{err}");
}

// ---------------------------------------------------------------------
// Against the real thing: Prosody with MUC, ngircd, slixmpp and Python's
// irc, each in its room; imgate's relays in both (tests/support/bridge.rs).

use imgate_tests::bridge::{LIVE_BRIDGE, WITH_ARCHIVER, WORDS_FOR_IRC, World};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn xmpp_and_irc_talk_through_the_relays_and_policy_applies_to_the_copies() {
    let mut world = World::new(&format!("{WORDS_FOR_IRC}{LIVE_BRIDGE}"));
    world.start();
    let mut alice = world.alice();
    let mut bob = world.bob();

    alice.say("hello from xmpp");
    let seen = bob.heard("<alice@xmpp> hello from xmpp", WAIT);
    assert!(seen.is_some(), "bob saw: {:#?}", bob.log);
    assert_eq!(
        seen.unwrap()["room"],
        "imgate",
        "through the relay identity"
    );

    bob.say("hello from irc");
    let seen = alice.heard("[irc] bob: hello from irc", WAIT);
    assert!(seen.is_some(), "alice saw: {:#?}", alice.log);
    assert_eq!(seen.unwrap()["room"], "imgate");

    // IRC forbids the word: it stays off IRC, and alice is told.
    alice.say("the confidential plan");
    let told = alice.wait(
        |v| {
            v["private"].is_string()
                && v["body"]
                    .as_str()
                    .unwrap_or("")
                    .contains("Not bridged to irc")
        },
        WAIT,
    );
    assert!(told.is_some(), "alice saw: {:#?}", alice.log);
    // Said on IRC, XMPP allows it.
    bob.say("confidential on irc");
    assert!(
        alice
            .heard("[irc] bob: confidential on irc", WAIT)
            .is_some(),
        "{:#?}",
        alice.log
    );
    let bob_saw = bob.settle(Duration::from_millis(500));
    assert!(
        !bob_saw.iter().any(|v| v["body"]
            .as_str()
            .unwrap_or("")
            .contains("the confidential plan")),
        "{bob_saw:#?}"
    );

    // Each original and each copy is archived, the copies with their origin.
    let imgate = world.imgate.as_mut().unwrap();
    imgate.terminate(Duration::from_secs(10));
    let records = imgate_tests::archive_records(&world.archive());
    let copies: Vec<_> = records
        .iter()
        .filter(|r| r["event"]["attributes"]["imgate.origin"].is_string())
        .collect();
    assert_eq!(copies.len(), 4, "{records:#?}");
    for copy in &copies {
        let origin = copy["event"]["attributes"]["imgate.origin"]
            .as_str()
            .unwrap();
        assert!(
            records.iter().any(|r| r["event"]["id"] == origin),
            "origin {origin} archived"
        );
    }
    let out = std::process::Command::new(imgate_tests::imgate_bin())
        .args(["archive", "verify", "--config"])
        .arg(&world.config.path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_correction_after_a_restart_still_reaches_irc_as_a_correction() {
    let mut world = World::new(LIVE_BRIDGE);
    world.start();
    let mut alice = world.alice();
    let mut bob = world.bob();
    alice.send(serde_json::json!({"say": "meet at noon", "id": "m-noon"}));
    assert!(
        bob.heard("<alice@xmpp> meet at noon", WAIT).is_some(),
        "{:#?}",
        bob.log
    );

    // The gateway restarts between the message and its correction.
    let mut imgate = world.imgate.take().unwrap();
    imgate.terminate(Duration::from_secs(10));
    drop(imgate);
    world.start();

    alice.send(serde_json::json!({"correct": "m-noon", "text": "meet at one"}));
    let seen = bob.heard("* alice corrected: meet at one", WAIT);
    assert!(seen.is_some(), "bob saw: {:#?}", bob.log);
    // An edit of a message never bridged goes as a plain message.
    alice.send(serde_json::json!({"correct": "never-seen", "text": "fixed typo"}));
    assert!(
        bob.heard("<alice@xmpp> fixed typo", WAIT).is_some(),
        "{:#?}",
        bob.log
    );
}

#[test]
fn two_bridges_in_a_loop_deliver_every_message_exactly_once() {
    let mut plugins = String::from(WITH_ARCHIVER);
    for (name, direction) in [
        ("a-to-b", "xmpp-to-irc"),
        ("b-to-a", "irc-to-xmpp"),
        ("both-ways-again", "both"),
        ("both-ways-once-more", "both"),
    ] {
        plugins.push_str(&format!(
            r##"
[[plugins]]
name = "{name}"
path = "{{wasm:bridge}}"
grants = ["bridge", "log"]
[plugins.config]
direction = "{direction}"
links = [{{ xmpp = "lobby@conference.localhost", irc = "#lobby" }}]
"##
        ));
    }
    let mut world = World::new(&plugins);
    world.start();
    let mut alice = world.alice();
    let mut bob = world.bob();
    for i in 0..3 {
        alice.say(&format!("from xmpp {i}"));
        bob.say(&format!("from irc {i}"));
    }
    assert!(
        bob.heard("<alice@xmpp> from xmpp 2", WAIT).is_some(),
        "{:#?}",
        bob.log
    );
    assert!(
        alice.heard("[irc] bob: from irc 2", WAIT).is_some(),
        "{:#?}",
        alice.log
    );
    let count =
        |log: &[serde_json::Value], body: &str| log.iter().filter(|v| v["body"] == body).count();
    let bob_saw = bob.settle(Duration::from_secs(1)).to_vec();
    let alice_saw = alice.settle(Duration::from_millis(200)).to_vec();
    for i in 0..3 {
        assert_eq!(
            count(&bob_saw, &format!("<alice@xmpp> from xmpp {i}")),
            1,
            "{bob_saw:#?}"
        );
        assert_eq!(
            count(&alice_saw, &format!("[irc] bob: from irc {i}")),
            1,
            "{alice_saw:#?}"
        );
    }
    // Nothing came back round: no copy of a copy.
    assert!(
        !bob_saw
            .iter()
            .any(|v| v["body"].as_str().unwrap_or("").contains("[irc]")),
        "{bob_saw:#?}"
    );
    assert!(
        !alice_saw
            .iter()
            .any(|v| v["body"].as_str().unwrap_or("").contains("<alice@xmpp>")),
        "{alice_saw:#?}"
    );
}

#[test]
fn a_killed_relay_reconnects_and_what_it_missed_is_reported_not_lost() {
    let mut world = World::new(LIVE_BRIDGE);
    world.start();
    let mut alice = world.alice();
    let mut bob = world.bob();
    alice.say("before the kill");
    assert!(
        bob.heard("<alice@xmpp> before the kill", WAIT).is_some(),
        "{:#?}",
        bob.log
    );

    // An IRC operator kills the relay's connection.
    let (oper, password) = (
        imgate_tests::ngircd::OPER,
        imgate_tests::ngircd::OPER_PASSWORD,
    );
    bob.send(serde_json::json!({"raw": format!("OPER {oper} {password}")}));
    std::thread::sleep(Duration::from_millis(300));
    bob.send(serde_json::json!({"raw": "KILL imgate :bridging test"}));
    let imgate = world.imgate.as_mut().unwrap();
    assert!(
        imgate
            .wait_for_line("relay lost its connection", WAIT)
            .is_some(),
        "{}",
        imgate.lines.join("\n")
    );
    // Said while the IRC relay is down: it cannot be delivered, and says so.
    alice.say("during the gap");
    // The relay comes back, rejoins, and bridging goes on.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while imgate
        .drain()
        .iter()
        .filter(|l| l.contains("relay connected"))
        .count()
        < 3
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            imgate.lines.join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    alice.say("after the reconnect");
    assert!(
        bob.heard("<alice@xmpp> after the reconnect", WAIT)
            .is_some(),
        "{:#?}",
        bob.log
    );

    // The gap's message was either delivered or recorded as failed, with
    // its reason: never silently lost.
    let delivered = bob
        .log
        .iter()
        .any(|v| v["body"] == "<alice@xmpp> during the gap");
    let failed = imgate
        .drain()
        .iter()
        .any(|l| l.contains("bridged copy not delivered") && l.contains("not connected"));
    assert!(
        failed && !delivered,
        "delivered: {delivered}\n{}",
        imgate.lines.join("\n")
    );
    let store = imgate::archive::Store::open_read_only(&world.archive()).unwrap();
    let failures = store.bridge_recent(Some("failed"), 10).unwrap();
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert!(
        failures[0]
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("not connected")
    );
    // The admin API shows both relays connected again, the IRC one with a
    // reconnect and the failure.
    let connections: serde_json::Value =
        serde_json::from_str(&imgate_tests::admin_get(world.admin, "/connections")).unwrap();
    let relays = connections["relays"].as_array().unwrap();
    assert_eq!(relays.len(), 2, "{connections:#}");
    let irc = relays.iter().find(|r| r["network"] == "irc").unwrap();
    assert_eq!(irc["connected"], true, "{connections:#}");
    assert!(irc["reconnects"].as_u64().unwrap() >= 1, "{connections:#}");
    assert_eq!(irc["failed"], 1, "{connections:#}");
    assert_eq!(connections["bridge"]["failed"], 1, "{connections:#}");
}

#[test]
fn replies_and_retractions_cross_as_text_where_irc_has_none() {
    let mut world = World::new(LIVE_BRIDGE);
    world.start();
    let mut alice = world.alice();
    let mut bob = world.bob();

    // A reply in XMPP to bob's bridged message quotes it on IRC.
    bob.say("lunch at noon?");
    let copy = alice.heard("[irc] bob: lunch at noon?", WAIT);
    let copy_id = copy.expect("the copy reached XMPP")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    alice.send(serde_json::json!({"reply": copy_id, "text": "yes"}));
    let seen = bob.heard("<alice@xmpp> [> bob: lunch at noon?] yes", WAIT);
    assert!(seen.is_some(), "bob saw: {:#?}", bob.log);

    // Alice retracts what she said: IRC gets a short notice.
    alice.send(serde_json::json!({"say": "wrong room, sorry", "id": "m-oops"}));
    assert!(bob.heard("<alice@xmpp> wrong room, sorry", WAIT).is_some());
    alice.send(serde_json::json!({"retract": "m-oops"}));
    let seen = bob.heard("* alice retracted: \"wrong room, sorry\"", WAIT);
    assert!(seen.is_some(), "bob saw: {:#?}", bob.log);
}
