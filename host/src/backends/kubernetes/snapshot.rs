//! What the actuator needs to know of the world as last observed: which Deployment and HPA
//! carry each service, the ready nodes in the order `place-pod` numbers them, the pods
//! waiting for Foresight to place them, the node pools, and whether each cluster's data is
//! fresh enough to act on. Actions are carried out against this, never against a newer view,
//! so a decision means what it meant when it was made.

use std::collections::BTreeMap;

/// The observed world, as actions address it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Time of the observation, Unix seconds.
    pub time: i64,
    /// User regions, in observation order.
    pub regions: Vec<String>,
    /// Clusters, in observation order.
    pub clusters: Vec<ClusterSnapshot>,
    /// Requests/s per region of each service.
    pub demand: BTreeMap<String, Vec<f64>>,
}

impl Snapshot {
    /// A cluster by name.
    pub fn cluster(&self, name: &str) -> Option<&ClusterSnapshot> {
        self.clusters.iter().find(|c| c.name == name)
    }
}

/// One cluster.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterSnapshot {
    /// Name.
    pub name: String,
    /// Why its data may not be acted on, when it may not.
    pub stale: Option<String>,
    /// The workload of each service it runs.
    pub workloads: BTreeMap<String, Workload>,
    /// Ready nodes, by name: `place-pod`'s node index points in here.
    pub nodes: Vec<String>,
    /// Pods of each service waiting for Foresight to place them, oldest first.
    pub pending: BTreeMap<String, Vec<PodRef>>,
    /// Node pools by offering.
    pub pools: BTreeMap<String, PoolSnapshot>,
}

/// A service's Deployment in one cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Namespace.
    pub namespace: String,
    /// Deployment name.
    pub name: String,
    /// The HPA scaling it, if one does.
    pub hpa: Option<String>,
    /// Replicas it asks for.
    pub replicas: u32,
}

/// A pod.
#[derive(Debug, Clone, PartialEq)]
pub struct PodRef {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// A node pool.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PoolSnapshot {
    /// Nodes ready or on their way.
    pub nodes: u32,
    /// Cores requested by pods on its ready nodes.
    pub allocated: f64,
    /// Allocatable cores per node.
    pub vcpu: f64,
    /// Allocatable GiB per node.
    pub memory_gib: f64,
}
