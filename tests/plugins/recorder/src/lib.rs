//! A test observer: archives every event with its final verdict through
//! the `archive` capability (which waits for durability), and refuses
//! (returns an error) when a message body contains `refuse-archive`.

use imgate_sdk::{Config, Event, FinalVerdict, Plugin, archive};

pub struct Recorder;

impl Plugin for Recorder {
    fn init(_config: Config) -> Result<Self, String> {
        Ok(Recorder)
    }

    fn observe(&mut self, event: &Event<'_>, verdict: &FinalVerdict) -> Result<(), String> {
        if event.body().is_some_and(|b| b.contains("refuse-archive")) {
            return Err("told to refuse".into());
        }
        let _ = verdict;
        let annotations = vec![("recorder".to_string(), "v1".to_string())];
        archive::append(event, &annotations).map(|_| ())
    }
}

imgate_sdk::export_plugin!(Recorder, observer);
