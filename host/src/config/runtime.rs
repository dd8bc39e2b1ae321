//! The loop's own settings: which backend, how often to tick, the stage budgets, the HTTP
//! server, logging and the decision log.

use std::time::Duration;

use figment::value::magic::RelativePathBuf;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where observations come from and actions go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    /// The built-in simulator.
    Sim,
    /// Real clusters through the Kubernetes API.
    Kubernetes,
}

/// `[backend]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct BackendConfig {
    /// `sim` or `kubernetes`.
    pub kind: BackendKind,
    /// The scenario the simulator runs (relative to the file that sets it).
    #[schemars(with = "std::path::PathBuf")]
    pub scenario: RelativePathBuf,
    /// Real clusters (`kind = "kubernetes"`).
    pub kubernetes: super::KubernetesConfig,
}

impl Default for BackendConfig {
    fn default() -> Self {
        Self {
            kind: BackendKind::Sim,
            scenario: "config/scenarios/diurnal.toml".into(),
            kubernetes: super::KubernetesConfig::default(),
        }
    }
}

/// `[tick]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct TickConfig {
    /// Wall-clock time between ticks. With the simulator each tick advances simulated time by
    /// the scenario's step, so a short interval runs it accelerated.
    pub interval: String,
    /// Budget of the observe stage, ms.
    pub observe_ms: u64,
    /// Budget of the predict stage, ms.
    pub predict_ms: u64,
    /// Budget of the decide stage, ms.
    pub decide_ms: u64,
    /// Budget of the act stage, ms.
    pub act_ms: u64,
    /// Oldest observation the loop may act on, ms; older data makes the tick skip acting.
    pub max_observation_age_ms: u64,
    /// How often each demand series is forecast again, in observed time. Series take turns,
    /// so each tick refreshes about `step / forecast-refresh` of them; a forecast in between
    /// is read at its lead plus its age.
    pub forecast_refresh: String,
}

impl Default for TickConfig {
    fn default() -> Self {
        Self {
            interval: "100ms".into(),
            observe_ms: 100,
            predict_ms: 250,
            decide_ms: 250,
            act_ms: 100,
            max_observation_age_ms: 1000,
            forecast_refresh: "5m".into(),
        }
    }
}

impl TickConfig {
    /// The interval as a duration.
    pub fn interval(&self) -> Result<Duration, String> {
        humantime::parse_duration(&self.interval).map_err(|e| {
            format!(
                "interval = \"{}\" is not a duration ({e}); write it like \"1s\" or \"250ms\"",
                self.interval
            )
        })
    }

    /// The forecast refresh interval, whole seconds.
    pub fn forecast_refresh_s(&self) -> Result<u32, String> {
        let fix = "write it like \"5m\" (at least one second, at most a day)";
        let d = humantime::parse_duration(&self.forecast_refresh).map_err(|e| {
            format!("forecast-refresh = \"{}\" is not a duration ({e}); {fix}", self.forecast_refresh)
        })?;
        match u32::try_from(d.as_secs()) {
            Ok(s @ 1..=86_400) => Ok(s),
            _ => Err(format!("forecast-refresh = \"{}\" is out of range; {fix}", self.forecast_refresh)),
        }
    }
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ServerConfig {
    /// Address the HTTP server listens on.
    pub listen: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self { listen: "127.0.0.1:9464".into() }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// Human-readable (the default on a terminal).
    Pretty,
    /// One JSON object per line.
    Json,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct LogConfig {
    /// `pretty` or `json`.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: LogFormat::Pretty }
    }
}

/// When the decision log is flushed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FsyncPolicy {
    /// After every tick's decisions (at most one tick lost on power failure).
    EveryTick,
    /// After every decision.
    Always,
    /// Leave it to the OS (a process crash loses nothing; a power failure may).
    Never,
}

/// `[decisions]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct DecisionsConfig {
    /// The JSON-lines decision log (relative to the file that sets it).
    #[schemars(with = "std::path::PathBuf")]
    pub log: RelativePathBuf,
    /// When it is flushed to disk.
    pub fsync: FsyncPolicy,
    /// Decisions kept in memory for the API.
    pub journal: usize,
}

impl Default for DecisionsConfig {
    fn default() -> Self {
        Self { log: ".foresight/decisions.jsonl".into(), fsync: FsyncPolicy::EveryTick, journal: 1000 }
    }
}
