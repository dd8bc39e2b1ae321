//! Node provisioning as Karpenter does it (karpenter.sh, "Concepts": NodePools, Scheduling,
//! Disruption), with a NodePool per cloud cluster whose instance types are the cluster's
//! pools, capacity type spot and on-demand both allowed where the cluster has spot pools,
//! limits at each pool's `max-nodes`, and the documented disruption defaults.
//!
//! **Provisioning.** Pods that cannot be scheduled are batched and packed, largest first,
//! onto new NodeClaims. A NodeClaim starts with every instance type that has room left and
//! keeps taking pods while at least one of its types still holds them all ("Karpenter packs
//! pods onto the fewest nodes"); at launch the cheapest type that holds them is chosen, which
//! is a spot type whenever spot is allowed and cheaper (the price-capacity-optimized
//! allocation prefers spot offerings when a NodePool allows both). Pods that fit on nodes
//! already launching wait for those. Launches go out at once (no scan interval).
//!
//! **Consolidation** (`consolidationPolicy: WhenEmptyOrUnderutilized`, `consolidateAfter:
//! 0s`, the default budget of `nodes: 10%`), only while nothing in the cluster is pending or
//! launching:
//!
//! * **empty** nodes are deleted;
//! * **deletion**: a node whose pods all fit in the free room of the nodes that stay is
//!   deleted, cheapest disruption (fewest pods) first;
//! * **replacement**: a node whose pods fit on one instance type strictly cheaper than it is
//!   replaced — the new node is launched, and the old one deleted once the new one is ready.
//!
//! Pods on a deleted node are evicted and scheduled again (they start again where they
//! land), as on a real cluster. Edge sites have no NodePool: their nodes are fixed.

use std::collections::HashMap;

use crate::act::Action;
use crate::decide::{Decision, Reason};
use crate::observe::{ClusterKind, ClusterView, NodeView, PoolView};

use super::autoscaler::{PodRequest, pack};

const LABEL: &str = "baseline:karpenter";

/// Share of a NodePool's nodes consolidation may disrupt at once (`budgets: - nodes: 10%`).
pub const BUDGET: f64 = 0.1;

/// A NodeClaim being packed: the pods it holds and the instance types (pools) still able to
/// hold them all.
#[derive(Debug, Clone)]
struct Claim {
    cpu: f64,
    memory_gib: f64,
    types: Vec<usize>,
}

/// A replacement under way: a node of `old` is deleted once a node of `new` is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Replacement {
    old: usize,
    new: usize,
    /// Ready nodes of `new` when it was launched: the replacement has arrived when there are more.
    new_ready_before: u32,
}

/// Karpenter for every cloud cluster.
#[derive(Debug, Default)]
pub struct Karpenter {
    replacing: HashMap<usize, Vec<Replacement>>,
}

/// Whether an instance type holds a claim's pods.
fn holds(pool: &PoolView, cpu: f64, memory_gib: f64) -> bool {
    pool.offering.vcpu + 1e-9 >= cpu && pool.offering.memory_gib + 1e-9 >= memory_gib
}

fn cheapest(pools: &[PoolView], types: &[usize], cpu: f64, memory_gib: f64) -> Option<usize> {
    types.iter().copied().filter(|&p| holds(&pools[p], cpu, memory_gib)).min_by(|&a, &b| {
        pools[a].offering.hourly_price.total_cmp(&pools[b].offering.hourly_price).then(a.cmp(&b))
    })
}

/// Launches for `pods`: per pool, how many nodes. `room[p]` is how many more nodes pool `p`
/// may have (consumed).
pub fn launches(pools: &[PoolView], pods: &[PodRequest], room: &mut [u32]) -> Vec<u32> {
    let mut sorted = pods.to_vec();
    sorted.sort_by(|a, b| b.cpu.total_cmp(&a.cpu).then(b.memory_gib.total_cmp(&a.memory_gib)));
    let mut claims: Vec<Claim> = Vec::new();
    let mut count = vec![0u32; pools.len()];
    for pod in sorted {
        let fits = claims.iter_mut().find_map(|claim| {
            let (cpu, gib) = (claim.cpu + pod.cpu, claim.memory_gib + pod.memory_gib);
            let types: Vec<usize> =
                claim.types.iter().copied().filter(|&p| holds(&pools[p], cpu, gib)).collect();
            (!types.is_empty()).then(|| {
                claim.cpu = cpu;
                claim.memory_gib = gib;
                claim.types = types;
            })
        });
        if fits.is_some() {
            continue;
        }
        let types: Vec<usize> =
            (0..pools.len()).filter(|&p| room[p] > 0 && holds(&pools[p], pod.cpu, pod.memory_gib)).collect();
        if !types.is_empty() {
            claims.push(Claim { cpu: pod.cpu, memory_gib: pod.memory_gib, types });
        }
    }
    // Launch: the cheapest type that holds each claim and still has room; a claim no type
    // has room for waits (its pods stay pending, as behind a NodePool's limits).
    for claim in claims {
        let open: Vec<usize> = claim.types.iter().copied().filter(|&p| room[p] > 0).collect();
        if let Some(p) = cheapest(pools, &open, claim.cpu, claim.memory_gib) {
            room[p] -= 1;
            count[p] += 1;
        }
    }
    count
}

/// `count` nodes of a cluster's pool to launch.
fn request(cluster: &ClusterView, pool: usize, count: u32) -> Action {
    Action::RequestNodes {
        cluster: cluster.name.clone(),
        offering: cluster.pools[pool].offering.name.clone(),
        count,
    }
}

/// `count` nodes of a cluster's pool to delete.
fn release(cluster: &ClusterView, pool: usize, count: u32) -> Action {
    Action::ReleaseNodes {
        cluster: cluster.name.clone(),
        offering: cluster.pools[pool].offering.name.clone(),
        count,
    }
}

fn decision(action: Action, summary: String) -> Decision {
    Decision { action, reason: Reason { summary, plugins: vec![LABEL.into()], ..Reason::default() } }
}

impl Karpenter {
    /// Node launches and deletions for cloud cluster `c`, given the pods that cannot be
    /// scheduled there and its ready nodes.
    pub fn plan(
        &mut self,
        c: usize,
        cluster: &ClusterView,
        nodes: &[NodeView],
        unschedulable: &[PodRequest],
    ) -> Vec<Decision> {
        if cluster.kind == ClusterKind::Edge || !cluster.up {
            return Vec::new();
        }
        let pools = &cluster.pools;
        let mut decisions = self.finish_replacements(c, cluster);
        // Pods that fit on nodes already launching wait for them.
        let mut upcoming: Vec<(f64, f64)> = pools
            .iter()
            .flat_map(|p| {
                std::iter::repeat_n((p.offering.vcpu, p.offering.memory_gib), p.provisioning as usize)
            })
            .collect();
        let pods = pack(unschedulable, &mut upcoming);
        let mut room: Vec<u32> =
            pools.iter().map(|p| p.offering.max_nodes.saturating_sub(p.ready + p.provisioning)).collect();
        for (p, n) in launches(pools, &pods, &mut room).into_iter().enumerate().filter(|(_, n)| *n > 0) {
            decisions.push(decision(
                request(cluster, p, n),
                format!(
                    "karpenter: {} pending pods packed onto {n} × {}, the cheapest type that holds them",
                    pods.len(),
                    pools[p].offering.name
                ),
            ));
        }
        let launching = pools.iter().any(|p| p.provisioning > 0);
        if unschedulable.is_empty()
            && !launching
            && decisions.is_empty()
            && self.replacing.get(&c).is_none_or(Vec::is_empty)
        {
            decisions.extend(self.consolidate(c, cluster, nodes));
        }
        decisions
    }

    /// Deletes the old node of every replacement whose new node has arrived.
    fn finish_replacements(&mut self, c: usize, cluster: &ClusterView) -> Vec<Decision> {
        let Some(list) = self.replacing.get_mut(&c) else { return Vec::new() };
        let pools = &cluster.pools;
        let mut decisions = Vec::new();
        list.retain(|r| {
            let arrived = pools[r.new].ready > r.new_ready_before;
            let abandoned = pools[r.new].ready + pools[r.new].provisioning <= r.new_ready_before;
            if arrived && pools[r.old].ready > 0 {
                decisions.push(decision(
                    release(cluster, r.old, 1),
                    format!(
                        "karpenter: consolidation replaced a {} node with a cheaper {}; deleting the old one",
                        pools[r.old].offering.name, pools[r.new].offering.name
                    ),
                ));
            }
            !(arrived || abandoned)
        });
        decisions
    }

    fn consolidate(&mut self, c: usize, cluster: &ClusterView, nodes: &[NodeView]) -> Vec<Decision> {
        let pools = &cluster.pools;
        let budget = ((nodes.len() as f64 * BUDGET).ceil() as usize).max(1);
        let mut released = vec![0u32; pools.len()];
        let mut gone = vec![false; nodes.len()];
        let mut disrupted = 0;
        // Cheapest disruption first: fewest pods, then the priciest node (most saved).
        let mut order: Vec<usize> = (0..nodes.len()).collect();
        let price = |i: usize| pools[nodes[i].pool as usize].offering.hourly_price;
        order.sort_by(|&a, &b| {
            nodes[a].pods.cmp(&nodes[b].pods).then(price(b).total_cmp(&price(a))).then(a.cmp(&b))
        });
        let mut free: Vec<(f64, f64)> = nodes.iter().map(|n| (n.cpu_free, n.memory_free_gib)).collect();
        let mut replacement = None;
        for &i in &order {
            if disrupted >= budget {
                break;
            }
            let node = &nodes[i];
            let used = (node.cpu - node.cpu_free, node.memory_gib - node.memory_free_gib);
            if node.pods == 0 {
                gone[i] = true;
                released[node.pool as usize] += 1;
                disrupted += 1;
                continue;
            }
            // Its pods, as the node's requested total split evenly (pods of a node are few
            // and alike enough here): can the nodes that stay take them?
            let per_pod =
                PodRequest { cpu: used.0 / f64::from(node.pods), memory_gib: used.1 / f64::from(node.pods) };
            let pods = vec![per_pod; node.pods as usize];
            let mut bins: Vec<(f64, f64)> =
                (0..nodes.len()).filter(|&j| j != i && !gone[j]).map(|j| free[j]).collect();
            if pack(&pods, &mut bins).is_empty() {
                // Commit the room the evicted pods take.
                for (k, j) in (0..nodes.len()).filter(|&j| j != i && !gone[j]).enumerate() {
                    free[j] = bins[k];
                }
                gone[i] = true;
                released[node.pool as usize] += 1;
                disrupted += 1;
                continue;
            }
            if replacement.is_none() {
                let room = |p: usize| pools[p].offering.max_nodes > pools[p].ready + pools[p].provisioning;
                let cheaper = (0..pools.len())
                    .filter(|&p| room(p) && pools[p].offering.hourly_price + 1e-9 < price(i))
                    .filter(|&p| holds(&pools[p], used.0, used.1))
                    .min_by(|&a, &b| {
                        pools[a].offering.hourly_price.total_cmp(&pools[b].offering.hourly_price)
                    });
                if let Some(p) = cheaper {
                    replacement = Some(Replacement {
                        old: node.pool as usize,
                        new: p,
                        new_ready_before: pools[p].ready,
                    });
                    disrupted += 1;
                }
            }
        }
        let mut decisions: Vec<Decision> = released
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(p, &n)| {
                decision(
                    release(cluster, p, n),
                    format!(
                        "karpenter: consolidation deletes {n} × {}: empty, or its pods fit on the nodes that stay",
                        pools[p].offering.name
                    ),
                )
            })
            .collect();
        if let Some(r) = replacement {
            decisions.push(decision(
                request(cluster, r.new, 1),
                format!(
                    "karpenter: consolidation replaces a {} node with a cheaper {} that holds its pods",
                    pools[r.old].offering.name, pools[r.new].offering.name
                ),
            ));
            self.replacing.entry(c).or_default().push(r);
        }
        decisions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use foresight_sdk::Offering;

    fn pool(name: &str, vcpu: f64, gib: f64, price: f64, spot: bool, ready: u32) -> PoolView {
        PoolView {
            offering: Offering {
                name: name.into(),
                vcpu,
                memory_gib: gib,
                hourly_price: price,
                spot,
                max_nodes: 20,
                current_nodes: ready,
                lead_time_s: 240,
                ..Offering::default()
            },
            ready,
            provisioning: 0,
        }
    }

    /// The shipped scenarios' cloud pools: on-demand 4×16, spot 4×16, on-demand 16×32.
    fn cluster(ready: [u32; 3]) -> ClusterView {
        crate::baselines::autoscaler::tests::cluster(vec![
            pool("m-4x16", 4.0, 16.0, 0.19, false, ready[0]),
            pool("m-4x16-spot", 4.0, 16.0, 0.06, true, ready[1]),
            pool("c-16x32", 16.0, 32.0, 0.68, false, ready[2]),
        ])
    }

    fn pods(n: usize, cpu: f64, memory_gib: f64) -> Vec<PodRequest> {
        vec![PodRequest { cpu, memory_gib }; n]
    }

    fn node(pool: u32, cpu: f64, used: f64, pods: u32) -> NodeView {
        NodeView {
            pool,
            cpu,
            cpu_free: cpu - used,
            memory_gib: 4.0 * cpu,
            memory_free_gib: 4.0 * (cpu - used),
            pods,
            serving: Default::default(),
        }
    }

    #[test]
    fn pending_pods_are_packed_onto_the_fewest_nodes_of_the_cheapest_type_that_holds_them() {
        let c = cluster([0, 0, 0]);
        let mut room = vec![20; 3];
        // Three single-core pods fit a 4-core node: the spot one is cheapest.
        assert_eq!(launches(&c.pools, &pods(3, 1.0, 2.0), &mut room), vec![0, 1, 0]);
        // Ten pods: one claim grows to the 16-core type (the only one holding ten cores).
        let mut room = vec![20; 3];
        assert_eq!(launches(&c.pools, &pods(10, 1.0, 2.0), &mut room), vec![0, 0, 1]);
        // Without the large type, ten pods take three 4-core spot nodes.
        let mut room = vec![20, 20, 0];
        assert_eq!(launches(&c.pools, &pods(10, 1.0, 2.0), &mut room), vec![0, 3, 0]);
        // A full spot pool leaves the on-demand type.
        let mut room = vec![20, 0, 0];
        assert_eq!(launches(&c.pools, &pods(3, 1.0, 2.0), &mut room), vec![1, 0, 0]);
    }

    #[test]
    fn pods_that_fit_on_launching_nodes_wait_for_them() {
        let mut c = cluster([1, 0, 0]);
        c.pools[1].provisioning = 1;
        let mut k = Karpenter::default();
        assert!(k.plan(0, &c, &[], &pods(4, 1.0, 2.0)).is_empty());
        let d = k.plan(0, &c, &[], &pods(6, 1.0, 2.0));
        assert!(matches!(&d[..], [Decision { action: Action::RequestNodes { count: 1, .. }, .. }]), "{d:?}");
    }

    #[test]
    fn empty_and_underused_nodes_are_consolidated_within_the_budget() {
        let c = cluster([3, 0, 0]);
        // An empty node, one with a single core used and one half full: the first goes, and the
        // second's pod fits on the third; the budget (10 % of 3, at least 1) allows one at a time.
        let nodes = [node(0, 4.0, 0.0, 0), node(0, 4.0, 1.0, 1), node(0, 4.0, 2.0, 2)];
        let mut k = Karpenter::default();
        let d = k.plan(0, &c, &nodes, &[]);
        assert!(matches!(&d[..], [Decision { action: Action::ReleaseNodes { count: 1, .. }, .. }]), "{d:?}");
        // Nothing is consolidated while pods are pending.
        assert!(
            k.plan(0, &c, &nodes, &pods(1, 8.0, 1.0))
                .iter()
                .all(|d| matches!(d.action, Action::RequestNodes { .. }))
        );
    }

    #[test]
    fn a_node_that_a_cheaper_type_holds_is_replaced_then_deleted_when_the_new_one_is_ready() {
        // One on-demand node three-quarters full: nothing else to move its pods to, but a spot
        // node holds them for a third of the price.
        let mut c = cluster([1, 0, 0]);
        let nodes = [node(0, 4.0, 3.0, 3)];
        let mut k = Karpenter::default();
        let d = k.plan(0, &c, &nodes, &[]);
        assert!(
            matches!(&d[..], [Decision { action: Action::RequestNodes { offering, count: 1, .. }, .. }] if offering == "m-4x16-spot"),
            "{d:?}"
        );
        c.pools[1].provisioning = 1;
        assert!(k.plan(0, &c, &nodes, &[]).is_empty(), "the old node stays until the new one is ready");
        c.pools[1].provisioning = 0;
        c.pools[1].ready = 1;
        let d = k.plan(0, &c, &nodes, &[]);
        assert!(
            matches!(&d[..], [Decision { action: Action::ReleaseNodes { offering, count: 1, .. }, .. }] if offering == "m-4x16"),
            "{d:?}"
        );
    }
}
