//! The host's view of a policy, whatever runs it: a sandboxed component or native code linked
//! into the daemon (the built-in baselines). The loop calls these traits and never sees Wasm.

use std::sync::Mutex;

use foresight_sdk::{
    Candidates, ClusterPlan, Config, CostModel, Descriptor, ForecastRequest, Forecaster, PlanRequest,
    PluginError, Scorer, Scores, Workload,
};

use super::fault::Fault;

/// What every policy has, whatever its kind.
pub trait Policy: Send + Sync {
    /// The policy's self-description.
    fn descriptor(&self) -> &Descriptor;

    /// `name@version`, for logs, metrics and decisions.
    fn label(&self) -> String {
        let d = self.descriptor();
        format!("{}@{}", d.name, d.version)
    }
}

/// A demand forecaster.
pub trait ForecastPolicy: Policy {
    /// Per series, `horizons × quantiles` values.
    fn forecast(&self, request: &ForecastRequest) -> Result<Vec<Vec<f64>>, Fault>;
}

/// A placement scorer.
pub trait ScorePolicy: Policy {
    /// One score per candidate; with `explain`, per-feature contributions too.
    fn score(&self, workload: &Workload, candidates: &Candidates, explain: bool) -> Result<Scores, Fault>;
}

/// A capacity planner.
pub trait PlanPolicy: Policy {
    /// One plan per cluster.
    fn plan(&self, request: &PlanRequest) -> Result<Vec<ClusterPlan>, Fault>;
}

/// A plugin compiled into the host, called directly. Used for the built-in baselines and to
/// measure the sandbox against native code.
pub struct Native<T> {
    descriptor: Descriptor,
    plugin: Mutex<T>,
}

impl<T> Native<T> {
    fn build(
        descriptor: Descriptor,
        new: fn(&Config) -> Result<T, PluginError>,
        config: &str,
    ) -> Result<Self, PluginError> {
        let parsed = Config::parse(config, &descriptor.config_keys)?;
        Ok(Self { plugin: Mutex::new(new(&parsed)?), descriptor })
    }

    fn with<R>(&self, f: impl FnOnce(&mut T) -> Result<R, PluginError>) -> Result<R, Fault> {
        // A panic in native code poisons the lock; the plugin's state is still just data, so
        // carry on with it rather than failing every later call.
        let mut plugin = self.plugin.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut plugin).map_err(Fault::Plugin)
    }
}

impl<T: Forecaster + Send> Native<T> {
    /// A native forecaster configured from TOML text.
    pub fn forecaster(config: &str) -> Result<Self, PluginError> {
        Self::build(T::describe(), T::new, config)
    }
}

impl<T: Scorer + Send> Native<T> {
    /// A native scorer configured from TOML text.
    pub fn scorer(config: &str) -> Result<Self, PluginError> {
        Self::build(T::describe(), T::new, config)
    }
}

impl<T: CostModel + Send> Native<T> {
    /// A native cost model configured from TOML text.
    pub fn cost_model(config: &str) -> Result<Self, PluginError> {
        Self::build(T::describe(), T::new, config)
    }
}

impl<T: Send> Policy for Native<T> {
    fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }
}

impl<T: Forecaster + Send> ForecastPolicy for Native<T> {
    fn forecast(&self, request: &ForecastRequest) -> Result<Vec<Vec<f64>>, Fault> {
        self.with(|p| p.forecast(request))
    }
}

impl<T: Scorer + Send> ScorePolicy for Native<T> {
    fn score(&self, workload: &Workload, candidates: &Candidates, explain: bool) -> Result<Scores, Fault> {
        self.with(|p| p.score(workload, candidates, explain))
    }
}

impl<T: CostModel + Send> PlanPolicy for Native<T> {
    fn plan(&self, request: &PlanRequest) -> Result<Vec<ClusterPlan>, Fault> {
        self.with(|p| p.plan(request))
    }
}
