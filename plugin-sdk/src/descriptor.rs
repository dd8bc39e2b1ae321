//! What a plugin says about itself, and how it reports failure.

use std::fmt;
use std::str::FromStr;

/// The kind of policy a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PluginKind {
    /// Predicts demand.
    Forecaster,
    /// Ranks candidate placements.
    Scorer,
    /// Plans node capacity.
    CostModel,
}

impl PluginKind {
    /// Every kind, in contract order.
    pub const ALL: [PluginKind; 3] = [Self::Forecaster, Self::Scorer, Self::CostModel];

    /// The kind's name as written in WIT, config and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Forecaster => "forecaster",
            Self::Scorer => "scorer",
            Self::CostModel => "cost-model",
        }
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PluginKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| format!("unknown plugin kind `{s}`: expected forecaster, scorer or cost-model"))
    }
}

/// One configuration key a plugin accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigKey {
    /// Key name as written in TOML.
    pub name: String,
    /// What the key does, with its unit.
    pub description: String,
    /// Default as a TOML value (`"0.9"`, `"[1, 2]"`), or `None` when the key is required.
    pub default_value: Option<String>,
}

impl ConfigKey {
    /// A key with an optional default written as a TOML value.
    pub fn new(name: &str, description: &str, default_value: Option<&str>) -> Self {
        Self {
            name: name.to_owned(),
            description: description.to_owned(),
            default_value: default_value.map(str::to_owned),
        }
    }
}

/// A plugin's self-description, returned by `describe`.
#[derive(Debug, Clone, PartialEq)]
pub struct Descriptor {
    /// Short, stable name.
    pub name: String,
    /// Semantic version.
    pub version: String,
    /// Policy kind; must match the exported world.
    pub kind: PluginKind,
    /// One sentence for operators.
    pub summary: String,
    /// Accepted configuration keys.
    pub config_keys: Vec<ConfigKey>,
}

impl Descriptor {
    /// A descriptor with no configuration keys.
    pub fn new(name: &str, version: &str, kind: PluginKind, summary: &str) -> Self {
        Self {
            name: name.to_owned(),
            version: version.to_owned(),
            kind,
            summary: summary.to_owned(),
            config_keys: Vec::new(),
        }
    }

    /// Adds an accepted configuration key.
    pub fn key(mut self, key: ConfigKey) -> Self {
        self.config_keys.push(key);
        self
    }
}

/// Why a plugin could not answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PluginError {
    /// The configuration is unusable; the text names the key.
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// The request broke the contract.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Anything else.
    #[error("{0}")]
    Failed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in PluginKind::ALL {
            assert_eq!(kind.as_str().parse::<PluginKind>(), Ok(kind));
        }
        let err = "planner".parse::<PluginKind>().unwrap_err();
        assert!(err.contains("forecaster, scorer or cost-model"), "{err}");
    }
}
