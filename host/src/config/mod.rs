//! Operator configuration: built-in defaults ← `config/foresight.toml` ← `FORESIGHT_*`
//! environment variables (double underscore for nesting, e.g. `FORESIGHT_PLUGINS__DIR`).
//! Unknown keys are errors; relative paths are resolved against the config file's folder.

mod plugins;

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub use plugins::{PluginsConfig, RoleConfig};

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Config {
    /// Policy plugins: where they live and which one serves each role.
    pub plugins: PluginsConfig,
}

/// A configuration that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or environment holds something invalid.
    #[error("{origin}: {message}")]
    Invalid {
        /// File (and key) or environment variable at fault.
        origin: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

impl Config {
    /// Loads defaults, then `file` (if it exists or was named explicitly), then the environment.
    pub fn load(file: &Path, required: bool) -> Result<Self, ConfigError> {
        if required && !file.is_file() {
            return Err(ConfigError::Invalid {
                origin: file.display().to_string(),
                message: "no such file; pass an existing TOML file or omit the option to use defaults".into(),
            });
        }
        let figment = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(file))
            .merge(Env::prefixed("FORESIGHT_").split("__"));
        let config: Config = figment.extract().map_err(|e| describe(&e))?;
        config.plugins.validate().map_err(|(key, message)| ConfigError::Invalid {
            origin: format!("{} [plugins{key}]", file.display()),
            message,
        })?;
        Ok(config)
    }
}

fn describe(e: &figment::Error) -> ConfigError {
    let origin = match (&e.metadata, e.path.is_empty()) {
        (Some(meta), false) => format!(
            "{}, key `{}`",
            meta.source.as_ref().map_or(meta.name.to_string(), |s| s.to_string()),
            e.path.join(".")
        ),
        (Some(meta), true) => meta.source.as_ref().map_or(meta.name.to_string(), |s| s.to_string()),
        (None, _) => "configuration".into(),
    };
    let hint = match &e.kind {
        figment::error::Kind::UnknownField(field, expected) => {
            format!("unknown key `{field}`; expected one of: {}", expected.join(", "))
        }
        kind => kind.to_string(),
    };
    ConfigError::Invalid { origin, message: hint }
}
