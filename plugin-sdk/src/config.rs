//! A plugin's configuration: the operator's TOML table, checked against the keys the plugin
//! declared in its [`Descriptor`](crate::Descriptor).

use crate::{ConfigKey, PluginError};
use toml::{Table, Value};

/// A parsed configuration. Every key in it was declared by the plugin; absent keys fall back to
/// their declared defaults, so `describe()` is the one place defaults live.
#[derive(Debug, Clone)]
pub struct Config {
    table: Table,
    keys: Vec<ConfigKey>,
}

impl Config {
    /// Parses TOML text (empty for no configuration) and refuses keys the plugin did not declare.
    pub fn parse(text: &str, keys: &[ConfigKey]) -> Result<Self, PluginError> {
        let table: Table = text.parse().map_err(|e: toml::de::Error| {
            PluginError::InvalidConfig(format!("not valid TOML: {}", e.message()))
        })?;
        for name in table.keys() {
            if !keys.iter().any(|k| &k.name == name) {
                let known: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
                return Err(PluginError::InvalidConfig(format!(
                    "unknown key `{name}`; accepted keys: {}",
                    if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                )));
            }
        }
        for key in keys.iter().filter(|k| k.default_value.is_none()) {
            if !table.contains_key(&key.name) {
                return Err(PluginError::InvalidConfig(format!(
                    "missing required key `{}` ({})",
                    key.name, key.description
                )));
            }
        }
        Ok(Self { table, keys: keys.to_vec() })
    }

    /// The value of `key`, or its declared default, converted to `T`.
    pub fn get<T: FromValue>(&self, key: &str) -> Result<T, PluginError> {
        let declared = self.keys.iter().find(|k| k.name == key).ok_or_else(|| {
            PluginError::InvalidConfig(format!(
                "key `{key}` is read by the plugin but not declared in describe()"
            ))
        })?;
        let value = match (self.table.get(key), &declared.default_value) {
            (Some(value), _) => value.clone(),
            (None, Some(default)) => parse_value(default).map_err(|e| {
                PluginError::InvalidConfig(format!("default of `{key}` is not a TOML value: {e}"))
            })?,
            (None, None) => {
                return Err(PluginError::InvalidConfig(format!("missing required key `{key}`")));
            }
        };
        T::from_value(&value).ok_or_else(|| {
            PluginError::InvalidConfig(format!("`{key}` must be {}, found `{value}`", T::EXPECTED))
        })
    }
}

fn parse_value(text: &str) -> Result<Value, String> {
    let mut table: Table =
        format!("v = {text}").parse().map_err(|e: toml::de::Error| e.message().to_owned())?;
    table.remove("v").ok_or_else(|| "empty value".to_owned())
}

/// A type a configuration value converts into.
pub trait FromValue: Sized {
    /// How the expected type reads in an error message.
    const EXPECTED: &'static str;
    /// Converts, or `None` when the value has another type.
    fn from_value(value: &Value) -> Option<Self>;
}

impl FromValue for f64 {
    const EXPECTED: &'static str = "a number";
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Float(f) => Some(*f),
            Value::Integer(i) => Some(*i as f64),
            _ => None,
        }
    }
}

impl FromValue for u32 {
    const EXPECTED: &'static str = "a whole number from 0 to 4294967295";
    fn from_value(value: &Value) -> Option<Self> {
        value.as_integer().and_then(|i| u32::try_from(i).ok())
    }
}

impl FromValue for bool {
    const EXPECTED: &'static str = "true or false";
    fn from_value(value: &Value) -> Option<Self> {
        value.as_bool()
    }
}

impl FromValue for String {
    const EXPECTED: &'static str = "a string";
    fn from_value(value: &Value) -> Option<Self> {
        value.as_str().map(str::to_owned)
    }
}

impl<T: FromValue> FromValue for Vec<T> {
    const EXPECTED: &'static str = "an array";
    fn from_value(value: &Value) -> Option<Self> {
        value.as_array()?.iter().map(T::from_value).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<ConfigKey> {
        vec![
            ConfigKey::new("alpha", "weight", Some("0.5")),
            ConfigKey::new("seasons", "steps", Some("[1440, 10080]")),
            ConfigKey::new("name", "required label", None),
        ]
    }

    #[test]
    fn absent_keys_take_declared_defaults() {
        let config = Config::parse("name = \"x\"", &keys()).unwrap();
        assert_eq!(config.get::<f64>("alpha").unwrap(), 0.5);
        assert_eq!(config.get::<Vec<u32>>("seasons").unwrap(), vec![1440, 10080]);
        assert_eq!(config.get::<String>("name").unwrap(), "x");
    }

    #[test]
    fn integers_are_accepted_where_numbers_are_expected() {
        let config = Config::parse("name = \"x\"\nalpha = 2", &keys()).unwrap();
        assert_eq!(config.get::<f64>("alpha").unwrap(), 2.0);
    }

    #[test]
    fn unknown_missing_and_mistyped_keys_are_refused_by_name() {
        let unknown = Config::parse("name = \"x\"\nbeta = 1", &keys()).unwrap_err();
        assert!(unknown.to_string().contains("unknown key `beta`; accepted keys: alpha, seasons, name"));
        let missing = Config::parse("", &keys()).unwrap_err();
        assert!(missing.to_string().contains("missing required key `name`"));
        let mistyped = Config::parse("name = \"x\"\nalpha = \"high\"", &keys()).unwrap();
        let err = mistyped.get::<f64>("alpha").unwrap_err();
        assert!(err.to_string().contains("`alpha` must be a number"), "{err}");
        let garbage = Config::parse("alpha = = 1", &keys()).unwrap_err();
        assert!(garbage.to_string().contains("not valid TOML"));
    }

    #[test]
    fn reading_an_undeclared_key_is_a_plugin_bug() {
        let config = Config::parse("name = \"x\"", &keys()).unwrap();
        assert!(config.get::<f64>("gamma").unwrap_err().to_string().contains("not declared"));
    }
}
