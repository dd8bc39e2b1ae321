//! `[[experiments]]`: a candidate plugin run beside the live one.

use std::collections::BTreeMap;

use figment::value::magic::RelativePathBuf;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::plugins::{resolve, validate_models};
use crate::plugins::Limits;

/// How a candidate takes part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ExperimentMode {
    /// Sees the same observations; its decisions are recorded and scored, never applied.
    Shadow,
    /// Its decisions are applied to a share of services.
    Canary,
}

/// One experiment.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(from = "RawExperiment", into = "RawExperiment")]
pub struct Experiment {
    /// Name, shown in status and metrics.
    pub name: String,
    /// The role the candidate plays: `forecaster`, `scorer` or `cost-model`.
    pub role: String,
    /// Candidate component, relative to the plugin folder.
    pub file: std::path::PathBuf,
    /// The candidate's configuration table.
    pub config: BTreeMap<String, toml::Value>,
    /// Its limits, and in `limits.models` the ONNX models granted by its `models` table.
    pub limits: Limits,
    /// `shadow` or `canary`.
    pub mode: ExperimentMode,
    /// With `canary`: the share of services (0..1) the candidate decides for.
    pub share: f64,
    /// Champion/challenger (shadow forecasters): promote the candidate to live once its MASE
    /// over this trailing window (e.g. `"6h"`, observed time) beats the live forecaster's.
    pub promote_after: Option<String>,
    /// By how much it must beat it: 0.05 means a MASE at least 5 % lower.
    pub promote_margin: f64,
}

/// An experiment as written; `models` travels inside the limits, as for a role.
#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawExperiment {
    /// Name, shown in status, metrics and the decision log.
    name: String,
    /// The role the candidate plays: `forecaster`, `scorer` or `cost-model`.
    role: String,
    /// Candidate component, relative to the plugin folder.
    file: std::path::PathBuf,
    /// The candidate's configuration table, as for a role.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    config: BTreeMap<String, toml::Value>,
    /// ONNX models the candidate may run: name → `.onnx` file, relative to the file that sets it.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, std::path::PathBuf>")]
    models: BTreeMap<String, RelativePathBuf>,
    /// The candidate's time, memory, fault tolerance and capabilities.
    #[serde(default)]
    limits: Limits,
    /// How the candidate takes part.
    mode: ExperimentMode,
    /// With `canary`: the share of services, in (0, 1], the candidate decides for.
    #[serde(default)]
    share: f64,
    /// Champion/challenger (shadow forecasters only): promote the candidate to live once its
    /// MASE over this trailing window of observed time (e.g. `"6h"`) beats the live
    /// forecaster's by `promote-margin`.
    #[serde(default)]
    promote_after: Option<String>,
    /// By how much it must beat it, a fraction in [0, 1): 0.05 means a MASE at least 5 % lower.
    #[serde(default = "default_margin")]
    promote_margin: f64,
}

fn default_margin() -> f64 {
    0.05
}

impl From<RawExperiment> for Experiment {
    fn from(raw: RawExperiment) -> Self {
        let mut limits = raw.limits;
        limits.models = resolve(raw.models);
        let RawExperiment { name, role, file, config, mode, share, promote_after, promote_margin, .. } = raw;
        Self { name, role, file, config, limits, mode, share, promote_after, promote_margin }
    }
}

impl From<Experiment> for RawExperiment {
    fn from(e: Experiment) -> Self {
        let models = e.limits.models.iter().map(|(k, v)| (k.clone(), v.into())).collect();
        let Experiment { name, role, file, config, limits, mode, share, promote_after, promote_margin } = e;
        Self { name, role, file, config, models, limits, mode, share, promote_after, promote_margin }
    }
}

impl Experiment {
    /// Checks the fields, naming the key at fault.
    pub fn validate(&self, index: usize) -> Result<(), (String, String)> {
        let key = |k: &str| format!("experiments[{index}].{k}");
        if !["forecaster", "scorer", "cost-model"].contains(&self.role.as_str()) {
            return Err((key("role"), format!("is `{}`; use forecaster, scorer or cost-model", self.role)));
        }
        match self.mode {
            ExperimentMode::Canary if !(self.share > 0.0 && self.share <= 1.0) => {
                Err((key("share"), format!("is {}; a canary needs a share in (0, 1]", self.share)))
            }
            ExperimentMode::Shadow if self.share != 0.0 => {
                Err((key("share"), "applies to canaries only; remove it or set mode = \"canary\"".into()))
            }
            _ => {
                self.limits.validate().map_err(|m| (key("limits"), m))?;
                validate_models(&key("models"), &self.limits.models)?;
                if self.promote_after.is_some()
                    && (self.role != "forecaster" || self.mode != ExperimentMode::Shadow)
                {
                    return Err((
                        key("promote-after"),
                        "applies to shadow forecaster experiments only (champion/challenger); remove it"
                            .into(),
                    ));
                }
                self.promotion_window_s().map_err(|m| (key("promote-after"), m))?;
                if !(0.0..1.0).contains(&self.promote_margin) {
                    return Err((
                        key("promote-margin"),
                        format!(
                            "is {}; write a fraction in [0, 1), e.g. 0.05 for 5 % better",
                            self.promote_margin
                        ),
                    ));
                }
                Ok(())
            }
        }
    }

    /// The champion/challenger window in seconds, when promotion is on.
    pub fn promotion_window_s(&self) -> Result<Option<i64>, String> {
        let Some(text) = &self.promote_after else { return Ok(None) };
        let d = humantime::parse_duration(text)
            .map_err(|e| format!("\"{text}\" is not a duration ({e}); write it like \"6h\""))?;
        if d.as_secs() == 0 {
            return Err(format!(
                "\"{text}\" is empty; a challenger must be compared over some time, e.g. \"6h\""
            ));
        }
        Ok(Some(d.as_secs() as i64))
    }
}
