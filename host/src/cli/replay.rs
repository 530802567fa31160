//! `imgate replay`: a policy test bench. Every line is parsed before any
//! event runs, so a malformed transcript produces no partial output.
//! Messages a bridge sends are judged as copies on their own network and
//! printed as extra lines, each with the event that caused it.
//!
//! A line may say what it expects (`"expect": "block"`, or an object of
//! verdict fields such as `{"action": "block", "tags": [...]}`): each
//! expectation missed is reported with its line, and the exit code is 1,
//! so a transcript is a plugin's test in any language.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use serde::Serialize;

use std::sync::Arc;

use crate::config::Config;
use crate::event::bridge::Delivery;
use crate::event::json::{EventDoc, FinalVerdictDoc};
use crate::event::now_ms;
use crate::event::{Event, Session};
use crate::gateway::bridge::{self, IdMap};
use crate::plugins::Decision;
use crate::plugins::Runtime;
use crate::plugins::{Stage, Timing};

/// One output line: an event's verdict, or a bridged copy's (with the
/// event that caused it and what was sent).
#[derive(Serialize)]
struct VerdictLine<'a> {
    line: usize,
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    caused_by: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    emitted: Option<EmittedDoc<'a>>,
    #[serde(flatten)]
    verdict: FinalVerdictDoc,
    timings: &'a [Timing],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    failures: Vec<FailureDoc>,
}

/// A message a plugin sent, as `imgate replay` shows it.
#[derive(Serialize)]
struct EmittedDoc<'a> {
    plugin: &'a str,
    network: &'a str,
    to: &'a str,
    body: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    author: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    emote: bool,
    /// `[rel-type, target]` as sent; `follows` is what it found.
    #[serde(skip_serializing_if = "Option::is_none")]
    relation: Option<[&'a str; 2]>,
    /// The copy's ids the relation points at, when the message it follows
    /// was bridged there earlier in the transcript.
    #[serde(skip_serializing_if = "Option::is_none")]
    follows: Option<Vec<String>>,
}

#[derive(Serialize)]
struct FailureDoc {
    plugin: String,
    stage: Stage,
    error: String,
    policy: String,
}

/// One event of a transcript: its line, and what the line expects of its
/// verdict (verdict fields as `imgate replay` prints them), if anything.
#[derive(Debug)]
pub struct Entry {
    pub line: usize,
    pub event: Event,
    pub expect: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A line's `expect`: `"block"` is `{"action": "block"}`.
fn expectation(
    value: serde_json::Value,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    match value {
        serde_json::Value::String(action) => {
            Ok([("action".to_owned(), serde_json::Value::String(action))]
                .into_iter()
                .collect())
        }
        serde_json::Value::Object(fields) if !fields.is_empty() => Ok(fields),
        _ => Err("`expect` is an action (\"block\") or an object of verdict fields".into()),
    }
}

/// Parses one line: the event, and its expectation.
fn parse_line(
    line: &str,
    n: usize,
    now: u64,
) -> Result<(Event, Option<serde_json::Map<String, serde_json::Value>>), String> {
    let mut value: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let expect = match value.as_object_mut().and_then(|o| o.remove("expect")) {
        Some(e) => Some(expectation(e)?),
        None => None,
    };
    let doc: EventDoc = serde_json::from_value(value).map_err(|e| e.to_string())?;
    let event = doc
        .into_event(&format!("line-{n}"), now)
        .map_err(|e| e.to_string())?;
    Ok((event, expect))
}

/// Parses a transcript: an [`Entry`] for each non-blank line that does not
/// start with `#`.
///
/// # Errors
/// Every malformed line, as `NAME:LINE: message`.
pub fn parse_transcript(name: &str, input: impl Read) -> Result<Vec<Entry>, Vec<String>> {
    let now = now_ms();
    let mut events = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in BufReader::new(input).lines().enumerate() {
        let n = i + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                errors.push(format!("{name}:{n}: cannot read: {e}"));
                break;
            }
        };
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match parse_line(trimmed, n, now) {
            Ok((event, expect)) => events.push(Entry {
                line: n,
                event,
                expect,
            }),
            Err(e) => errors.push(format!("{name}:{n}: {e}")),
        }
    }
    if errors.is_empty() {
        Ok(events)
    } else {
        Err(errors)
    }
}

pub fn run(config_path: &Path, events_path: &Path) -> anyhow::Result<ExitCode> {
    let name = events_path.display().to_string();
    let parsed = if name == "-" {
        parse_transcript("<stdin>", std::io::stdin().lock())
    } else {
        let file =
            std::fs::File::open(events_path).with_context(|| format!("cannot open {name}"))?;
        parse_transcript(&name, file)
    };
    let events = match parsed {
        Ok(events) => events,
        Err(errors) => {
            for e in errors {
                eprintln!("error: {e}");
            }
            return Ok(ExitCode::from(2));
        }
    };
    let config = match Config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let runtime = match Runtime::start(&config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };

    // Copies are judged as a gateway would, and go nowhere; the id map
    // lives for the run, so a later edit finds an earlier copy.
    let map = Arc::new(IdMap::memory());
    runtime.engine.shared().bridges.offline(map.clone());
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let (mut expected, mut missed) = (0, 0);
    for Entry {
        line,
        event,
        expect,
    } in events
    {
        let decision = runtime.chain.evaluate(event);
        write_line(&mut out, line, &decision, None)?;
        if let Some(expect) = expect {
            expected += 1;
            let got = serde_json::to_value(FinalVerdictDoc::from(&decision.verdict))?;
            for (field, want) in &expect {
                let have = got.get(field).unwrap_or(&serde_json::Value::Null);
                if have != want {
                    missed += 1;
                    out.flush()?;
                    eprintln!("{name}:{line}: expected {field} {want}, got {have}");
                    break;
                }
            }
        }
        for sent in &decision.sent {
            let relay = Arc::new(Session {
                id: format!("relay-{}", sent.network),
                user: "relay".into(),
                peer: "replay".into(),
            });
            let now = now_ms();
            let Some(prepared) = bridge::prepare(&map, &decision.event, sent, &relay, &[], now)?
            else {
                continue;
            };
            let follows = prepared.follows.as_ref().map(|f| {
                f.ids
                    .iter()
                    .map(|i| format!("{}:{}", i.kind, i.value))
                    .collect()
            });
            let copy = runtime.chain.evaluate(prepared.event.clone());
            if let Ok(c) = bridge::judged(
                &map,
                prepared,
                &copy.event,
                &copy.verdict,
                sent,
                &decision.event.network,
                now,
            ) {
                let ids = copy.event.ids.clone();
                bridge::settle(&map, &c.id, &Delivery::Delivered(ids), now);
            }
            let emitted = EmittedDoc {
                plugin: &sent.plugin,
                network: &sent.network,
                to: &sent.to,
                body: &sent.body,
                author: sent.author.as_deref(),
                emote: sent.emote,
                relation: sent
                    .relation
                    .as_ref()
                    .map(|r| [r.rel_type.as_str(), r.target.as_str()]),
                follows,
            };
            write_line(&mut out, line, &copy, Some((&decision.event.id, emitted)))?;
        }
    }
    out.flush()?;
    if expected > 0 {
        eprintln!(
            "{}: {} of {expected} expectations met",
            name,
            expected - missed
        );
    }
    Ok(if missed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn write_line(
    out: &mut impl Write,
    line: usize,
    decision: &Decision,
    emitted: Option<(&str, EmittedDoc<'_>)>,
) -> anyhow::Result<()> {
    let (caused_by, emitted) = match emitted {
        Some((by, doc)) => (Some(by), Some(doc)),
        None => (None, None),
    };
    let record = VerdictLine {
        line,
        event: &decision.event.id,
        caused_by,
        emitted,
        verdict: FinalVerdictDoc::from(&decision.verdict),
        timings: &decision.timings,
        failures: decision
            .failures
            .iter()
            .map(|f| FailureDoc {
                plugin: f.plugin.clone(),
                stage: f.stage,
                error: f.failure.to_string(),
                policy: f.policy.to_string(),
            })
            .collect(),
    };
    serde_json::to_writer(&mut *out, &record)?;
    out.write_all(b"\n")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_lines_are_all_reported_with_numbers() {
        let input = concat!(
            "# a comment\n",
            "{\"network\":\"xmpp\",\"direction\":\"outbound\",\"session_start\":{}}\n",
            "\n",
            "{not json\n",
            "{\"network\":\"xmpp\",\"direction\":\"sideways\",\"session_start\":{}}\n",
            "{\"network\":\"xmpp\",\"direction\":\"outbound\"}\n",
        );
        let errors = parse_transcript("t.jsonl", input.as_bytes()).unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].starts_with("t.jsonl:4: "), "{errors:?}");
        assert!(errors[1].starts_with("t.jsonl:5: ") && errors[1].contains("sideways"));
        assert!(errors[2].starts_with("t.jsonl:6: ") && errors[2].contains("exactly one"));
    }

    #[test]
    fn good_lines_keep_their_numbers_and_default_ids() {
        let input = "\n{\"network\":\"irc\",\"direction\":\"inbound\",\"session_end\":{\"reason\":\"quit\"}}\n";
        let events = parse_transcript("t", input.as_bytes()).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].line, 2);
        assert_eq!(events[0].event.id, "line-2");
        assert!(events[0].expect.is_none());
    }

    #[test]
    fn expectations_are_read_and_bad_ones_refused() {
        let input = concat!(
            "{\"expect\":\"block\",\"network\":\"irc\",\"direction\":\"inbound\",\"session_start\":{}}\n",
            "{\"expect\":{\"action\":\"allow\",\"tags\":[]},\"network\":\"irc\",\"direction\":\"inbound\",\"session_start\":{}}\n",
        );
        let events = parse_transcript("t", input.as_bytes()).unwrap();
        assert_eq!(events[0].expect.as_ref().unwrap()["action"], "block");
        assert_eq!(
            events[1].expect.as_ref().unwrap()["tags"],
            serde_json::json!([])
        );
        let bad =
            "{\"expect\":3,\"network\":\"irc\",\"direction\":\"inbound\",\"session_start\":{}}\n";
        let errors = parse_transcript("t", bad.as_bytes()).unwrap_err();
        assert!(errors[0].contains("`expect`"), "{errors:?}");
    }
}
