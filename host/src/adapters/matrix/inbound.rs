//! The events a listing shows a client (`/sync`, `/messages`, `/context`,
//! `/event`), each with the room it is in: where inbound events are judged.

use serde_json::{Map, Value};

use super::routes::Listing;

/// Calls `f` with every event of `body` (a listing's answer) and its room.
pub fn each_event(
    listing: Listing,
    body: &mut Value,
    f: &mut dyn FnMut(&mut Map<String, Value>, &str),
) {
    let mut visit = |event: &mut Value, room: Option<&str>| {
        let Some(event) = event.as_object_mut() else {
            return;
        };
        let room = room
            .map(str::to_owned)
            .or_else(|| {
                event
                    .get("room_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        f(event, &room);
    };
    match listing {
        Listing::Sync => {
            let Some(rooms) = body.get_mut("rooms").and_then(Value::as_object_mut) else {
                return;
            };
            for section in ["join", "leave"] {
                let Some(section) = rooms.get_mut(section).and_then(Value::as_object_mut) else {
                    continue;
                };
                for (room, joined) in section.iter_mut() {
                    let timeline = joined.get_mut("timeline").and_then(|t| t.get_mut("events"));
                    for event in list(timeline) {
                        visit(event, Some(room));
                    }
                }
            }
        }
        Listing::Messages => {
            for event in list(body.get_mut("chunk")) {
                visit(event, None);
            }
        }
        Listing::Context => {
            if let Some(event) = body.get_mut("event") {
                visit(event, None);
            }
            for key in ["events_before", "events_after"] {
                for event in list(body.get_mut(key)) {
                    visit(event, None);
                }
            }
        }
        Listing::Event => visit(body, None),
    }
}

/// The events of a list, if `v` is one.
fn list(v: Option<&mut Value>) -> Vec<&mut Value> {
    v.and_then(Value::as_array_mut)
        .map(|a| a.iter_mut().collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ids(listing: Listing, mut body: Value) -> Vec<(String, String)> {
        let mut out = Vec::new();
        each_event(listing, &mut body, &mut |e, room| {
            out.push((
                e["event_id"].as_str().unwrap_or_default().to_owned(),
                room.to_owned(),
            ));
        });
        out
    }

    #[test]
    fn every_listing_shows_its_events_with_their_rooms() {
        let sync = json!({"rooms": {
            "join": {"!a:x": {"timeline": {"events": [{"event_id": "$1"}, {"event_id": "$2"}]}}},
            "leave": {"!b:x": {"timeline": {"events": [{"event_id": "$3"}]}}},
            "invite": {"!c:x": {"invite_state": {"events": [{"event_id": "$4"}]}}}
        }});
        assert_eq!(
            ids(Listing::Sync, sync),
            [("$1", "!a:x"), ("$2", "!a:x"), ("$3", "!b:x")].map(|(a, b)| (a.into(), b.into()))
        );
        let context = json!({"event": {"event_id": "$e", "room_id": "!a:x"},
            "events_before": [{"event_id": "$b", "room_id": "!a:x"}], "events_after": []});
        assert_eq!(ids(Listing::Context, context).len(), 2);
        assert_eq!(
            ids(
                Listing::Messages,
                json!({"chunk": [{"event_id": "$m", "room_id": "!r:x"}]})
            ),
            [("$m".into(), "!r:x".into())]
        );
        assert_eq!(
            ids(Listing::Event, json!({"event_id": "$x", "room_id": "!r:x"})).len(),
            1
        );
        assert!(ids(Listing::Sync, json!({"next_batch": "s1"})).is_empty());
    }
}
