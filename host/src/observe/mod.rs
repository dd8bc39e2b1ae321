//! Observe: what a backend reports at the start of each tick. The simulator and the
//! Kubernetes backend both produce an [`Observation`]; nothing downstream knows which.

use serde::Serialize;

/// Edge site or cloud region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ClusterKind {
    /// A small, fixed site near users.
    Edge,
    /// An elastic cloud region.
    Cloud,
}

/// One node pool of a cluster, as observed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolView {
    /// The instance offering the pool is made of.
    pub offering: foresight_sdk::Offering,
    /// Nodes serving now.
    pub ready: u32,
    /// Nodes requested and not yet ready.
    pub provisioning: u32,
}

/// One cluster, as observed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterView {
    /// Cluster name.
    pub name: String,
    /// Edge or cloud.
    pub kind: ClusterKind,
    /// Whether the cluster is reachable at all (false during an outage).
    pub up: bool,
    /// Round trip from each user region, ms, in [`Observation::regions`] order.
    pub rtt_ms: Vec<f64>,
    /// Round trip to each cluster, ms, in [`Observation::clusters`] order.
    pub peer_rtt_ms: Vec<f64>,
    /// Node pools.
    pub pools: Vec<PoolView>,
    /// Cores on ready nodes.
    pub cpu_capacity: f64,
    /// Cores requested by pods placed on ready nodes (services and batch).
    pub cpu_allocated: f64,
    /// Pods waiting for a node.
    pub pending_pods: u32,
}

/// One ready node of a cluster, as observed (what schedulers and node autoscalers look at).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeView {
    /// Index of its pool in [`ClusterView::pools`].
    pub pool: u32,
    /// Allocatable cores.
    pub cpu: f64,
    /// Cores not requested by pods on it.
    pub cpu_free: f64,
    /// Allocatable GiB.
    pub memory_gib: f64,
    /// GiB not requested by pods on it.
    pub memory_free_gib: f64,
    /// Service pods on it.
    pub pods: u32,
    /// Ready (serving) pods on it per service name; a service with none is absent.
    pub serving: std::collections::BTreeMap<String, u32>,
}

impl NodeView {
    /// Whether a pod of these requests fits in what is free.
    pub fn fits(&self, cpu: f64, memory_gib: f64) -> bool {
        self.cpu_free + 1e-9 >= cpu && self.memory_free_gib + 1e-9 >= memory_gib
    }

    /// Counts a pod of these requests as placed here.
    pub fn take(&mut self, cpu: f64, memory_gib: f64) {
        self.cpu_free -= cpu;
        self.memory_free_gib -= memory_gib;
        self.pods += 1;
    }
}

/// One service in one cluster, as observed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Placement {
    /// Replicas serving.
    pub ready: u32,
    /// Replicas scheduled and starting.
    pub starting: u32,
    /// Replicas waiting for a node.
    pub pending: u32,
    /// Requests/s arriving at this cluster's replicas.
    pub arrival_rps: f64,
    /// Utilisation of the serving replicas, 0..1 (1 when saturated).
    pub utilisation: f64,
}

impl Placement {
    /// Replicas, whatever their state.
    pub fn total(&self) -> u32 {
        self.ready + self.starting + self.pending
    }

    /// Pods that will wait for a node once the replicas become `target`: those pending now and
    /// the new ones; a scale-in removes pending pods first.
    pub fn waiting_at(&self, target: u32) -> u32 {
        let current = self.total();
        if target >= current {
            self.pending + (target - current)
        } else {
            self.pending.saturating_sub(current - target)
        }
    }
}

/// One service, as observed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceView {
    /// Service name.
    pub name: String,
    /// p95 latency objective, ms.
    pub slo_p95_ms: f64,
    /// Mean CPU time per request, ms.
    pub service_ms: f64,
    /// Cores per replica.
    pub cpu_per_replica: f64,
    /// GiB per replica.
    pub memory_gib_per_replica: f64,
    /// Seconds from scheduling to serving.
    pub startup_s: u32,
    /// Requests/s per user region over the last step, in [`Observation::regions`] order.
    pub demand_rps: Vec<f64>,
    /// Its replicas in each cluster, in [`Observation::clusters`] order.
    pub placements: Vec<Placement>,
    /// Routing weights, row per region, column per cluster (in [`Observation::clusters`] order).
    pub routing: Vec<Vec<f64>>,
    /// Measured p95 latency over the last step, ms (infinite when requests were dropped
    /// for lack of any serving replica).
    pub p95_ms: f64,
    /// Requests/s dropped over the last step.
    pub dropped_rps: f64,
}

/// A demand event known in advance (a sale, a launch).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KnownEvent {
    /// Event name.
    pub name: String,
    /// Service it affects, or `None` for every service.
    pub service: Option<String>,
    /// Start, Unix seconds.
    pub start: i64,
    /// End, Unix seconds.
    pub end: i64,
    /// Expected demand multiplier.
    pub multiplier: f64,
}

/// Everything a tick starts from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observation {
    /// Time of the observation, Unix seconds.
    pub time: i64,
    /// Seconds between ticks.
    pub step_s: u32,
    /// User regions.
    pub regions: Vec<String>,
    /// Clusters.
    pub clusters: Vec<ClusterView>,
    /// Services.
    pub services: Vec<ServiceView>,
    /// Events announced for the future (and under way).
    pub events: Vec<KnownEvent>,
}

/// Why a backend could not observe.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    /// The backend's data is older than the staleness limit; acting on it is not allowed.
    #[error("observation is stale: newest data is {age_s} s old (limit {limit_s} s)")]
    Stale {
        /// Age of the newest data.
        age_s: u64,
        /// The limit.
        limit_s: u64,
    },
    /// The backend failed.
    #[error("{0}")]
    Backend(String),
}

/// A source of observations.
pub trait Observer {
    /// The state of the world now.
    fn observe(&mut self) -> Result<Observation, ObserveError>;

    /// Requests/s of a service from a region over the last `window_s` seconds, one value per
    /// step, oldest first (for forecasting); `None` for an unknown service or region.
    fn demand_history(&self, service: &str, region: &str, window_s: u32) -> Option<foresight_sdk::Series>;

    /// The ready nodes of a cluster, in the order [`crate::act::Action::PlacePod`] numbers
    /// them; `None` for an unknown cluster. Asked for on demand: a fleet has far more nodes
    /// than a tick needs to look at.
    fn nodes(&self, cluster: &str) -> Option<Vec<NodeView>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_waiting_after_a_change_of_replicas() {
        let p = Placement { ready: 3, starting: 1, pending: 2, arrival_rps: 0.0, utilisation: 0.0 };
        assert_eq!(p.total(), 6);
        // Two pending and two new; a scale-in takes pending pods first.
        assert_eq!((p.waiting_at(8), p.waiting_at(6), p.waiting_at(5), p.waiting_at(3)), (4, 2, 1, 0));
    }

    #[test]
    fn a_node_fits_what_is_free_and_counts_what_it_takes() {
        let mut n = NodeView {
            pool: 0,
            cpu: 4.0,
            cpu_free: 1.0,
            memory_gib: 8.0,
            memory_free_gib: 2.0,
            pods: 3,
            serving: Default::default(),
        };
        assert!(n.fits(1.0, 2.0) && !n.fits(1.5, 1.0) && !n.fits(0.5, 3.0));
        n.take(1.0, 2.0);
        assert_eq!((n.cpu_free, n.memory_free_gib, n.pods), (0.0, 0.0, 4));
    }
}
