//! `config`: a plugin's own settings, from its `[plugins.config]` table in
//! the operator's file. Shared: the parsed settings, one copy per plugin.

use std::sync::Arc;

use super::{Capability, NotGranted};
use crate::contract::config::Host;

/// A plugin's settings as a JSON object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Settings {
    map: serde_json::Map<String, serde_json::Value>,
    /// The whole map as JSON text: what `init` receives.
    text: String,
}

impl Settings {
    pub fn new(map: serde_json::Map<String, serde_json::Value>) -> Self {
        let text = serde_json::Value::Object(map.clone()).to_string();
        Settings { map, text }
    }

    pub fn as_json(&self) -> &str {
        &self.text
    }

    pub fn get(&self, key: &str) -> Option<&serde_json::Value> {
        self.map.get(key)
    }
}

pub struct ConfigInstance {
    plugin: Arc<str>,
    settings: Option<Arc<Settings>>,
}

impl ConfigInstance {
    pub fn new(plugin: Arc<str>, settings: Option<Arc<Settings>>) -> Self {
        ConfigInstance { plugin, settings }
    }

    fn settings(&self) -> wasmtime::Result<&Settings> {
        NotGranted::require(self.settings.as_deref(), &self.plugin, Capability::Config)
    }
}

impl Host for ConfigInstance {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.settings()?.get(&key).map(|v| v.to_string()))
    }

    fn get_string(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self
            .settings()?
            .get(&key)
            .and_then(|v| v.as_str())
            .map(str::to_owned))
    }

    fn all(&mut self) -> wasmtime::Result<String> {
        Ok(self.settings()?.as_json().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance() -> ConfigInstance {
        let serde_json::Value::Object(map) =
            serde_json::json!({"words": ["a", "b"], "mode": "whole-word"})
        else {
            unreachable!()
        };
        ConfigInstance::new("p".into(), Some(Arc::new(Settings::new(map))))
    }

    #[test]
    fn values_come_back_as_json_and_strings_unquoted() {
        let mut c = instance();
        assert_eq!(
            c.get("words".into()).unwrap().as_deref(),
            Some(r#"["a","b"]"#)
        );
        assert_eq!(
            c.get("mode".into()).unwrap().as_deref(),
            Some(r#""whole-word""#)
        );
        assert_eq!(
            c.get_string("mode".into()).unwrap().as_deref(),
            Some("whole-word")
        );
        assert_eq!(c.get_string("words".into()).unwrap(), None);
        assert_eq!(c.get("missing".into()).unwrap(), None);
        assert!(c.all().unwrap().contains("whole-word"));
    }

    #[test]
    fn ungranted_config_is_refused() {
        let mut c = ConfigInstance::new("p".into(), None);
        assert!(c.get("x".into()).is_err());
    }
}
