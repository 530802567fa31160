//! Who is asking: sessions (a random token in an HttpOnly, Secure,
//! SameSite=Strict cookie, kept in memory), each with its CSRF token, and
//! the login rate limit.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::util::hex::encode as hex;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "imgate_session";
/// The login form's double-submit cookie (there is no session yet).
pub const LOGIN_COOKIE: &str = "imgate_login";

/// The most sessions kept; past it the least recently used ends.
const MAX_SESSIONS: usize = 10_000;

/// 32 random bytes, hex.
pub fn token() -> String {
    let mut bytes = [0u8; 32];
    // getrandom only fails without an OS source of randomness, where no
    // session could be safe: a fixed token would be worse than a panic.
    getrandom::fill(&mut bytes).expect("the OS random source");
    hex(&bytes)
}

/// Compares without an early exit.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A signed-in account's session.
#[derive(Clone, Debug)]
pub struct Session {
    pub account: String,
    /// Every form carries it; a post without it is refused.
    pub csrf: String,
    created: Instant,
    seen: Instant,
}

/// Sessions by the SHA-256 of their token (the token itself is only in
/// the browser).
pub struct Sessions {
    map: Mutex<HashMap<[u8; 32], Session>>,
    idle: Duration,
    max: Duration,
}

fn key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Sessions {
    pub fn new(idle: Duration, max: Duration) -> Self {
        Sessions {
            map: Mutex::new(HashMap::new()),
            idle,
            max,
        }
    }

    /// Starts a session; returns its token.
    pub fn start(&self, account: &str) -> String {
        let now = Instant::now();
        let token = token();
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, s| self.live(s, now));
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.seen).map(|(k, _)| *k)
        {
            map.remove(&oldest);
        }
        map.insert(
            key(&token),
            Session {
                account: account.to_owned(),
                csrf: self::token(),
                created: now,
                seen: now,
            },
        );
        token
    }

    fn live(&self, s: &Session, now: Instant) -> bool {
        now.duration_since(s.seen) < self.idle && now.duration_since(s.created) < self.max
    }

    /// The session `token` names, if it is live; marks it used.
    pub fn get(&self, token: &str) -> Option<Session> {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let k = key(token);
        let live = map.get(&k).is_some_and(|s| self.live(s, now));
        if !live {
            map.remove(&k);
            return None;
        }
        let s = map.get_mut(&k)?;
        s.seen = now;
        Some(s.clone())
    }

    pub fn end(&self, token: &str) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&key(token));
    }
}

/// Failed logins counted per address and per account name over a window.
pub struct Limiter {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

/// The window failures are counted over.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failures allowed per account name in a window.
pub const PER_ACCOUNT: u32 = 5;
/// Failures allowed per client address in a window.
pub const PER_ADDRESS: u32 = 20;

impl Default for Limiter {
    fn default() -> Self {
        Limiter {
            failures: Mutex::new(HashMap::new()),
        }
    }
}

impl Limiter {
    fn keys(ip: IpAddr, account: &str) -> [(String, u32); 2] {
        [
            (format!("ip {ip}"), PER_ADDRESS),
            (format!("account {account}"), PER_ACCOUNT),
        ]
    }

    /// `Err(wait)` when the address or the account has failed too often.
    pub fn check(&self, ip: IpAddr, account: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        for (k, limit) in Self::keys(ip, account) {
            if let Some((n, since)) = map.get(&k)
                && *n >= limit
                && now.duration_since(*since) < WINDOW
            {
                return Err(WINDOW - now.duration_since(*since));
            }
        }
        Ok(())
    }

    pub fn failed(&self, ip: IpAddr, account: &str) {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, (_, since)| now.duration_since(*since) < WINDOW);
        }
        for (k, _) in Self::keys(ip, account) {
            let entry = map.entry(k).or_insert((0, now));
            if now.duration_since(entry.1) >= WINDOW {
                *entry = (0, now);
            }
            entry.0 += 1;
        }
    }

    /// A success clears the account's count (not the address's).
    pub fn succeeded(&self, account: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&format!("account {account}"));
    }
}

/// A cookie's value from a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// A `Set-Cookie` value: HttpOnly, Secure, SameSite=Strict, whole site.
pub fn set_cookie(name: &str, value: &str, max_age: Option<Duration>) -> String {
    let age = max_age.map_or(String::new(), |d| format!("; Max-Age={}", d.as_secs()));
    format!("{name}={value}; Path=/; HttpOnly; Secure; SameSite=Strict{age}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_ends_when_idle_or_ended() {
        let sessions = Sessions::new(Duration::from_millis(50), Duration::from_secs(60));
        let t = sessions.start("carol");
        let s = sessions.get(&t).unwrap();
        assert_eq!(s.account, "carol");
        assert_eq!(s.csrf.len(), 64);
        assert!(sessions.get("not a token").is_none());
        std::thread::sleep(Duration::from_millis(80));
        assert!(sessions.get(&t).is_none(), "idle too long");
        let t = sessions.start("carol");
        sessions.end(&t);
        assert!(sessions.get(&t).is_none());
    }

    #[test]
    fn logins_are_limited_per_account_and_per_address() {
        let limiter = Limiter::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..PER_ACCOUNT {
            assert!(limiter.check(ip, "carol").is_ok());
            limiter.failed(ip, "carol");
        }
        assert!(
            limiter.check(ip, "carol").is_err(),
            "the account is locked for a while"
        );
        assert!(limiter.check(ip, "rita").is_ok(), "another account is not");
        for i in 0..PER_ADDRESS {
            limiter.failed(ip, &format!("guess{i}"));
        }
        assert!(
            limiter.check(ip, "rita").is_err(),
            "the address has failed too often"
        );
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        assert!(limiter.check(other, "rita").is_ok());
        limiter.succeeded("carol");
        assert!(limiter.check(other, "carol").is_ok());
    }

    #[test]
    fn cookies_are_read_and_written_strictly() {
        assert_eq!(
            cookie("a=1; imgate_session=xyz; b=2", SESSION_COOKIE),
            Some("xyz")
        );
        assert_eq!(cookie("ximgate_session=xyz", SESSION_COOKIE), None);
        let c = set_cookie(SESSION_COOKIE, "t", Some(Duration::from_secs(60)));
        assert_eq!(
            c,
            "imgate_session=t; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=60"
        );
    }
}
