//! Capacity planning: forecast demand per cluster and what can be provisioned in, a node plan out.

use crate::{Config, Descriptor, PluginError};

/// An instance type that can be provisioned in a cluster.
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Offering {
    /// Instance type name.
    pub name: String,
    /// Cores per node.
    pub vcpu: f64,
    /// GiB per node.
    pub memory_gib: f64,
    /// Price per node-hour.
    pub hourly_price: f64,
    /// Interruptible capacity.
    pub spot: bool,
    /// Interruptions per node-hour.
    pub interruption_rate: f64,
    /// Seconds from request to ready.
    pub lead_time_s: u32,
    /// Most nodes allowed.
    pub max_nodes: u32,
    /// Nodes held or requested now.
    pub current_nodes: u32,
}

/// One cluster's forecast needs and options.
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ClusterDemand {
    /// Cluster name.
    pub cluster: String,
    /// Forecast cores: `horizons × quantiles`, row-major.
    pub cpu: Vec<f64>,
    /// Forecast GiB, same shape.
    pub memory_gib: Vec<f64>,
    /// What can be provisioned.
    pub offerings: Vec<Offering>,
}

/// The planning question for every cluster.
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PlanRequest {
    /// Lead times in seconds from now, ascending, each > 0.
    pub horizons: Vec<u32>,
    /// Quantile levels in (0, 1), strictly ascending.
    pub quantiles: Vec<f64>,
    /// Per cluster.
    pub clusters: Vec<ClusterDemand>,
}

impl PlanRequest {
    /// Checks the request's shape: what the host promises every cost model.
    pub fn validate(&self) -> Result<(), PluginError> {
        let bad = |msg: String| Err(PluginError::InvalidInput(msg));
        if self.horizons.is_empty() || self.horizons[0] == 0 || self.horizons.windows(2).any(|w| w[0] >= w[1])
        {
            return bad(format!("horizons must be positive and strictly ascending: {:?}", self.horizons));
        }
        if self.quantiles.is_empty()
            || self.quantiles.iter().any(|q| !(*q > 0.0 && *q < 1.0))
            || self.quantiles.windows(2).any(|w| w[0] >= w[1])
        {
            return bad(format!(
                "quantile levels must lie in (0, 1), strictly ascending: {:?}",
                self.quantiles
            ));
        }
        let cells = self.horizons.len() * self.quantiles.len();
        for c in &self.clusters {
            if c.cpu.len() != cells || c.memory_gib.len() != cells {
                return bad(format!("cluster `{}`: demand must hold {cells} values per resource", c.cluster));
            }
            if c.cpu.iter().chain(&c.memory_gib).any(|v| !v.is_finite() || *v < 0.0) {
                return bad(format!("cluster `{}`: demand must be finite and non-negative", c.cluster));
            }
            for o in &c.offerings {
                let numbers = [o.vcpu, o.memory_gib, o.hourly_price, o.interruption_rate];
                if numbers.iter().any(|v| !v.is_finite() || *v < 0.0) || o.vcpu == 0.0 {
                    return bad(format!(
                        "cluster `{}`, offering `{}`: sizes and prices must be finite, non-negative, with vcpu > 0",
                        c.cluster, o.name
                    ));
                }
            }
        }
        Ok(())
    }

    /// The demand row for `horizon_index`, quantile column `quantile_index`.
    pub fn cell(&self, horizon_index: usize, quantile_index: usize) -> usize {
        horizon_index * self.quantiles.len() + quantile_index
    }
}

/// Hold `nodes` nodes of an offering, requested `request_in_s` seconds from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CapacityStep {
    /// Index into the cluster's offerings.
    pub offering: u32,
    /// Total nodes wanted from then on.
    pub nodes: u32,
    /// Delay before requesting, seconds.
    pub request_in_s: u32,
}

/// The plan for one cluster.
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ClusterPlan {
    /// Steps ordered by `request_in_s`.
    pub steps: Vec<CapacityStep>,
    /// Projected spend per hour once the last step is in place.
    pub hourly_cost: f64,
}

/// A cost-model plugin.
pub trait CostModel: Sized + 'static {
    /// Describes the plugin; must not depend on configuration.
    fn describe() -> Descriptor;

    /// Builds the plugin from its configuration.
    fn new(config: &Config) -> Result<Self, PluginError>;

    /// Plans every cluster, answering in request order.
    fn plan(&mut self, request: &PlanRequest) -> Result<Vec<ClusterPlan>, PluginError>;
}
