//! One cluster's machinery: nodes from pools, provisioning with lead times, spot
//! interruptions, and placing service pods on nodes.

use super::rng::Rng;
use super::scenario::{ClusterSpec, OfferingSpec};

/// A ready node.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Pool index within the cluster.
    pub pool: usize,
    /// Cores not taken by service pods.
    pub cpu_free: f64,
    /// GiB not taken by service pods.
    pub memory_free: f64,
    /// Service pods on it.
    pub pods: u32,
}

/// A node on its way.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Provision {
    /// Pool index within the cluster.
    pub pool: usize,
    /// When it becomes ready, Unix seconds.
    pub ready_at: i64,
}

/// A cluster's live state.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Ready nodes (a node's index is its identity until nodes are removed).
    pub nodes: Vec<Node>,
    /// Nodes requested and not yet ready.
    pub provisioning: Vec<Provision>,
    /// Whether the cluster is reachable.
    pub up: bool,
}

impl Cluster {
    /// The cluster as the scenario starts it: every pool's nodes ready.
    pub fn new(spec: &ClusterSpec, offerings: &[OfferingSpec]) -> Self {
        let mut nodes = Vec::new();
        for (pool, p) in spec.pools.iter().enumerate() {
            let o = &offerings[p.offering];
            nodes.extend((0..p.nodes).map(|_| Node {
                pool,
                cpu_free: o.vcpu,
                memory_free: o.memory_gib,
                pods: 0,
            }));
        }
        Self { nodes, provisioning: Vec::new(), up: true }
    }

    /// Nodes of a pool that exist or are on their way.
    pub fn pool_count(&self, pool: usize) -> (u32, u32) {
        let ready = self.nodes.iter().filter(|n| n.pool == pool).count() as u32;
        let coming = self.provisioning.iter().filter(|p| p.pool == pool).count() as u32;
        (ready, coming)
    }

    /// Turns provisions that are due into nodes.
    pub fn arrive(&mut self, now: i64, spec: &ClusterSpec, offerings: &[OfferingSpec]) {
        let (due, pending): (Vec<Provision>, Vec<Provision>) =
            self.provisioning.iter().partition(|p| p.ready_at <= now);
        self.provisioning = pending;
        for p in due {
            let o = &offerings[spec.pools[p.pool].offering];
            self.nodes.push(Node { pool: p.pool, cpu_free: o.vcpu, memory_free: o.memory_gib, pods: 0 });
        }
    }

    /// Interrupts spot nodes at random, returning the indices removed (highest first, so
    /// callers can fix up pod references), and orders replacements after the lead time —
    /// what a cloud autoscaling group does.
    pub fn interrupt(
        &mut self,
        rng: &mut Rng,
        now: i64,
        step_s: u32,
        multiplier: f64,
        spec: &ClusterSpec,
        offerings: &[OfferingSpec],
    ) -> Vec<usize> {
        let mut lost = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let o = &offerings[spec.pools[node.pool].offering];
            if o.spot && o.interruption_rate > 0.0 {
                let p = (o.interruption_rate * multiplier * f64::from(step_s) / 3600.0).min(1.0);
                if rng.chance(p) {
                    lost.push(i);
                }
            }
        }
        for &i in lost.iter().rev() {
            let pool = self.nodes[i].pool;
            self.nodes.remove(i);
            let lead = offerings[spec.pools[pool].offering].lead_time_s;
            self.provisioning.push(Provision { pool, ready_at: now + i64::from(lead) });
        }
        lost.reverse();
        lost
    }

    /// Cores and GiB on ready nodes.
    pub fn capacity(&self, spec: &ClusterSpec, offerings: &[OfferingSpec]) -> (f64, f64) {
        self.nodes.iter().fold((0.0, 0.0), |(c, m), n| {
            let o = &offerings[spec.pools[n.pool].offering];
            (c + o.vcpu, m + o.memory_gib)
        })
    }

    /// First node that fits a pod, searching from `hint` (where the last fit was found).
    pub fn fit(&self, cpu: f64, memory: f64, hint: usize) -> Option<usize> {
        let n = self.nodes.len();
        (0..n).map(|k| (hint + k) % n).find(|&i| {
            let node = &self.nodes[i];
            node.cpu_free + 1e-9 >= cpu && node.memory_free + 1e-9 >= memory
        })
    }

    /// Puts a pod on a node.
    pub fn bind(&mut self, node: usize, cpu: f64, memory: f64) {
        let n = &mut self.nodes[node];
        n.cpu_free -= cpu;
        n.memory_free -= memory;
        n.pods += 1;
    }

    /// Takes a pod off a node.
    pub fn unbind(&mut self, node: usize, cpu: f64, memory: f64) {
        let n = &mut self.nodes[node];
        n.cpu_free += cpu;
        n.memory_free += memory;
        n.pods -= 1;
    }
}
