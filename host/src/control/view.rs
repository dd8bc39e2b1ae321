//! What the status page shows of one tick: each cluster's capacity, and each service's demand
//! beside the band the forecaster gave for the next step, its objective and its latency. Made
//! from the tick's own observation and forecasts, so the page shows what the loop decided on.

use serde::Serialize;

use crate::observe::Observation;
use crate::predict::Forecasts;

/// One tick, for the page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TickView {
    /// Tick number.
    pub tick: u64,
    /// Observed time, Unix seconds.
    pub time: i64,
    /// Clusters, in observation order.
    pub clusters: Vec<ClusterPoint>,
    /// Services, in observation order.
    pub services: Vec<ServicePoint>,
}

/// A cluster's capacity at a tick.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterPoint {
    /// Name.
    pub name: String,
    /// `edge` or `cloud`.
    pub kind: String,
    /// Reachable.
    pub up: bool,
    /// Ready nodes.
    pub nodes: u32,
    /// Nodes being provisioned.
    pub provisioning: u32,
    /// Cores on ready nodes.
    pub cpu_capacity: f64,
    /// Cores requested by pods.
    pub cpu_allocated: f64,
    /// Pods waiting for a node.
    pub pending_pods: u32,
}

/// A service at a tick.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServicePoint {
    /// Name.
    pub name: String,
    /// p95 objective, ms.
    pub slo_p95_ms: f64,
    /// Requests/s over the last step, all regions.
    pub demand_rps: f64,
    /// Measured p95, ms (`None` while requests are dropped for want of any replica).
    pub p95_ms: Option<f64>,
    /// p95 the loop predicted for its plan, ms.
    pub predicted_p95_ms: Option<f64>,
    /// Replicas in every cluster, whatever their state.
    pub replicas: u32,
    /// The forecast for the first lead time (`None` when no forecaster answered).
    pub forecast: Option<Band>,
}

/// A forecast band for one service, all regions: each quantile summed over regions, which is
/// the band of the total when regions move together (as diurnal demand does) and wider than it
/// otherwise.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Band {
    /// Time it is for, Unix seconds.
    pub at: i64,
    /// 10th percentile, requests/s.
    pub p10: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
}

impl TickView {
    /// The view of a tick.
    pub fn new(
        tick: u64,
        o: &Observation,
        forecasts: Option<&Forecasts>,
        predicted_p95: Option<&[f64]>,
    ) -> Self {
        let clusters = o
            .clusters
            .iter()
            .map(|c| ClusterPoint {
                name: c.name.clone(),
                kind: format!("{:?}", c.kind).to_lowercase(),
                up: c.up,
                nodes: c.pools.iter().map(|p| p.ready).sum(),
                provisioning: c.pools.iter().map(|p| p.provisioning).sum(),
                cpu_capacity: c.cpu_capacity,
                cpu_allocated: c.cpu_allocated,
                pending_pods: c.pending_pods,
            })
            .collect();
        let services = o
            .services
            .iter()
            .enumerate()
            .map(|(s, v)| ServicePoint {
                name: v.name.clone(),
                slo_p95_ms: v.slo_p95_ms,
                demand_rps: v.demand_rps.iter().sum(),
                p95_ms: v.p95_ms.is_finite().then_some(v.p95_ms),
                predicted_p95_ms: predicted_p95.and_then(|p| p.get(s)).copied().filter(|p| p.is_finite()),
                replicas: v.placements.iter().map(|p| p.total()).sum(),
                forecast: forecasts.filter(|f| !f.horizons.is_empty() && s < f.demand.len()).map(|f| {
                    let lead = f.horizons[0];
                    let sum = |q: f64| (0..o.regions.len()).map(|r| f.at(s, r, lead, q)).sum::<f64>();
                    Band { at: o.time + i64::from(lead), p10: sum(0.1), p50: sum(0.5), p90: sum(0.9) }
                }),
            })
            .collect();
        Self { tick, time: o.time, clusters, services }
    }
}
