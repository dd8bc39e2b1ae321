//! The `[plugins]` section: the plugin folder, the compile cache, and one table per role.

use std::collections::BTreeMap;
use std::path::PathBuf;

use figment::value::magic::RelativePathBuf;

use foresight_sdk::PluginKind;
use serde::{Deserialize, Serialize};

use crate::plugins::Limits;

/// Where plugins live and which serves each role.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct PluginsConfig {
    /// Folder holding plugin components (`*.wasm`); `foresight plugin build` writes here.
    /// Relative to the file that sets it (or to the working directory for the default).
    pub dir: RelativePathBuf,
    /// Folder for compiled components, keyed by content hash.
    pub cache_dir: RelativePathBuf,
    /// The forecaster role.
    pub forecaster: RoleConfig,
    /// The scorer role.
    pub scorer: RoleConfig,
    /// The cost-model role.
    pub cost_model: RoleConfig,
}

/// One role: which component serves it, its configuration and its limits.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RoleConfig {
    /// Component file, relative to `dir`.
    pub file: PathBuf,
    /// The plugin's own configuration table, passed to it as TOML text.
    #[serde(default)]
    pub config: BTreeMap<String, toml::Value>,
    /// Time, memory, fault tolerance and capabilities.
    #[serde(default)]
    pub limits: Limits,
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

    /// Checks each role's limits; the error names the key.
    pub(super) fn validate(&self) -> Result<(), (String, String)> {
        for (kind, role) in self.roles() {
            role.limits.validate().map_err(|m| (format!("plugins.{kind}.limits"), m))?;
        }
        Ok(())
    }
}
