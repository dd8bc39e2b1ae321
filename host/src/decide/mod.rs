//! Decide: from forecasts and the observation to a [`Plan`] — replicas per service and cluster
//! (sized by the queueing model, clipped by guardrails) and nodes per cluster (from the
//! cost-model role). Every action carries the reason it was taken.

mod calibration;
mod capacity;
mod coverage;
pub mod impact;
pub mod lead_time;
pub mod placement;
mod policy;
mod replicas;
pub mod routing;
pub mod sizing;

use serde::Serialize;

use crate::act::Action;
pub use policy::{DemandSource, PolicyName, UnknownPolicy};
pub use replicas::{ReplicaPlanner, holdable, replicas_at};

/// Why an action was planned: enough for an operator to answer "why did it scale there?".
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Reason {
    /// One sentence.
    pub summary: String,
    /// `name@version` of the plugins consulted (forecaster, cost model, …).
    pub plugins: Vec<String>,
    /// Forecast quantile acted on.
    pub quantile: Option<f64>,
    /// Lead time of the forecast acted on, seconds.
    pub horizon_s: Option<u32>,
    /// Forecast demand behind the action, req/s (or cores for nodes).
    pub forecast: Option<f64>,
    /// Observed demand at the time, req/s (or cores).
    pub observed: Option<f64>,
    /// The guardrail that clipped the action, if any.
    pub guardrail: Option<String>,
}

/// One planned action and its reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// What to do.
    pub action: Action,
    /// Why.
    pub reason: Reason,
}

/// Everything a tick decided.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Plan {
    /// Decisions in the order they are applied: routing, replicas, placements, then nodes.
    pub decisions: Vec<Decision>,
}

pub use calibration::Calibration;
pub use capacity::{NodePlan, plan_nodes};

/// Serving replicas this tick's node releases stop, per (service, cluster) name.
pub type Evicted = std::collections::BTreeMap<(String, String), u32>;

/// Sends region `r`'s requests for service `s` to the clusters with a positive weight in `row`
/// (in [`Observation::clusters`] order).
pub fn routing_action(o: &crate::observe::Observation, s: usize, r: usize, row: &[f64]) -> Action {
    Action::SetRouting {
        service: o.services[s].name.clone(),
        region: o.regions[r].clone(),
        weights: row
            .iter()
            .zip(&o.clusters)
            .filter(|(w, _)| **w > 0.0)
            .map(|(w, c)| (c.name.clone(), *w))
            .collect(),
    }
}

/// The replicas `decisions` set for a service in a cluster, if they set any.
pub fn replicas_set(decisions: &[Decision], service: &str, cluster: &str) -> Option<u32> {
    decisions.iter().find_map(|d| match &d.action {
        Action::SetReplicas { service: s, cluster: c, replicas } if s == service && c == cluster => {
            Some(*replicas)
        }
        _ => None,
    })
}
