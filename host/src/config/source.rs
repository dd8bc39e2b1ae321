//! Where a configuration comes from: the file, the environment, and command-line flags
//! (`--set KEY=VALUE`), the last taking precedence. Hot reload reads the same sources again,
//! so a flag keeps overriding the file after it changes.

use std::path::PathBuf;

use super::{Config, ConfigError};

/// One `--set KEY=VALUE` flag.
#[derive(Debug, Clone, PartialEq)]
pub struct Flag {
    /// Dotted key, e.g. `tick.interval`.
    pub key: String,
    /// The value, parsed as TOML (a bare word that is not TOML is taken as a string).
    pub value: toml::Value,
}

impl std::str::FromStr for Flag {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let Some((key, raw)) = s.split_once('=') else {
            return Err(format!("`{s}` is not KEY=VALUE; write it like `--set tick.interval=50ms`"));
        };
        let key = key.trim();
        let valid = |part: &str| {
            !part.is_empty() && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        };
        if !key.split('.').all(valid) {
            return Err(format!(
                "`{key}` is not a configuration key; write it dotted and in kebab case, like `server.listen`"
            ));
        }
        let raw = raw.trim();
        let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.to_owned()));
        Ok(Self { key: key.to_owned(), value })
    }
}

/// The file and flags a configuration is loaded from (the environment is read at load time).
#[derive(Debug, Clone, Default)]
pub struct Source {
    /// The TOML file.
    pub file: PathBuf,
    /// Whether the file must exist (it was named explicitly).
    pub required: bool,
    /// Command-line overrides, applied last.
    pub flags: Vec<Flag>,
}

impl Source {
    /// Loads defaults ← file ← environment ← flags.
    pub fn load(&self) -> Result<Config, ConfigError> {
        Config::load_with(&self.file, self.required, &self.flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_toml_or_else_strings() {
        let f: Flag = "guardrails.max-replica-change=3".parse().unwrap();
        assert_eq!((f.key.as_str(), f.value), ("guardrails.max-replica-change", toml::Value::Integer(3)));
        let f: Flag = "server.listen=127.0.0.1:0".parse().unwrap();
        assert_eq!(f.value, toml::Value::String("127.0.0.1:0".into()));
        let f: Flag = "tick.interval = \"50ms\"".parse().unwrap();
        assert_eq!(f.value, toml::Value::String("50ms".into()));
        let f: Flag = "guardrails.scale-in-on-forecast=true".parse().unwrap();
        assert_eq!(f.value, toml::Value::Boolean(true));
    }

    #[test]
    fn malformed_flags_say_how_to_write_them() {
        let err = "tick.interval".parse::<Flag>().unwrap_err();
        assert!(err.contains("KEY=VALUE"), "{err}");
        let err = "Tick_Interval=5".parse::<Flag>().unwrap_err();
        assert!(err.contains("kebab case"), "{err}");
    }
}
