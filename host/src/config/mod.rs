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
            // FORESIGHT_PLUGINS__CACHE_DIR → plugins.cache-dir: `__` nests, `_` is a dash.
            .merge(
                Env::prefixed("FORESIGHT_")
                    .ignore(&["CONFIG"])
                    .map(|k| k.as_str().replace("__", ".").replace('_', "-").into()),
            );
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

#[cfg(test)]
// `Jail`'s closures return figment's large error type by design.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn defaults_apply_without_a_file() {
        Jail::expect_with(|jail| {
            let config = Config::load(&jail.directory().join("absent.toml"), false).expect("defaults");
            assert_eq!(config.plugins.scorer.file, Path::new("latency-aware.wasm"));
            assert_eq!(config.plugins.dir(), Path::new(".foresight/plugins"));
            Ok(())
        });
    }

    #[test]
    fn file_paths_are_relative_to_the_file_and_env_overrides_it() {
        Jail::expect_with(|jail| {
            jail.create_dir("conf")?;
            jail.create_file(
                "conf/foresight.toml",
                "[plugins]\ndir = \"../built\"\n[plugins.scorer]\nfile = \"mine.wasm\"\nconfig = { weight-price = 2.5 }\n",
            )?;
            jail.set_env("FORESIGHT_PLUGINS__CACHE_DIR", "/var/cache/foresight");
            let file = jail.directory().join("conf/foresight.toml");
            let config = Config::load(&file, true).expect("loads");
            assert_eq!(config.plugins.dir(), jail.directory().join("conf/../built"));
            assert_eq!(config.plugins.cache_dir(), Path::new("/var/cache/foresight"));
            assert_eq!(
                config.plugins.file(&config.plugins.scorer),
                jail.directory().join("conf/../built/mine.wasm")
            );
            assert_eq!(config.plugins.scorer.config_text().trim(), "weight-price = 2.5");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_bad_limits_are_refused_with_file_and_key() {
        Jail::expect_with(|jail| {
            jail.create_file("a.toml", "[plugins.scorer]\nfile = \"x.wasm\"\nweight = 3\n")?;
            let err = Config::load(&jail.directory().join("a.toml"), true).unwrap_err().to_string();
            assert!(err.contains("a.toml") && err.contains("unknown key `weight`"), "{err}");
            jail.create_file(
                "b.toml",
                "[plugins.scorer]\nfile = \"x.wasm\"\nlimits = { deadline-ms = 0 }\n",
            )?;
            let err = Config::load(&jail.directory().join("b.toml"), true).unwrap_err().to_string();
            assert!(err.contains("[plugins.scorer.limits]") && err.contains("deadline-ms"), "{err}");
            let err = Config::load(&jail.directory().join("missing.toml"), true).unwrap_err().to_string();
            assert!(err.contains("missing.toml") && err.contains("no such file"), "{err}");
            Ok(())
        });
    }
}
