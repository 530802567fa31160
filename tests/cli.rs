//! The `imgate` binary, run as users run it.

use std::process::Command;

use imgate_tests::{imgate_bin, wasm, workspace, write_config};

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(imgate_bin())
        .args(args)
        .current_dir(workspace())
        .output()
        .expect("run imgate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn replay_of_the_sample_transcript_gives_one_verdict_per_event() {
    let (code, out, err) = run(&[
        "replay",
        "--config",
        "examples/imgate.toml",
        "examples/transcript.jsonl",
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 10);
    let actions: Vec<&str> = lines
        .iter()
        .map(|l| l["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "allow", "allow", "block", "block", "allow", "allow", "block", "allow", "allow",
            "allow"
        ]
    );
    let blocked = &lines[3];
    assert_eq!(blocked["event"], "ev-4");
    assert_eq!(blocked["decided_by"]["plugin"], "keyword-block");
    assert_eq!(blocked["decided_by"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(blocked["tags"], serde_json::json!(["keyword:blocked"]));
    let timings = blocked["timings"].as_array().unwrap();
    assert_eq!(timings.len(), 2);
    assert!(timings[1]["us"].as_f64().unwrap() > 0.0);
}

#[test]
fn replay_names_the_malformed_line_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("bad.jsonl");
    std::fs::write(
        &events,
        "{\"network\":\"xmpp\",\"direction\":\"outbound\",\"session_start\":{}}\n{\"network\": 42}\n",
    )
    .unwrap();
    let (code, out, err) = run(&[
        "replay",
        "--config",
        "examples/imgate.toml",
        events.to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(out.is_empty(), "no partial output: {out}");
    assert!(err.contains("bad.jsonl:2:"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn check_reports_every_problem_with_its_location() {
    let cfg = write_config(
        r#"
[[plugins]]
name = "hostile"
path = "{wasm:test_hostile}"
grants = ["log"]

[[plugins]]
name = "missing"
path = "nope.wasm"

[[plugins]]
name = "kw"
path = "{wasm:keyword_block}"
grants = ["teleport"]
[plugins.config]
words = []
"#,
    );
    let (code, _out, err) = run(&["check", "--config", cfg.path.to_str().unwrap()]);
    assert_ne!(code, 0);
    for expected in [
        "plugin `hostile` (line 2): imports `imgate:policy/kv@0.2.2` but is not granted `kv`",
        "plugin `missing` (line 7): cannot read",
        "plugin `kw` (line 11): grants: unknown capability `teleport`",
        "plugin `kw` (line 11): failed to start: refused to initialise: `words` must list at least one",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
}

#[test]
fn check_passes_the_sample_config() {
    let (code, out, err) = run(&["check", "--config", "examples/imgate.toml"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2 plugin(s) loaded"), "{out}");
}

#[test]
fn inspect_shows_hash_contract_exports_and_requested_capabilities() {
    let path = wasm("test_scripted");
    let (code, out, err) = run(&["plugin", "inspect", "--json", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["sha256"],
        imgate::plugins::sha256_hex(&std::fs::read(&path).unwrap())
    );
    assert_eq!(v["contract_versions"], serde_json::json!(["0.2.2"]));
    assert_eq!(v["contract"], "0.2");
    assert_eq!(v["interest"], true, "the Rust SDK always exports interest");
    assert_eq!(v["policy"], true);
    assert_eq!(v["observer"], false);
    let caps: Vec<&str> = v["imports"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "capability")
        .map(|i| i["capability"].as_str().unwrap())
        .collect();
    assert_eq!(caps, ["log", "kv", "metrics"]);

    let (code, out, _) = run(&["plugin", "inspect", wasm("test_recorder").to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("observer") && out.contains("archive"), "{out}");
    assert!(!out.contains("newer than this host"), "{out}");

    // Built for a later contract: said so, and that it loads.
    let (code, out, _) = run(&[
        "plugin",
        "inspect",
        wasm("test_future_py").to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    assert!(
        out.contains("contract:  imgate:policy@0.2.3")
            && out.contains("newer than this host's imgate:policy@0.2.2"),
        "{out}"
    );

    // Built for the earlier contract: said so, and how it runs.
    let (code, out, _) = run(&[
        "plugin",
        "inspect",
        imgate_tests::golden("0.1.0", "keyword_block")
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(code, 0);
    assert!(
        out.contains("contract:  imgate:policy@0.1.0") && out.contains("0.1 adapter"),
        "{out}"
    );

    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"not wasm").unwrap();
    let (code, _, err) = run(&["plugin", "inspect", junk.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("not a valid component"), "{err}");
}

#[test]
fn plugin_stdout_and_stderr_become_log_lines_tagged_with_the_plugin() {
    let cfg = write_config(
        r#"
[[plugins]]
name = "noisy"
path = "{wasm:test_hostile}"
grants = ["kv"]
"#,
    );
    let events = cfg.dir.path().join("events.jsonl");
    std::fs::write(
        &events,
        r#"{"network":"xmpp","direction":"outbound","message":{"sender":"a","recipient":"b","body":"probe-wasi"}}"#,
    )
    .unwrap();
    let out = Command::new(imgate_bin())
        .args([
            "replay",
            "--config",
            cfg.path.to_str().unwrap(),
            events.to_str().unwrap(),
        ])
        .env("IMGATE_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let line = |text: &str| {
        err.lines()
            .any(|l| l.contains(text) && l.contains("plugin=\"noisy\""))
    };
    assert!(line("hostile stdout line"), "{err}");
    assert!(line("hostile stderr line"), "{err}");
    // Command output stays clean JSON.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
    );
}

#[test]
fn a_reader_that_goes_away_ends_a_printing_command_quietly() {
    // More verdicts than a pipe holds, read by `head -n 1`.
    let sample = std::fs::read_to_string(workspace().join("examples/transcript.jsonl")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let transcript = dir.path().join("long.jsonl");
    std::fs::write(&transcript, sample.repeat(100)).unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' replay --config '{}' '{}' | head -n 1",
            imgate_bin().display(),
            workspace().join("examples/imgate.toml").display(),
            transcript.display()
        ))
        .current_dir(workspace())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("Broken pipe") && !err.contains("panicked"),
        "{err}"
    );
}
