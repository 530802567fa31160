//! `rate-limit`: a per-user message rate with a burst allowance (a token
//! bucket), kept in `kv` so every instance of the plugin shares it, timed
//! with `clock`. An over-limit message is blocked with a reason.
//!
//! See README.md for the config reference.

use imgate_sdk::{Config, Direction, Event, Plugin, Verdict, clock, kv};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// Sustained rate.
    messages_per_minute: u32,
    /// Messages allowed at once on top of the rate (the bucket's size).
    #[serde(default = "default_burst")]
    burst: u32,
    /// Which messages count: "outbound" (default), "inbound" or "both".
    #[serde(default = "default_directions")]
    directions: String,
    /// Users never limited (session users: bare JIDs, IRC accounts/nicks).
    #[serde(default)]
    exempt: Vec<String>,
    #[serde(default = "default_reason")]
    reason: String,
}

fn default_burst() -> u32 {
    10
}
fn default_directions() -> String {
    "outbound".into()
}
fn default_reason() -> String {
    "rate limit: at most {rate} messages a minute".into()
}

pub struct RateLimit(Settings);

/// Thousandths of a message, so slow rates refill smoothly.
const MILLI: u64 = 1000;

fn parse(state: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(state).ok()?;
    let (tokens, at) = text.split_once(':')?;
    Some((tokens.parse().ok()?, at.parse().ok()?))
}

impl RateLimit {
    fn counts(&self, direction: Direction) -> bool {
        match self.0.directions.as_str() {
            "both" => true,
            "inbound" => direction == Direction::Inbound,
            _ => direction == Direction::Outbound,
        }
    }

    /// Takes one message from `user`'s bucket; false when it is empty.
    /// Compare-and-swap keeps concurrent instances from double-spending.
    fn take(&self, user: &str) -> Result<bool, String> {
        let key = format!("bucket:{user}");
        let capacity = u64::from(self.0.burst.max(1)) * MILLI;
        let per_minute = u64::from(self.0.messages_per_minute);
        for _ in 0..8 {
            let now = clock::now_ms();
            let old = kv::get(&key).map_err(|e| format!("{e:?}"))?;
            let (tokens, at) = old.as_deref().and_then(parse).unwrap_or((capacity, now));
            // per_minute messages a minute = per_minute * MILLI / 60_000 a ms.
            let refilled =
                (tokens + now.saturating_sub(at) * per_minute * MILLI / 60_000).min(capacity);
            let (allowed, left) = if refilled >= MILLI {
                (true, refilled - MILLI)
            } else {
                (false, refilled)
            };
            let new = format!("{left}:{now}");
            if kv::compare_and_swap(&key, old.as_deref(), new.as_bytes())
                .map_err(|e| format!("{e:?}"))?
            {
                return Ok(allowed);
            }
        }
        Err("the bucket kept changing under us".into())
    }
}

impl Plugin for RateLimit {
    fn init(config: Config) -> Result<Self, String> {
        let s: Settings = config.parse()?;
        if s.messages_per_minute == 0 {
            return Err("messages_per_minute must be at least 1".into());
        }
        if !matches!(s.directions.as_str(), "outbound" | "inbound" | "both") {
            return Err("directions must be \"outbound\", \"inbound\" or \"both\"".into());
        }
        Ok(RateLimit(s))
    }

    fn handle(&mut self, event: &Event<'_>) -> Verdict {
        // A message another plugin blocked is not sent: it does not count.
        if !self.counts(event.direction()) || event.has_tag("imgate:after-block") {
            return Verdict::allow();
        }
        let user = match event.direction() {
            Direction::Outbound => event.user(),
            Direction::Inbound => event.sender(),
        };
        if self.0.exempt.iter().any(|u| u.eq_ignore_ascii_case(&user)) {
            return Verdict::allow();
        }
        match self.take(&user) {
            Ok(true) => Verdict::allow(),
            Ok(false) => Verdict::block(
                self.0
                    .reason
                    .replace("{rate}", &self.0.messages_per_minute.to_string()),
            )
            .with_tag("rate-limit:exceeded"),
            // Without its state the plugin cannot count; it lets the
            // message through and says so (use failure = "fail-closed" and
            // an erroring plugin to refuse instead).
            Err(_) => Verdict::allow().with_tag("rate-limit:state-unavailable"),
        }
    }

    /// Messages are what it counts; the host does not call it for the rest.
    fn interest(&self) -> Option<Vec<String>> {
        Some(vec!["message".into()])
    }
}

imgate_sdk::export_plugin!(RateLimit);

#[cfg(test)]
mod tests {
    use super::*;
    use imgate_sdk::testing::{self, Harness, inbound, message};
    use serde_json::json;

    fn send(h: &mut Harness<RateLimit>, user: &str) -> bool {
        let mut e = message(user, "bob@example.net", "hi");
        e.session.user = user.into();
        h.handle(&e).is_allow()
    }

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let mut h: Harness<RateLimit> =
            Harness::new(json!({"messages_per_minute": 60, "burst": 3})).unwrap();
        assert!((0..3).all(|_| send(&mut h, "alice@corp.example")));
        let mut e = message("alice@corp.example", "bob@example.net", "hi");
        e.session.user = "alice@corp.example".into();
        let v = h.handle(&e);
        assert!(v.is_block());
        assert!(v.tags.contains(&"rate-limit:exceeded".to_string()));
        // Another user has a bucket of their own.
        assert!(send(&mut h, "carol@corp.example"));
        // 60 a minute: one more each second.
        testing::advance_ms(1000);
        assert!(send(&mut h, "alice@corp.example"));
        assert!(!send(&mut h, "alice@corp.example"));
        // A long pause refills to the burst, not beyond.
        testing::advance_ms(3_600_000);
        assert!((0..3).all(|_| send(&mut h, "alice@corp.example")));
        assert!(!send(&mut h, "alice@corp.example"));
    }

    #[test]
    fn exempt_users_and_directions() {
        let mut h: Harness<RateLimit> = Harness::new(json!({
            "messages_per_minute": 1, "burst": 1, "exempt": ["Bot@corp.example"],
        }))
        .unwrap();
        assert!((0..10).all(|_| send(&mut h, "bot@corp.example")));
        // Inbound messages do not count by default.
        assert!((0..10).all(|_| {
            h.handle(&inbound(message("eve@x", "alice@corp.example", "x")))
                .is_allow()
        }));
        let mut h: Harness<RateLimit> =
            Harness::new(json!({"messages_per_minute": 1, "burst": 1, "directions": "inbound"}))
                .unwrap();
        assert!(
            h.handle(&inbound(message("eve@x", "a@corp.example", "x")))
                .is_allow()
        );
        assert!(
            h.handle(&inbound(message("eve@x", "a@corp.example", "x")))
                .is_block()
        );
    }

    #[test]
    fn the_reason_names_the_rate_and_bad_config_is_refused() {
        let mut h: Harness<RateLimit> =
            Harness::new(json!({"messages_per_minute": 5, "burst": 1})).unwrap();
        send(&mut h, "a@x");
        let mut e = message("a@x", "b@x", "hi");
        e.session.user = "a@x".into();
        match h.handle(&e).action {
            imgate_sdk::Action::Block(reason) => {
                assert_eq!(reason, "rate limit: at most 5 messages a minute")
            }
            other => panic!("{other:?}"),
        }
        assert!(Harness::<RateLimit>::new(json!({"messages_per_minute": 0})).is_err());
        assert!(
            Harness::<RateLimit>::new(json!({"messages_per_minute": 1, "directions": "up"}))
                .is_err()
        );
    }
}
