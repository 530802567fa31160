//! `{{name}}`: an imgate plugin. `imgate plugin new` wrote this sample;
//! make it yours. See the guide: {{sdk}}/README.md
@@if policy
//!
//! As written it blocks messages that hold one of the configured `words`.
@@end
@@if observer
//!
//! It watches every event's final outcome.
@@end

@@if match
use imgate_sdk::matching::{Matcher, Rule, Scope};
@@end
use imgate_sdk::{Config, Plugin};
@@if policy
use imgate_sdk::{Event, Verdict};
@@end
@@if observer
@@if !policy
use imgate_sdk::Event;
@@end
use imgate_sdk::Outcome;
@@end
@@if log
use imgate_sdk::log;
@@end
@@if clock
use imgate_sdk::clock;
@@end
@@if config
use imgate_sdk::settings;
@@end
@@if kv
use imgate_sdk::kv;
@@end
@@if archive
use imgate_sdk::archive;
@@end
@@if metrics
use imgate_sdk::metrics;
@@end
@@if bridge
use imgate_sdk::bridge::Outgoing;
@@end
use serde::Deserialize;

/// The plugin's table from the operator's config (`[plugins.config]`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
@@if policy
    /// Words that stop a message.
    words: Vec<String>,
    /// Told to the sender; `{word}` is the word found.
    #[serde(default = "default_reason")]
    reason: String,
@@if bridge
    /// Where to report a stopped message: `[network, room]`.
    #[serde(default)]
    report_to: Option<(String, String)>,
@@end
@@end
}
@@if policy

fn default_reason() -> String {
    "message blocked: it contains \"{word}\"".into()
}
@@end

pub struct {{Type}} {
@@if policy
    words: Vec<String>,
    reason: String,
@@if match
    /// The words, matched by the host: whole words, Unicode case folding.
    matcher: Matcher,
@@end
@@if bridge
    report_to: Option<(String, String)>,
@@end
@@end
}
@@if policy

impl {{Type}} {
    /// The configured word `event` holds, if any.
    fn word_in(&self, event: &Event<'_>) -> Option<String> {
@@if match
        let found = self.matcher.first_in(event, Scope::Body)?;
        Some(self.words[found.hit.item].clone())
@@end
@@if !match
        let body = event.body()?.to_lowercase();
        self.words
            .iter()
            .find(|w| body.contains(&w.to_lowercase()))
            .cloned()
@@end
    }
}
@@end

impl Plugin for {{Type}} {
    fn init(config: Config) -> Result<Self, String> {
@@if policy
        let s: Settings = config.parse()?;
        if s.words.is_empty() {
            return Err("`words` must list at least one word".into());
        }
@@if match
        let matcher = Matcher::compile(&[Rule::words(s.words.iter().map(String::as_str))])?;
        // A message without a word is allowed: the host need not call us.
        matcher.call_only_on_hit(Scope::Body)?;
@@end
@@if log
        log::info(&format!("ready with {} words", s.words.len()));
@@end
        Ok({{Type}} {
            words: s.words,
            reason: s.reason,
@@if match
            matcher,
@@end
@@if bridge
            report_to: s.report_to,
@@end
        })
@@end
@@if !policy
        let Settings {} = config.parse()?;
@@if log
        log::info("ready");
@@end
        Ok({{Type}} {})
@@end
    }
@@if policy

    fn handle(&mut self, event: &Event<'_>) -> Verdict {
        let Some(word) = self.word_in(event) else {
            return Verdict::allow();
        };
@@if config
        // Read at call time: the operator's current setting.
        let reason = settings::get_string("reason").unwrap_or_else(|| self.reason.clone());
@@end
@@if !config
        let reason = &self.reason;
@@end
        let verdict = Verdict::block(reason.replace("{word}", &word)).with_tag("{{ns}}:blocked");
@@if kv
        // Shared by every instance (and gateway): how often each sender was stopped.
        let verdict = match kv::increment(&format!("blocked:{}", event.sender()), 1) {
            Ok(times) => verdict.with_attribute("{{ns}}.times", times.to_string()),
            Err(_) => verdict,
        };
@@end
@@if clock
        let verdict = verdict.with_attribute("{{ns}}.at-ms", clock::now_ms().to_string());
@@end
@@if metrics
        metrics::counter_add("blocked", 1);
@@end
@@if log
        log::info(&format!("blocked a message from {}", event.sender()));
@@end
@@if archive
        let _ = archive::append(event, &[("{{ns}}.word".to_owned(), word.clone())]);
@@end
@@if bridge
        if let Some((network, room)) = &self.report_to {
            let report = format!("{} was stopped from sending \"{word}\"", event.sender());
            let _ = Outgoing::new(network, room).body(&report).send();
        }
@@end
        verdict
    }
@@end
@@if observer

    fn observe(&mut self, event: &Event<'_>, outcome: &Outcome<'_>) -> Result<(), String> {
        let action = outcome.action();
@@if log
        log::debug(&format!("{} {}: {action}", event.kind_name(), event.id()));
@@end
@@if metrics
        metrics::counter_add(&format!("outcome_{action}"), 1);
@@end
@@if kv
        kv::increment(&format!("outcomes:{action}"), 1).map_err(|e| format!("{e:?}"))?;
@@end
@@if archive
        archive::append(event, &[])?;
@@end
        let _ = (event, action);
        Ok(())
    }
@@end
}

imgate_sdk::export_plugin!({{export}});

#[cfg(test)]
mod tests {
    use super::*;
@@if policy
    use imgate_sdk::testing::{Harness, message};
@@end
@@if !policy
    use imgate_sdk::testing::Harness;
@@end
    use serde_json::json;
@@if policy

    #[test]
    fn blocks_a_listed_word_and_allows_the_rest() {
        let mut h: Harness<{{Type}}> = Harness::new(json!({"words": ["confidential"]})).unwrap();
        let v = h.handle(&message("alice@corp.example", "bob@example.net", "this is Confidential"));
        assert!(v.is_block(), "{v:?}");
        assert!(v.tags.contains(&"{{ns}}:blocked".to_string()));
        assert!(h.handle(&message("alice@corp.example", "bob@example.net", "lunch?")).is_allow());
    }

    #[test]
    fn refuses_a_config_without_words() {
        assert!(Harness::<{{Type}}>::new(json!({"words": []})).is_err());
    }
@@end
@@if !policy

    #[test]
    fn refuses_a_setting_it_does_not_know() {
        assert!(Harness::<{{Type}}>::new(json!({})).is_ok());
        assert!(Harness::<{{Type}}>::new(json!({"colour": "red"})).is_err());
    }
@@end
}
