//! One cluster's machinery: nodes from pools, provisioning with lead times, spot
//! interruptions, and placing service pods on nodes.

use super::rng::Rng;
use foresight_sdk::Offering;

use super::scenario::ClusterSpec;

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

/// Sums over a cluster's ready nodes, kept as nodes and pods come and go: every tick needs
/// them, and summing ten thousand nodes per tick would dominate a large run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    /// Cores.
    pub cpu: f64,
    /// Cores not taken by service pods.
    pub cpu_free: f64,
    /// Price per hour.
    pub hourly_price: f64,
}

/// A cluster's live state.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Ready nodes (a node's index is its identity until nodes are removed). Change them only
    /// through this type's methods, which keep [`Cluster::totals`] right.
    pub nodes: Vec<Node>,
    /// Sums over `nodes`.
    pub totals: Totals,
    /// Whether any pool can be interrupted at all (saves scanning nodes when none can).
    interruptible: bool,
    /// Nodes requested and not yet ready.
    pub provisioning: Vec<Provision>,
    /// Whether the cluster is reachable.
    pub up: bool,
}

impl Cluster {
    /// The cluster as the scenario starts it: every pool's nodes ready.
    pub fn new(spec: &ClusterSpec, offerings: &[Offering]) -> Self {
        let interruptible = spec
            .pools
            .iter()
            .any(|p| offerings[p.offering].spot && offerings[p.offering].interruption_rate > 0.0);
        let mut cluster = Self {
            nodes: Vec::new(),
            totals: Totals::default(),
            interruptible,
            provisioning: Vec::new(),
            up: true,
        };
        for (pool, p) in spec.pools.iter().enumerate() {
            for _ in 0..p.nodes {
                cluster.add_node(pool, &offerings[p.offering]);
            }
        }
        cluster
    }

    fn add_node(&mut self, pool: usize, o: &Offering) {
        self.nodes.push(Node { pool, cpu_free: o.vcpu, memory_free: o.memory_gib, pods: 0 });
        self.totals.cpu += o.vcpu;
        self.totals.cpu_free += o.vcpu;
        self.totals.hourly_price += o.hourly_price;
    }

    /// Removes nodes by index (ascending, distinct); their pods must be re-homed by the caller.
    pub fn remove_nodes(&mut self, ascending: &[usize], spec: &ClusterSpec, offerings: &[Offering]) {
        for &i in ascending.iter().rev() {
            let node = self.nodes.remove(i);
            let o = &offerings[spec.pools[node.pool].offering];
            self.totals.cpu -= o.vcpu;
            self.totals.cpu_free -= node.cpu_free;
            self.totals.hourly_price -= o.hourly_price;
        }
    }

    /// Nodes of a pool that exist or are on their way.
    pub fn pool_count(&self, pool: usize) -> (u32, u32) {
        let ready = self.nodes.iter().filter(|n| n.pool == pool).count() as u32;
        let coming = self.provisioning.iter().filter(|p| p.pool == pool).count() as u32;
        (ready, coming)
    }

    /// Turns provisions that are due into nodes.
    pub fn arrive(&mut self, now: i64, spec: &ClusterSpec, offerings: &[Offering]) {
        let (due, pending): (Vec<Provision>, Vec<Provision>) =
            self.provisioning.iter().partition(|p| p.ready_at <= now);
        self.provisioning = pending;
        for p in due {
            self.add_node(p.pool, &offerings[spec.pools[p.pool].offering]);
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
        offerings: &[Offering],
    ) -> Vec<usize> {
        let mut lost = Vec::new();
        if !self.interruptible {
            return lost;
        }
        for (i, node) in self.nodes.iter().enumerate() {
            let o = &offerings[spec.pools[node.pool].offering];
            if o.spot && o.interruption_rate > 0.0 {
                let p = (o.interruption_rate * multiplier * f64::from(step_s) / 3600.0).min(1.0);
                if rng.chance(p) {
                    lost.push(i);
                }
            }
        }
        for &i in &lost {
            let pool = self.nodes[i].pool;
            let lead = offerings[spec.pools[pool].offering].lead_time_s;
            self.provisioning.push(Provision { pool, ready_at: now + i64::from(lead) });
        }
        self.remove_nodes(&lost, spec, offerings);
        lost
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
        self.totals.cpu_free -= cpu;
    }

    /// Takes a pod off a node.
    pub fn unbind(&mut self, node: usize, cpu: f64, memory: f64) {
        let n = &mut self.nodes[node];
        n.cpu_free += cpu;
        n.memory_free += memory;
        n.pods -= 1;
        self.totals.cpu_free += cpu;
    }
}
