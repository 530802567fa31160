//! A test observer: archives every event with its final verdict through
//! the `archive` capability (which waits for durability), and refuses
//! (returns an error) when a message body contains `refuse-archive`, or
//! the config's `refuse_if_body_contains`.

use imgate_sdk::{Config, Event, Outcome, Plugin, archive};

pub struct Recorder {
    refuse: String,
}

impl Plugin for Recorder {
    fn init(config: Config) -> Result<Self, String> {
        let refuse = config
            .get::<String>("refuse_if_body_contains")?
            .unwrap_or_else(|| "refuse-archive".into());
        Ok(Recorder { refuse })
    }

    fn observe(&mut self, event: &Event<'_>, verdict: &Outcome<'_>) -> Result<(), String> {
        if event.body().is_some_and(|b| b.contains(&self.refuse)) {
            return Err("told to refuse".into());
        }
        let _ = verdict;
        let annotations = vec![("recorder".to_string(), "v1".to_string())];
        archive::append(event, &annotations).map(|_| ())
    }
}

imgate_sdk::export_plugin!(Recorder, observer);
