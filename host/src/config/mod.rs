//! Operator configuration: built-in defaults ← `config/foresight.toml` ← `FORESIGHT_*`
//! environment variables (double underscore for nesting, e.g. `FORESIGHT_PLUGINS__DIR`) ←
//! command-line `--set KEY=VALUE` flags.
//! Unknown keys are errors; relative paths are resolved against the config file's folder.

mod events;
mod experiments;
mod guardrails;
pub mod kubernetes;
mod locate;
mod plugins;
pub mod reference;
mod runtime;
mod source;

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use events::CalendarEvent;
pub use experiments::{Experiment, ExperimentMode};
pub use guardrails::{Bounds, Guardrails};
pub use kubernetes::KubernetesConfig;
pub use plugins::{PluginsConfig, RoleConfig};
pub use runtime::{
    BackendConfig, BackendKind, DecisionsConfig, FsyncPolicy, LogConfig, LogFormat, ServerConfig, TickConfig,
};
pub use source::{Flag, Source};

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Config {
    /// Where observations come from and actions go.
    pub backend: BackendConfig,
    /// The loop's rhythm and stage budgets.
    pub tick: TickConfig,
    /// Policy plugins: where they live and which one serves each role.
    pub plugins: PluginsConfig,
    /// Limits every plan passes through.
    pub guardrails: Guardrails,
    /// Candidate plugins run beside the live ones.
    pub experiments: Vec<Experiment>,
    /// Known demand events, passed to forecasters.
    pub events: Vec<CalendarEvent>,
    /// The HTTP server.
    pub server: ServerConfig,
    /// Logging.
    pub log: LogConfig,
    /// The decision journal and log.
    pub decisions: DecisionsConfig,
}

/// A configuration that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or environment holds something invalid.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
}

/// One thing wrong with a configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// File (with `:line` when known) or environment variable.
    pub origin: String,
    /// Dotted key.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.origin, self.message)
        } else {
            write!(f, "{}: `{}` {}", self.origin, self.key, self.message)
        }
    }
}

impl Config {
    /// Loads defaults, then `file` (if it exists or was named explicitly), then the environment.
    pub fn load(file: &Path, required: bool) -> Result<Self, ConfigError> {
        Self::load_with(file, required, &[])
    }

    /// Loads defaults, then `file`, then the environment, then `flags`.
    pub fn load_with(file: &Path, required: bool, flags: &[Flag]) -> Result<Self, ConfigError> {
        let problem = |key: &str, message: String| {
            // Later sources override earlier ones: name the one that set the value.
            let var = format!("FORESIGHT_{}", key.to_uppercase().replace('.', "__").replace('-', "_"));
            let text = std::fs::read_to_string(file).unwrap_or_default();
            let origin = match (flag_for(flags, key), std::env::var_os(&var), locate::line(&text, key)) {
                (Some(flag), _, _) => format!("command-line flag --set {}", flag.key),
                (None, Some(_), _) => format!("environment variable {var}"),
                (None, None, Some(line)) => format!("{}:{line}", file.display()),
                (None, None, None) => file.display().to_string(),
            };
            Problem { origin, key: key.to_owned(), message }
        };
        if required && !file.is_file() {
            return Err(ConfigError::Invalid(vec![Problem {
                origin: file.display().to_string(),
                key: String::new(),
                message: "no such file; pass an existing TOML file or omit the option to use defaults".into(),
            }]));
        }
        let figment = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(file))
            // FORESIGHT_SERVER__LISTEN → server.listen: `__` nests, `_` is a dash.
            .merge(
                Env::prefixed("FORESIGHT_")
                    .ignore(&["CONFIG"])
                    .map(|k| k.as_str().replace("__", ".").replace('_', "-").into()),
            );
        let figment =
            flags.iter().fold(figment, |f, flag| f.merge(Serialized::default(&flag.key, &flag.value)));
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Invalid(e.into_iter().map(|e| describe(&e, file, flags)).collect()))?;
        let mut problems = Vec::new();
        let mut check = |r: Result<(), (String, String)>| {
            if let Err((key, message)) = r {
                problems.push(problem(&key, message));
            }
        };
        check(config.plugins.validate());
        check(config.backend.kubernetes.validate(config.backend.kind == BackendKind::Kubernetes));
        check(config.guardrails.validate());
        check(config.tick.interval().map(|_| ()).map_err(|m| ("tick.interval".into(), m)));
        check(config.tick.forecast_refresh_s().map(|_| ()).map_err(|m| ("tick.forecast-refresh".into(), m)));
        for (i, e) in config.experiments.iter().enumerate() {
            check(e.validate(i));
        }
        for (i, e) in config.events.iter().enumerate() {
            check(e.validate(i));
        }
        check(config.server.listen.parse::<std::net::SocketAddr>().map(|_| ()).map_err(|_| {
            (
                "server.listen".into(),
                format!("is `{}`; write an address like \"127.0.0.1:9464\"", config.server.listen),
            )
        }));
        if problems.is_empty() { Ok(config) } else { Err(ConfigError::Invalid(problems)) }
    }
}

/// The flag that set `key` (or a table containing it), if any; the last one wins.
fn flag_for<'a>(flags: &'a [Flag], key: &str) -> Option<&'a Flag> {
    flags.iter().rev().find(|f| {
        key == f.key || key.starts_with(&format!("{}.", f.key)) || f.key.starts_with(&format!("{key}."))
    })
}

fn describe(e: &figment::Error, file: &Path, flags: &[Flag]) -> Problem {
    let from_file =
        e.metadata.as_ref().is_some_and(|m| m.source.as_ref().is_some_and(|s| s.file_path() == Some(file)));
    let mut key = locate::dotted(&e.path);
    let message = match &e.kind {
        figment::error::Kind::UnknownField(field, expected) => {
            if !key.ends_with(field.as_str()) {
                key = if key.is_empty() { field.clone() } else { format!("{key}.{field}") };
            }
            format!("is not a known key; expected one of: {}", expected.join(", "))
        }
        kind => format!("{kind}"),
    };
    let origin = match &e.metadata {
        _ if !from_file && flag_for(flags, &key).is_some() => {
            format!("command-line flag --set {}", flag_for(flags, &key).map_or("", |f| &f.key))
        }
        Some(meta) if from_file => {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            match locate::line(&text, &key) {
                Some(line) => format!("{}:{line}", file.display()),
                None => file.display().to_string(),
            }
        }
        Some(meta) => meta.source.as_ref().map_or(meta.name.to_string(), |s| s.to_string()),
        None => "configuration".into(),
    };
    Problem { origin, key, message }
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
    fn flags_override_the_environment_and_are_named_when_wrong() {
        Jail::expect_with(|jail| {
            jail.create_file("f.toml", "[tick]\ninterval = \"1s\"\n[server]\nlisten = \"127.0.0.1:1\"\n")?;
            jail.set_env("FORESIGHT_TICK__INTERVAL", "2s");
            let file = jail.directory().join("f.toml");
            let flags: Vec<Flag> = ["tick.interval=50ms", "guardrails.max-replica-change=7"]
                .iter()
                .map(|f| f.parse().unwrap())
                .collect();
            let config = Config::load_with(&file, true, &flags).expect("loads");
            assert_eq!(config.tick.interval, "50ms");
            assert_eq!(config.guardrails.max_replica_change, 7);
            assert_eq!(config.server.listen, "127.0.0.1:1", "the file still applies where no flag is set");

            let bad: Vec<Flag> = vec!["server.listen=nowhere".parse().unwrap()];
            let err = Config::load_with(&file, true, &bad).unwrap_err().to_string();
            assert!(err.contains("command-line flag --set server.listen"), "{err}");
            let unknown: Vec<Flag> = vec!["tick.intervall=5s".parse().unwrap()];
            let err = Config::load_with(&file, true, &unknown).unwrap_err().to_string();
            assert!(err.contains("--set tick.intervall") && err.contains("not a known key"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn the_shipped_default_config_is_valid_and_points_at_real_files() {
        // In a jail: other tests set FORESIGHT_* variables, and the jail's lock keeps them out.
        Jail::expect_with(|_| {
            let file = crate::manifest_dir().join("../config/foresight.toml");
            let config = Config::load(&file, true).expect("valid");
            assert!(
                config.backend.scenario.relative().is_file(),
                "{}",
                config.backend.scenario.relative().display()
            );
            assert_eq!(config.backend.kind, BackendKind::Sim);
            Ok(())
        });
    }

    #[test]
    fn a_challenger_window_is_checked_and_allowed_only_for_shadow_forecasters() {
        Jail::expect_with(|jail| {
            let experiment = |extra: &str| {
                format!("[[experiments]]\nname = \"x\"\nrole = \"forecaster\"\nfile = \"a.wasm\"\n{extra}\n")
            };
            let file = jail.directory().join("e.toml");
            let check = |extra: &str| {
                std::fs::write(&file, experiment(extra)).expect("write");
                Config::load(&file, true).map(|_| ()).map_err(|e| e.to_string())
            };
            assert!(check("mode = \"shadow\"\npromote-after = \"6h\"").is_ok());
            let err = check("mode = \"shadow\"\npromote-after = \"soon\"").unwrap_err();
            assert!(err.contains("experiments[0].promote-after") && err.contains("6h"), "{err}");
            let err = check("mode = \"canary\"\nshare = 0.5\npromote-after = \"6h\"").unwrap_err();
            assert!(err.contains("shadow forecaster experiments only"), "{err}");
            let err = check("mode = \"shadow\"\npromote-after = \"6h\"\npromote-margin = 1.5").unwrap_err();
            assert!(err.contains("experiments[0].promote-margin"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "c.toml",
                "[guardrails]\nmin-replicas = 5\nmax-replicas = 2\n\n[[experiments]]\nname = \"x\"\nrole = \"planner\"\nfile = \"a.wasm\"\nmode = \"shadow\"\n",
            )?;
            let Err(ConfigError::Invalid(problems)) = Config::load(&jail.directory().join("c.toml"), true)
            else {
                panic!("accepted");
            };
            let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
            assert_eq!(problems.len(), 2, "{text:?}");
            assert!(text[0].contains("c.toml:1") && text[0].contains("min-replicas 5 exceeds"), "{text:?}");
            assert!(text[1].contains("c.toml:7") && text[1].contains("experiments[0].role"), "{text:?}");
            jail.set_env("FORESIGHT_SERVER__LISTEN", "nowhere");
            jail.create_file("d.toml", "")?;
            let err = Config::load(&jail.directory().join("d.toml"), true).unwrap_err().to_string();
            assert!(
                err.contains("environment variable FORESIGHT_SERVER__LISTEN")
                    && err.contains("`server.listen`"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_bad_limits_are_refused_with_file_and_key() {
        Jail::expect_with(|jail| {
            jail.create_file("a.toml", "[plugins.scorer]\nfile = \"x.wasm\"\nweight = 3\n")?;
            let err = Config::load(&jail.directory().join("a.toml"), true).unwrap_err().to_string();
            assert!(
                err.contains("a.toml:3") && err.contains("`plugins.scorer.weight` is not a known key"),
                "{err}"
            );
            jail.create_file(
                "b.toml",
                "[plugins.scorer]\nfile = \"x.wasm\"\nlimits = { deadline-ms = 0 }\n",
            )?;
            let err = Config::load(&jail.directory().join("b.toml"), true).unwrap_err().to_string();
            assert!(
                err.contains("b.toml:3")
                    && err.contains("`plugins.scorer.limits`")
                    && err.contains("deadline-ms"),
                "{err}"
            );
            let err = Config::load(&jail.directory().join("missing.toml"), true).unwrap_err().to_string();
            assert!(err.contains("missing.toml") && err.contains("no such file"), "{err}");
            Ok(())
        });
    }
}
