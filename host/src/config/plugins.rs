//! The `[plugins]` section: the plugin folder, the compile cache, and one table per role.

use std::collections::BTreeMap;
use std::path::PathBuf;

use figment::value::magic::RelativePathBuf;

use foresight_sdk::PluginKind;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::plugins::Limits;

/// Where plugins live and which serves each role.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct PluginsConfig {
    /// Folder holding plugin components (`*.wasm`); `foresight plugin build` writes here.
    /// Relative to the file that sets it (or to the working directory for the default).
    #[schemars(with = "PathBuf")]
    pub dir: RelativePathBuf,
    /// Folder for compiled components, keyed by content hash.
    #[schemars(with = "PathBuf")]
    pub cache_dir: RelativePathBuf,
    /// The forecaster role.
    pub forecaster: RoleConfig,
    /// The scorer role.
    pub scorer: RoleConfig,
    /// The cost-model role.
    pub cost_model: RoleConfig,
    /// More forecaster components (relative to `dir`) combined with `[plugins.forecaster]` by
    /// the host's ensemble, each weighted per lead time by its recent accuracy; they run with
    /// the forecaster role's limits and models and their own default configuration.
    pub ensemble: Vec<PathBuf>,
}

/// One role: which component serves it, its configuration, its limits and its models.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(from = "RawRoleConfig", into = "RawRoleConfig")]
pub struct RoleConfig {
    /// Component file, relative to `dir`.
    pub file: PathBuf,
    /// The plugin's own configuration table, passed to it as TOML text.
    pub config: BTreeMap<String, toml::Value>,
    /// Time, memory, fault tolerance and capabilities, and in `limits.models` the ONNX models
    /// granted by the role's `models` table.
    pub limits: Limits,
}

/// A role as written. `models` sits beside `limits` in the file but travels inside them, so
/// every path that starts a plugin from its limits (the loop, hot reload, experiments) passes
/// the grants along.
#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRoleConfig {
    /// Component file, relative to `[plugins] dir` (or absolute).
    file: PathBuf,
    /// The plugin's own configuration table, passed to it as TOML text and checked against the
    /// keys its descriptor declares (`foresight plugin check` lists them).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    config: BTreeMap<String, toml::Value>,
    /// ONNX models the plugin may run: name → `.onnx` file, relative to the file that sets it.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, PathBuf>")]
    models: BTreeMap<String, RelativePathBuf>,
    /// Time, memory, fault tolerance and capabilities.
    #[serde(default)]
    limits: Limits,
}

impl From<RawRoleConfig> for RoleConfig {
    fn from(raw: RawRoleConfig) -> Self {
        let mut limits = raw.limits;
        limits.models = resolve(raw.models);
        Self { file: raw.file, config: raw.config, limits }
    }
}

impl From<RoleConfig> for RawRoleConfig {
    fn from(role: RoleConfig) -> Self {
        let models = role.limits.models.iter().map(|(k, v)| (k.clone(), v.into())).collect();
        Self { file: role.file, config: role.config, models, limits: role.limits }
    }
}

/// Granted model files with relative paths resolved against the file that set them.
pub(super) fn resolve(models: BTreeMap<String, RelativePathBuf>) -> BTreeMap<String, PathBuf> {
    models.into_iter().map(|(name, path)| (name, path.relative())).collect()
}

/// Checks that every granted model names an existing file; the error names the key.
pub(super) fn validate_models(key: &str, models: &BTreeMap<String, PathBuf>) -> Result<(), (String, String)> {
    for (name, path) in models {
        if name.trim().is_empty() {
            return Err((
                key.into(),
                "has a model with an empty name; name it as the plugin asks for it".into(),
            ));
        }
        if !path.is_file() {
            return Err((
                format!("{key}.{name}"),
                format!(
                    "is {}, which is not a file; point it at the `.onnx` model (a relative path starts at \
                     the folder of the file that sets it), or remove the grant",
                    path.display()
                ),
            ));
        }
    }
    Ok(())
}

impl RoleConfig {
    fn named(file: &str) -> Self {
        Self { file: file.into(), config: BTreeMap::new(), limits: Limits::default() }
    }

    /// The plugin's configuration as the TOML text it receives.
    pub fn config_text(&self) -> String {
        let table: toml::Table = self.config.clone().into_iter().collect();
        toml::to_string(&table).unwrap_or_default()
    }
}

impl Default for PluginsConfig {
    fn default() -> Self {
        Self {
            dir: ".foresight/plugins".into(),
            cache_dir: ".foresight/cache".into(),
            forecaster: RoleConfig::named("seasonal-naive.wasm"),
            scorer: RoleConfig::named("latency-aware.wasm"),
            cost_model: RoleConfig::named("spot-mix.wasm"),
            ensemble: Vec::new(),
        }
    }
}

impl PluginsConfig {
    /// Each role with its kind.
    pub fn roles(&self) -> [(PluginKind, &RoleConfig); 3] {
        [
            (PluginKind::Forecaster, &self.forecaster),
            (PluginKind::Scorer, &self.scorer),
            (PluginKind::CostModel, &self.cost_model),
        ]
    }

    /// The plugin folder.
    pub fn dir(&self) -> PathBuf {
        self.dir.relative()
    }

    /// The compile cache folder.
    pub fn cache_dir(&self) -> PathBuf {
        self.cache_dir.relative()
    }

    /// The component file serving a role.
    pub fn file(&self, role: &RoleConfig) -> PathBuf {
        let file = &role.file;
        if file.is_absolute() { file.clone() } else { self.dir().join(file) }
    }

    /// Checks each role's limits and granted models; the error names the key.
    pub(super) fn validate(&self) -> Result<(), (String, String)> {
        for (kind, role) in self.roles() {
            role.limits.validate().map_err(|m| (format!("plugins.{kind}.limits"), m))?;
            validate_models(&format!("plugins.{kind}.models"), &role.limits.models)?;
        }
        Ok(())
    }
}

#[cfg(test)]
// `Jail`'s closures return figment's large error type by design.
#[allow(clippy::result_large_err)]
mod tests {
    use std::path::Path;

    use figment::Jail;

    use crate::config::Config;

    #[test]
    fn granted_models_resolve_against_the_config_file_and_travel_in_the_limits() {
        Jail::expect_with(|jail| {
            jail.create_dir("conf")?;
            jail.create_dir("models")?;
            jail.create_file("models/m.onnx", "")?;
            jail.create_file(
                "conf/f.toml",
                "[plugins.forecaster]\nfile = \"onnx-mlp.wasm\"\nmodels = { demand-mlp = \"../models/m.onnx\" }\n\n\
                 [[experiments]]\nname = \"x\"\nrole = \"forecaster\"\nfile = \"a.wasm\"\nmode = \"shadow\"\n\
                 models = { other = \"/abs/other.onnx\" }\n",
            )?;
            let err = Config::load(&jail.directory().join("conf/f.toml"), true).unwrap_err().to_string();
            assert!(err.contains("experiments[0].models.other") && err.contains("/abs/other.onnx"), "{err}");

            jail.create_file("models/other.onnx", "")?;
            let text = std::fs::read_to_string(jail.directory().join("conf/f.toml")).unwrap();
            jail.create_file("conf/f.toml", &text.replace("/abs/other.onnx", "../models/other.onnx"))?;
            let config = Config::load(&jail.directory().join("conf/f.toml"), true).expect("loads");
            let models = &config.plugins.forecaster.limits.models;
            assert_eq!(models["demand-mlp"], jail.directory().join("conf/../models/m.onnx"));
            let models = &config.experiments[0].limits.models;
            assert_eq!(models["other"], jail.directory().join("conf/../models/other.onnx"));
            assert!(config.plugins.scorer.limits.models.is_empty(), "grants are per role");
            Ok(())
        });
    }

    #[test]
    fn a_missing_model_file_is_refused_with_its_key_and_line() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "c.toml",
                "[plugins.forecaster]\nfile = \"onnx-mlp.wasm\"\nmodels = { demand-mlp = \"nowhere.onnx\" }\n",
            )?;
            let err = Config::load(&jail.directory().join("c.toml"), true).unwrap_err().to_string();
            assert!(
                err.contains("c.toml:3") && err.contains("`plugins.forecaster.models.demand-mlp`"),
                "{err}"
            );
            assert!(err.contains("nowhere.onnx, which is not a file"), "{err}");
            // Grants are written beside the limits, not in them.
            jail.create_file("d.toml", "[plugins.scorer]\nfile = \"x.wasm\"\nlimits = { models = {} }\n")?;
            let err = Config::load(&jail.directory().join("d.toml"), true).unwrap_err().to_string();
            assert!(err.contains("`plugins.scorer.limits.models` is not a known key"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_role_without_models_grants_none() {
        let config = Config::load(Path::new("/nonexistent/foresight.toml"), false).expect("defaults");
        assert!(config.plugins.roles().iter().all(|(_, role)| role.limits.models.is_empty()));
    }
}
