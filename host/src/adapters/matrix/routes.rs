//! Which requests imgate judges: a request's method and path, read into a
//! [`Route`]. Everything that is not one of these passes through as it is.

use hyper::Method;
use percent_encoding::percent_decode_str;

/// A membership change a client asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Membership {
    Join,
    Leave,
    Invite,
    Kick,
    Ban,
    Unban,
}

/// A request imgate reads and judges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `PUT /rooms/{room}/send/{type}/{txn}`
    Send {
        room: String,
        event_type: String,
        txn: String,
    },
    /// `PUT /rooms/{room}/redact/{event}/{txn}`
    Redact {
        room: String,
        event: String,
        txn: String,
    },
    /// `PUT /rooms/{room}/state/{type}[/{key}]`
    State {
        room: String,
        event_type: String,
        key: String,
    },
    /// `POST /rooms/{room}/{join,leave,invite,kick,ban,unban}`, or
    /// `POST /join/{room or alias}`.
    Membership { room: String, change: Membership },
    /// `POST /_matrix/media/{v3,r0}/upload`, or `PUT` to an id made
    /// beforehand (`/upload/{server}/{media}`).
    Upload,
    /// `POST /logout`, `/logout/all`.
    Logout,
}

/// A response that lists events a client is about to see: judged on
/// the way in, so history is no way around policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    /// `GET /sync`: each room's timeline.
    Sync,
    /// `GET /rooms/{room}/messages`: `chunk`.
    Messages,
    /// `GET /rooms/{room}/context/{event}`: the event and those around it.
    Context,
    /// `GET /rooms/{room}/event/{event}`: the event itself.
    Event,
}

/// The listing `method` and `path` ask for, if it is one imgate judges.
pub fn listing(method: &Method, path: &str) -> Option<Listing> {
    if method != Method::GET {
        return None;
    }
    let s: Vec<&str> = path.strip_prefix("/_matrix/client/")?.split('/').collect();
    match s.as_slice() {
        [v, "sync"] if is_version(v) => Some(Listing::Sync),
        [v, "rooms", _, "messages"] if is_version(v) => Some(Listing::Messages),
        [v, "rooms", _, "context", _] if is_version(v) => Some(Listing::Context),
        [v, "rooms", _, "event", _] if is_version(v) => Some(Listing::Event),
        _ => None,
    }
}

/// The route of `method` and `path` (without its query), if imgate
/// judges it.
pub fn route(method: &Method, path: &str) -> Option<Route> {
    let segments: Vec<String> = path
        .strip_prefix('/')?
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    match s.as_slice() {
        ["_matrix", "media", v, "upload", rest @ ..] if is_version(v) => {
            let upload = (method == Method::POST && rest.is_empty())
                || (method == Method::PUT && rest.len() == 2);
            upload.then_some(Route::Upload)
        }
        ["_matrix", "client", v, rest @ ..] if is_version(v) => client(method, rest),
        _ => None,
    }
}

fn is_version(v: &str) -> bool {
    matches!(v, "v3" | "r0")
}

fn client(method: &Method, rest: &[&str]) -> Option<Route> {
    let owned = |s: &str| s.to_owned();
    match (method, rest) {
        (&Method::PUT, ["rooms", room, "send", event_type, txn]) => Some(Route::Send {
            room: owned(room),
            event_type: owned(event_type),
            txn: owned(txn),
        }),
        (&Method::PUT, ["rooms", room, "redact", event, txn]) => Some(Route::Redact {
            room: owned(room),
            event: owned(event),
            txn: owned(txn),
        }),
        (&Method::PUT, ["rooms", room, "state", event_type, key @ ..]) if key.len() <= 1 => {
            Some(Route::State {
                room: owned(room),
                event_type: owned(event_type),
                key: key.first().map_or_else(String::new, |k| owned(k)),
            })
        }
        (&Method::POST, ["rooms", room, action]) => {
            let change = match *action {
                "join" => Membership::Join,
                "leave" => Membership::Leave,
                "invite" => Membership::Invite,
                "kick" => Membership::Kick,
                "ban" => Membership::Ban,
                "unban" => Membership::Unban,
                _ => return None,
            };
            Some(Route::Membership {
                room: owned(room),
                change,
            })
        }
        (&Method::POST, ["join", room]) => Some(Route::Membership {
            room: owned(room),
            change: Membership::Join,
        }),
        (&Method::POST, ["logout"] | ["logout", "all"]) => Some(Route::Logout),
        _ => None,
    }
}

/// The access token of a request: `Authorization: Bearer`, or the
/// deprecated `access_token` query parameter.
pub fn access_token(authorization: Option<&str>, query: Option<&str>) -> Option<String> {
    if let Some(token) = authorization.and_then(|a| a.strip_prefix("Bearer ")) {
        return Some(token.trim().to_owned());
    }
    query_param(query, "access_token")
}

/// One parameter of a query string, decoded.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judged_requests_are_recognised() {
        assert_eq!(
            route(
                &Method::PUT,
                "/_matrix/client/v3/rooms/!abc%3Alocalhost/send/m.room.message/t1"
            ),
            Some(Route::Send {
                room: "!abc:localhost".into(),
                event_type: "m.room.message".into(),
                txn: "t1".into()
            })
        );
        assert_eq!(
            route(
                &Method::PUT,
                "/_matrix/client/r0/rooms/!a:x/state/m.room.topic"
            ),
            Some(Route::State {
                room: "!a:x".into(),
                event_type: "m.room.topic".into(),
                key: String::new()
            })
        );
        assert_eq!(
            route(&Method::POST, "/_matrix/client/v3/join/%23lobby%3Ax"),
            Some(Route::Membership {
                room: "#lobby:x".into(),
                change: Membership::Join
            })
        );
        assert_eq!(
            route(&Method::POST, "/_matrix/media/v3/upload"),
            Some(Route::Upload)
        );
        assert_eq!(
            route(&Method::POST, "/_matrix/client/v3/logout/all"),
            Some(Route::Logout)
        );
        // What is not judged passes.
        for (m, p) in [
            (Method::GET, "/_matrix/client/v3/sync"),
            (
                Method::GET,
                "/_matrix/client/v3/rooms/!a:x/send/m.room.message/t",
            ),
            (
                Method::POST,
                "/_matrix/client/v3/rooms/!a:x/receipt/m.read/$e",
            ),
            (
                Method::PUT,
                "/_matrix/client/v1/rooms/!a:x/send/m.room.message/t",
            ),
            (Method::GET, "/_matrix/media/v3/download/x/y"),
            (Method::GET, "relative"),
        ] {
            assert_eq!(route(&m, p), None, "{m} {p}");
        }
    }

    #[test]
    fn listings_are_recognised() {
        assert_eq!(
            listing(&Method::GET, "/_matrix/client/v3/sync"),
            Some(Listing::Sync)
        );
        assert_eq!(
            listing(&Method::GET, "/_matrix/client/r0/rooms/!a:x/messages"),
            Some(Listing::Messages)
        );
        assert_eq!(
            listing(&Method::GET, "/_matrix/client/v3/rooms/!a:x/context/$e"),
            Some(Listing::Context)
        );
        assert_eq!(
            listing(&Method::GET, "/_matrix/client/v3/rooms/!a:x/event/$e"),
            Some(Listing::Event)
        );
        assert_eq!(listing(&Method::POST, "/_matrix/client/v3/sync"), None);
        assert_eq!(
            listing(&Method::GET, "/_matrix/client/v3/rooms/!a:x/state"),
            None
        );
    }

    #[test]
    fn the_token_comes_from_the_header_or_the_query() {
        assert_eq!(
            access_token(Some("Bearer abc"), None).as_deref(),
            Some("abc")
        );
        assert_eq!(
            access_token(None, Some("since=1&access_token=x%2By")).as_deref(),
            Some("x+y")
        );
        assert_eq!(access_token(Some("Basic abc"), Some("a=b")), None);
    }
}
