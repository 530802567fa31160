//! A plugin's settings: the operator's `[plugins.config]` table, as JSON.

use serde::de::DeserializeOwned;

/// The settings handed to [`crate::Plugin::init`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    map: serde_json::Map<String, serde_json::Value>,
}

impl Config {
    /// Parses the JSON object the host passes to `init`.
    ///
    /// # Errors
    /// The text is not a JSON object.
    pub fn from_json(text: &str) -> Result<Self, String> {
        match serde_json::from_str(text) {
            Ok(serde_json::Value::Object(map)) => Ok(Config { map }),
            Ok(_) => Err("plugin config must be a table".into()),
            Err(e) => Err(format!("plugin config is not valid JSON: {e}")),
        }
    }

    /// Builds a config from a JSON value, for tests.
    pub fn from_value(value: serde_json::Value) -> Result<Self, String> {
        Config::from_json(&value.to_string())
    }

    /// The whole table as a typed struct: the easiest way to read settings.
    /// Use `#[serde(deny_unknown_fields)]` to catch operators' typos.
    ///
    /// # Errors
    /// The table does not match `T`; the message names the field.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_value(serde_json::Value::Object(self.map.clone()))
            .map_err(|e| format!("invalid plugin config: {e}"))
    }

    /// One setting, typed; `Ok(None)` when absent.
    ///
    /// # Errors
    /// The setting has the wrong type.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, String> {
        match self.map.get(key) {
            None => Ok(None),
            Some(v) => serde_json::from_value(v.clone())
                .map(Some)
                .map_err(|e| format!("invalid plugin config `{key}`: {e}")),
        }
    }

    /// One setting with a default when absent.
    ///
    /// # Errors
    /// The setting has the wrong type.
    pub fn get_or<T: DeserializeOwned>(&self, key: &str, default: T) -> Result<T, String> {
        Ok(self.get(key)?.unwrap_or(default))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_access_and_errors_name_the_key() {
        let c = Config::from_json(r#"{"words":["a"],"n":3}"#).unwrap();
        assert_eq!(
            c.get::<Vec<String>>("words").unwrap(),
            Some(vec!["a".to_string()])
        );
        assert_eq!(c.get_or("missing", 7u32).unwrap(), 7);
        let err = c.get::<String>("n").unwrap_err();
        assert!(err.contains("`n`"), "{err}");
        assert!(Config::from_json("[1]").is_err());
    }
}
