//! Export: a search result written out for reviewers and e-discovery
//! tools, as JSON Lines (the records' exact canonical bytes) or as one
//! RFC 5322 `.eml` file per message, with a manifest listing every
//! record's chain links so each can be checked against `verify`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::Stored;
use crate::util::hex::encode as hex;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Format {
    Jsonl,
    Eml,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "jsonl" => Ok(Format::Jsonl),
            "eml" => Ok(Format::Eml),
            other => Err(format!("unknown format `{other}` (jsonl, eml)")),
        }
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// RFC 3339 date and time in UTC, for messages.
pub fn rfc3339(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

/// RFC 5322 date in UTC.
pub fn rfc5322(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
        [(secs.div_euclid(86_400).rem_euclid(7)) as usize];
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(m - 1) as usize];
    format!(
        "{weekday}, {d:02} {month} {y} {:02}:{:02}:{:02} +0000",
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

/// A header value on one line.
fn header(v: &str) -> String {
    v.replace(['\r', '\n'], " ")
}

/// The `.eml` of one message record; `None` for other kinds.
pub fn eml(record: &Value, hash: &str) -> Option<String> {
    let e = &record["event"];
    let m = e.get("message").filter(|m| m.is_object())?;
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let to = m["room"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| s(&m["recipient"]));
    let when = e["timestamp"]
        .as_u64()
        .or(record["appended_ms"].as_u64())
        .unwrap_or(0);
    let verdict = &record["verdict"];
    let mut out = String::new();
    let _ = write!(
        out,
        "From: {}\r\nTo: {}\r\nDate: {}\r\nSubject: [{}] {} message #{}\r\nMessage-ID: <{}.{}@imgate>\r\n",
        header(&s(&m["sender"])),
        header(&to),
        rfc5322(when),
        header(&s(&e["network"])),
        header(&s(&e["direction"])),
        record["seq"],
        record["seq"],
        &hash[..16.min(hash.len())],
    );
    let _ = write!(
        out,
        "X-Imgate-Record: {}\r\nX-Imgate-Record-Hash: {hash}\r\nX-Imgate-Event: {}\r\nX-Imgate-Session-User: {}\r\n",
        record["seq"],
        header(&s(&e["id"])),
        header(&s(&e["session"]["user"])),
    );
    if verdict.is_object() {
        let _ = write!(
            out,
            "X-Imgate-Verdict: {}\r\nX-Imgate-Decided-By: {} {}\r\nX-Imgate-Tags: {}\r\n",
            header(&s(&verdict["action"])),
            header(&s(&verdict["decided_by"]["plugin"])),
            header(&s(&verdict["decided_by"]["sha256"])),
            verdict["tags"]
                .as_array()
                .map(|t| t
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default(),
        );
    }
    out.push_str("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n");
    let body = s(&m["body"]).replace("\r\n", "\n").replace('\n', "\r\n");
    out.push_str(&body);
    out.push_str("\r\n");
    Some(out)
}

/// The files of an export in `format`: the records, then `manifest.json`
/// (each record's chain links and the file that holds it).
pub fn files(format: Format, records: &[Stored]) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut manifest = Vec::new();
    match format {
        Format::Jsonl => {
            let mut out = Vec::new();
            for r in records {
                out.extend_from_slice(&r.doc);
                out.push(b'\n');
                manifest.push(json!({"seq": r.seq, "prev": hex(&r.prev), "hash": hex(&r.hash), "file": "records.jsonl"}));
            }
            files.push(("records.jsonl".to_owned(), out));
        }
        Format::Eml => {
            for r in records {
                let record: Value = serde_json::from_slice(&r.doc).unwrap_or(Value::Null);
                let hash = hex(&r.hash);
                let Some(text) = eml(&record, &hash) else {
                    continue;
                };
                let name = format!("{:08}.eml", r.seq);
                manifest
                    .push(json!({"seq": r.seq, "prev": hex(&r.prev), "hash": hash, "file": name}));
                files.push((name, text.into_bytes()));
            }
        }
    }
    let doc = json!({
        "format": match format { Format::Jsonl => "jsonl", Format::Eml => "eml" },
        "records": manifest,
        "hash": "sha256(prev || canonical record bytes); records.jsonl holds those bytes, one per line",
    });
    files.push((
        "manifest.json".to_owned(),
        (serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n").into_bytes(),
    ));
    files
}

/// Writes `records` into `dir` (created) in `format`, plus
/// `manifest.json`; returns the files written.
///
/// # Errors
/// A file cannot be written.
pub fn write(dir: &Path, format: Format, records: &[Stored]) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (name, bytes) in files(format, records) {
        let path = dir.join(name);
        std::fs::write(&path, bytes)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc5322_in_utc() {
        assert_eq!(rfc5322(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322(1_764_075_600_000),
            "Tue, 25 Nov 2025 13:00:00 +0000"
        );
        assert_eq!(rfc5322(951_782_400_000), "Tue, 29 Feb 2000 00:00:00 +0000");
    }

    #[test]
    fn a_message_record_becomes_an_eml() {
        let record = json!({
            "seq": 7, "appended_ms": 1_764_075_600_000u64,
            "event": {"id": "ev-7", "network": "xmpp", "direction": "outbound", "session": {"user": "alice@corp.example"},
                      "timestamp": 1_764_075_600_000u64,
                      "message": {"sender": "alice@corp.example", "recipient": "bob@example.net", "body": "line one\nline two"}},
            "verdict": {"action": "block", "reason": "no", "decided_by": {"plugin": "dlp", "sha256": "ab"}, "tags": ["dlp:ssn"]},
        });
        let text = eml(&record, &"f".repeat(64)).unwrap();
        assert!(text.starts_with("From: alice@corp.example\r\nTo: bob@example.net\r\nDate: Tue, 25 Nov 2025 13:00:00 +0000\r\n"), "{text}");
        assert!(
            text.contains("X-Imgate-Verdict: block\r\n")
                && text.contains("X-Imgate-Tags: dlp:ssn\r\n")
        );
        assert!(text.ends_with("\r\n\r\nline one\r\nline two\r\n"));
        assert!(eml(&json!({"event": {"session_start": {}}}), "x").is_none());
    }
}
