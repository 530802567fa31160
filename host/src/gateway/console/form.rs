//! What a page was asked: the search form's fields from a query string or
//! a posted form, as an archive filter, and back into a link.

use std::collections::HashMap;

use crate::archive::Filter;

/// Results per search page.
pub const PAGE: usize = 50;

/// A query string's or a form body's fields; the last of a name wins.
pub fn fields(encoded: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(encoded).into_owned().collect()
}

/// The search form as submitted; every field optional.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Search {
    pub participant: String,
    pub room: String,
    pub network: String,
    pub text: String,
    pub tag: String,
    pub verdict: String,
    pub kind: String,
    /// `YYYY-MM-DDTHH:MM` (a datetime-local field), UTC.
    pub since: String,
    pub until: String,
    /// Paging: entries numbered below this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<u64>,
}

pub const NETWORKS: &[&str] = &["xmpp", "irc", "matrix"];
pub const VERDICTS: &[&str] = &["allow", "block", "drop", "rewrite", "hold"];
pub const KINDS: &[&str] = &[
    "message",
    "file_offer",
    "presence",
    "session_start",
    "session_end",
    "room_join",
    "room_leave",
    "reaction",
    "subject",
];

impl Search {
    pub fn from_fields(f: &HashMap<String, String>) -> Search {
        let get = |k: &str| f.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
        Search {
            participant: get("participant"),
            room: get("room"),
            network: get("network"),
            text: get("text"),
            tag: get("tag"),
            verdict: get("verdict"),
            kind: get("kind"),
            since: get("since"),
            until: get("until"),
            before: f.get("before").and_then(|v| v.parse().ok()),
        }
    }

    /// The archive filter, newest first, one page (and one more, to know
    /// whether there is a next page).
    ///
    /// # Errors
    /// A field that cannot be what it says.
    pub fn filter(&self, limit: usize) -> Result<Filter, String> {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let pick = |s: &str, allowed: &[&str], what: &str| -> Result<Option<String>, String> {
            if s.is_empty() || allowed.contains(&s) {
                Ok(some(s))
            } else {
                Err(format!("unknown {what} `{s}`"))
            }
        };
        Ok(Filter {
            participant: some(&self.participant),
            room: some(&self.room),
            network: pick(&self.network, NETWORKS, "network")?,
            text: some(&self.text),
            tag: some(&self.tag),
            action: pick(&self.verdict, VERDICTS, "verdict")?,
            kind: pick(&self.kind, KINDS, "kind")?,
            since_ms: time(&self.since, "from")?,
            until_ms: time(&self.until, "until")?,
            before_seq: self.before,
            newest_first: true,
            limit: Some(limit),
            ..Default::default()
        })
    }

    /// This search as a query string, with `before` for the next page.
    pub fn query(&self, before: Option<u64>) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("participant", &self.participant),
            ("room", &self.room),
            ("network", &self.network),
            ("text", &self.text),
            ("tag", &self.tag),
            ("verdict", &self.verdict),
            ("kind", &self.kind),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
        if let Some(b) = before {
            q.append_pair("before", &b.to_string());
        }
        q.finish()
    }

    /// The fields as (name, value) pairs, for hidden inputs.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        form_urlencoded::parse(self.query(None).as_bytes())
            .filter_map(|(k, v)| {
                let name = [
                    "participant",
                    "room",
                    "network",
                    "text",
                    "tag",
                    "verdict",
                    "kind",
                    "since",
                    "until",
                ]
                .into_iter()
                .find(|n| *n == k)?;
                Some((name, v.into_owned()))
            })
            .collect()
    }
}

/// `YYYY-MM-DDTHH:MM[:SS]` in UTC to milliseconds since the epoch.
fn time(s: &str, what: &str) -> Result<Option<u64>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    let bad = || format!("`{what}` is not a date and time (YYYY-MM-DDTHH:MM, UTC)");
    let (date, clock) = s.split_once('T').ok_or_else(bad)?;
    let num = |p: Option<&str>| p.and_then(|v| v.parse::<i64>().ok()).ok_or_else(bad);
    let mut d = date.splitn(3, '-');
    let (y, m, day) = (num(d.next())?, num(d.next())?, num(d.next())?);
    let mut c = clock.splitn(3, ':');
    let (h, min) = (num(c.next())?, num(c.next())?);
    let sec = match c.next() {
        Some(v) => num(Some(v))?,
        None => 0,
    };
    if !(1970..=9999).contains(&y)
        || !(1..=12).contains(&m)
        || !(1..=31).contains(&day)
        || !(0..24).contains(&h)
        || !(0..60).contains(&min)
        || !(0..60).contains(&sec)
    {
        return Err(bad());
    }
    let days = days_from_civil(y, m, day);
    Ok(Some(
        ((days * 86_400 + h * 3600 + min * 60 + sec) * 1000) as u64,
    ))
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_and_checked() {
        assert_eq!(time("1970-01-01T00:00", "from"), Ok(Some(0)));
        assert_eq!(
            time("2025-11-25T13:00", "from"),
            Ok(Some(1_764_075_600_000))
        );
        assert_eq!(
            time("2000-02-29T00:00:01", "from"),
            Ok(Some(951_782_401_000))
        );
        for bad in [
            "yesterday",
            "2025-13-01T00:00",
            "2025-01-01",
            "2025-01-01T25:00",
        ] {
            assert!(time(bad, "from").is_err(), "{bad}");
        }
        // The export module's inverse agrees.
        assert_eq!(
            crate::archive::export::rfc3339(1_764_075_600_000),
            "2025-11-25T13:00:00Z"
        );
    }

    #[test]
    fn a_search_round_trips_through_its_link() {
        let s = Search::from_fields(&fields(
            b"participant=alice%40corp.example&text=%3Cscript%3E&verdict=block&before=77&junk=1",
        ));
        assert_eq!(s.participant, "alice@corp.example");
        assert_eq!(s.text, "<script>");
        assert_eq!(s.before, Some(77));
        let again = Search::from_fields(&fields(s.query(Some(77)).as_bytes()));
        assert_eq!(again, s);
        let f = s.filter(PAGE + 1).unwrap();
        assert_eq!(
            (f.action.as_deref(), f.before_seq, f.limit),
            (Some("block"), Some(77), Some(51))
        );
        assert!(f.newest_first);
        assert!(
            Search {
                verdict: "maybe".into(),
                ..Default::default()
            }
            .filter(1)
            .is_err()
        );
        assert_eq!(s.pairs().len(), 3);
    }
}
