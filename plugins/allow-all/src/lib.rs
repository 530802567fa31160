//! `allow-all`: allows every event and imports nothing. The baseline for
//! measuring what the chain itself costs.

use imgate_sdk::{Config, Event, Plugin, Verdict};

pub struct AllowAll;

impl Plugin for AllowAll {
    fn init(_config: Config) -> Result<Self, String> {
        Ok(AllowAll)
    }

    fn handle(&mut self, _event: &Event<'_>) -> Verdict {
        Verdict::allow()
    }
}

imgate_sdk::export_plugin!(AllowAll);

#[cfg(test)]
mod tests {
    use super::*;
    use imgate_sdk::testing::{Harness, file_offer, message};

    #[test]
    fn allows_everything() {
        let mut h = Harness::<AllowAll>::new(serde_json::json!({})).unwrap();
        assert!(h.handle(&message("a@x", "b@y", "anything")).is_allow());
        assert!(h.handle(&file_offer("a@x", "b@y", "f.zip", 9)).is_allow());
    }
}
