//! The compliance archive as operators and auditors meet it: records
//! written by a real plugin through `imgate replay`, `imgate archive
//! verify` catching a flipped byte in the database file and naming the
//! record, and `kill -9` in the middle of appends losing nothing that was
//! acknowledged.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use imgate_tests::{TestConfig, archive_records, imgate_bin, replay, write_config};

const CONFIG: &str = r#"
[runtime]
cache_dir = "cache"

[archive]
path = "archive.db"
group_commit_ms = 2

[[plugins]]
name = "recorder"
path = "{wasm:test_recorder}"
grants = ["archive"]
"#;

fn transcript(dir: &Path, n: usize, special: Option<(usize, &str)>) -> std::path::PathBuf {
    let path = dir.join("transcript.jsonl");
    let mut f = std::fs::File::create(&path).unwrap();
    for i in 0..n {
        let body = match special {
            Some((at, body)) if at == i => body.to_owned(),
            _ => format!("message {i} about the quarterly numbers"),
        };
        writeln!(
            f,
            r#"{{"id":"ev-{i}","network":"xmpp","direction":"outbound","session":{{"user":"alice@corp.example"}},"message":{{"sender":"alice@corp.example","recipient":"bob@example.net","body":"{body}"}}}}"#
        )
        .unwrap();
    }
    path
}

fn imgate(args: &[&str], config: &TestConfig) -> (i32, String) {
    let out = Command::new(imgate_bin())
        .args(args)
        .arg("--config")
        .arg(&config.path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn a_flipped_byte_in_the_database_file_is_found_and_named() {
    let config = write_config(CONFIG);
    let events = transcript(config.dir.path(), 20, Some((12, "tamper-target-xyz")));
    replay(&config.path, &events);
    let (code, text) = imgate(&["archive", "verify"], &config);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("ok: 20 records"), "{text}");

    let db = config.dir.path().join("archive.db");
    let target = archive_records(&db)
        .into_iter()
        .find(|r| r["event"]["message"]["body"] == "tamper-target-xyz")
        .unwrap();
    let seq = target["seq"].as_u64().unwrap();
    // Flip one byte of the record's text in the file itself, as an editor
    // with disk access would.
    let mut bytes = std::fs::read(&db).unwrap();
    let at = bytes
        .windows(17)
        .position(|w| w == b"tamper-target-xyz")
        .expect("the record's text is in the database file");
    bytes[at + 16] = b'Z';
    std::fs::write(&db, bytes).unwrap();

    let (code, text) = imgate(&["archive", "verify"], &config);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains(&format!("record {seq} is broken")), "{text}");
}

#[test]
fn kill_9_in_the_middle_of_appends_loses_no_acknowledged_record() {
    let config = write_config(CONFIG);
    let events = transcript(config.dir.path(), 20_000, None);
    let mut child = Command::new(imgate_bin())
        .args(["replay", "--config"])
        .arg(&config.path)
        .arg(&events)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // A line of output is printed after the chain — the observer's durable
    // append included — has finished with that event: it was acknowledged.
    let stdout = child.stdout.take().unwrap();
    let mut acknowledged = Vec::new();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        acknowledged.push(v["event"].as_str().unwrap().to_owned());
        if acknowledged.len() == 1500 {
            child.kill().unwrap(); // SIGKILL
            break;
        }
    }
    let _ = child.wait();

    let (code, text) = imgate(&["archive", "verify"], &config);
    assert_eq!(code, 0, "the chain holds after kill -9: {text}");
    let archived: std::collections::HashSet<String> =
        archive_records(&config.dir.path().join("archive.db"))
            .into_iter()
            .map(|r| r["event"]["id"].as_str().unwrap().to_owned())
            .collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !archived.contains(*id))
        .collect();
    assert!(lost.is_empty(), "acknowledged but not archived: {lost:?}");
    assert!(archived.len() < 20_000, "killed before the end");
}

#[test]
fn search_finds_by_participant_and_text() {
    let config = write_config(CONFIG);
    let events = transcript(config.dir.path(), 5, Some((3, "the merger closes friday")));
    replay(&config.path, &events);
    let (code, text) = imgate(
        &[
            "archive",
            "search",
            "--participant",
            "alice@corp.example",
            "--text",
            "merger",
            "--json",
        ],
        &config,
    );
    assert_eq!(code, 0, "{text}");
    let hits: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(hits.len(), 1, "{text}");
    assert_eq!(hits[0]["event"]["id"], "ev-3");
    let (_, table) = imgate(&["archive", "search", "--text", "quarterly"], &config);
    assert!(table.contains("4 records"), "{table}");
}

#[test]
fn export_as_jsonl_and_eml_with_a_manifest_that_matches_the_chain() {
    use sha2::{Digest, Sha256};
    let config = write_config(CONFIG);
    let events = transcript(config.dir.path(), 6, Some((2, "line one\\nline two")));
    replay(&config.path, &events);
    let out = config.dir.path().join("export-jsonl");
    let (code, text) = imgate(
        &[
            "archive",
            "export",
            "--format",
            "jsonl",
            "--out",
            out.to_str().unwrap(),
        ],
        &config,
    );
    assert_eq!(code, 0, "{text}");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let entries = manifest["records"].as_array().unwrap();
    assert_eq!(entries.len(), 6);
    // Each record's hash is sha256(prev || its exported line): anyone can
    // re-check the export against the chain without imgate.
    let lines = std::fs::read_to_string(out.join("records.jsonl")).unwrap();
    let unhex = |s: &str| {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect::<Vec<u8>>()
    };
    for (line, entry) in lines.lines().zip(entries) {
        let mut h = Sha256::new();
        h.update(unhex(entry["prev"].as_str().unwrap()));
        h.update(line.as_bytes());
        let got: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, entry["hash"].as_str().unwrap());
    }
    for pair in entries.windows(2) {
        assert_eq!(pair[1]["prev"], pair[0]["hash"], "the links chain");
    }

    let out = config.dir.path().join("export-eml");
    let (code, text) = imgate(
        &[
            "archive",
            "export",
            "--format",
            "eml",
            "--out",
            out.to_str().unwrap(),
            "--text",
            "line",
        ],
        &config,
    );
    assert_eq!(code, 0, "{text}");
    let eml = std::fs::read_to_string(out.join("00000003.eml")).unwrap();
    assert!(
        eml.starts_with("From: alice@corp.example\r\nTo: bob@example.net\r\n"),
        "{eml}"
    );
    assert!(eml.contains("X-Imgate-Record-Hash: "));
    assert!(eml.ends_with("\r\n\r\nline one\r\nline two\r\n"), "{eml}");
}

#[test]
fn a_purge_under_a_legal_hold_keeps_the_held_records_and_the_chain_verifies() {
    let config = write_config(&CONFIG.replace(
        "group_commit_ms = 2",
        "group_commit_ms = 2\nretention_days = 7",
    ));
    // Five messages from alice, then three from carol.
    let path = config.dir.path().join("t.jsonl");
    let mut f = std::fs::File::create(&path).unwrap();
    for (i, who) in [
        "alice", "alice", "alice", "alice", "alice", "carol", "carol", "carol",
    ]
    .iter()
    .enumerate()
    {
        writeln!(
            f,
            r#"{{"id":"ev-{i}","network":"xmpp","direction":"outbound","session":{{"user":"{who}@corp.example"}},"message":{{"sender":"{who}@corp.example","recipient":"bob@example.net","body":"note {i}"}}}}"#
        )
        .unwrap();
    }
    drop(f);
    replay(&config.path, &path);
    let (code, text) = imgate(
        &[
            "archive",
            "hold",
            "add",
            "--user",
            "carol@corp.example",
            "--reason",
            "case 42",
            "--by",
            "legal",
        ],
        &config,
    );
    assert_eq!(code, 0, "{text}");
    let (_, list) = imgate(&["archive", "hold", "list"], &config);
    assert!(
        list.contains("carol@corp.example") && list.contains("1 holds"),
        "{list}"
    );
    // Ten days from now, with 7 days' retention.
    let later = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64)
        + 10 * 86_400_000;
    let (code, text) = imgate(
        &[
            "archive",
            "purge",
            "--by",
            "retention-job",
            "--now",
            &later.to_string(),
        ],
        &config,
    );
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("purged 5 records (3 kept under legal hold)"),
        "{text}"
    );
    let (code, text) = imgate(&["archive", "verify"], &config);
    assert_eq!(code, 0, "the chain still verifies after the purge: {text}");
    let left: Vec<String> = archive_records(&config.dir.path().join("archive.db"))
        .iter()
        .map(|r| r["event"]["session"]["user"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(left, vec!["carol@corp.example"; 3]);
}

#[test]
fn imgate_run_purges_on_its_schedule() {
    let config = write_config(CONFIG);
    let events = transcript(config.dir.path(), 4, None);
    replay(&config.path, &events);
    // Retention of zero days: everything is due at the first purge.
    std::fs::write(
        &config.path,
        std::fs::read_to_string(&config.path).unwrap().replace(
            "group_commit_ms = 2",
            "group_commit_ms = 2\nretention_days = 0\npurge_interval_s = 1",
        ),
    )
    .unwrap();
    let mut gw = imgate_tests::gateway::Imgate::start(&config, &[]);
    let line = gw.wait_for_line(
        "scheduled archive purge",
        std::time::Duration::from_secs(10),
    );
    assert!(
        line.as_deref().is_some_and(|l| l.contains("purged=4")),
        "{line:?}"
    );
    let (code, text) = imgate(&["archive", "verify"], &config);
    assert_eq!(code, 0, "{text}");
    assert!(archive_records(&config.dir.path().join("archive.db")).is_empty());
}

#[test]
fn signed_checkpoints_catch_a_cut_off_end_and_a_forged_checkpoint() {
    let config = write_config(&format!(
        "{CONFIG}\n",
    ).replace(
        "group_commit_ms = 2",
        "group_commit_ms = 2\ncheckpoint_key = \"archive.key\"\ncheckpoint_file = \"offsite/checkpoints.jsonl\"\ncheckpoint_interval_s = 3600",
    ));
    let dir = config.dir.path();
    std::fs::create_dir(dir.join("offsite")).unwrap();
    let out = Command::new(imgate_bin())
        .args(["keygen", "--out"])
        .arg(dir.join("archive"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = transcript(dir, 20, None);
    replay(&config.path, &events);
    let checkpoints = dir.join("offsite/checkpoints.jsonl");
    let lines = std::fs::read_to_string(&checkpoints).unwrap();
    // One at start (empty archive), one at shutdown (20 records).
    assert!(lines.contains("\"records\":20"), "{lines}");
    let anchored = |config: &TestConfig| {
        imgate(
            &[
                "archive",
                "verify",
                "--checkpoints",
                checkpoints.to_str().unwrap(),
                "--pub",
                dir.join("archive.pub").to_str().unwrap(),
            ],
            config,
        )
    };
    let (code, text) = anchored(&config);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("agrees with") && text.contains("at 20 records"),
        "{text}"
    );

    // Cut the last two records off: the chain alone still verifies.
    let db = dir.join("archive.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute("DELETE FROM records WHERE seq > 18", [])
        .unwrap();
    drop(conn);
    let (code, text) = imgate(&["archive", "verify"], &config);
    assert_eq!(code, 0, "{text}");
    let (code, text) = anchored(&config);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("record 19 is broken") && text.contains("cut off"),
        "{text}"
    );

    // A checkpoint edited to match the shorter chain no longer verifies.
    std::fs::write(
        &checkpoints,
        lines.replace("\"records\":20", "\"records\":18"),
    )
    .unwrap();
    let (code, text) = anchored(&config);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("does not verify"), "{text}");
}
