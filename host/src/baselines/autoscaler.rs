//! Node provisioning as the Kubernetes cluster-autoscaler does it (its FAQ and flag defaults):
//!
//! * every scan (10 s) it looks for pods that cannot be scheduled; pods that fit on nodes
//!   already on their way do not count;
//! * for each node group that can grow it estimates, by bin-packing, how many nodes the pods
//!   need, and the **least-waste** expander picks the group that leaves the least idle CPU and
//!   memory (their fractions summed);
//! * a node whose pods request less than 50 % of its CPU and of its memory, and whose pods fit
//!   elsewhere, is unneeded; after 10 minutes unneeded it is removed — empty nodes up to 10 at
//!   once, others one per scan — but not within 10 minutes of a scale-up.
//!
//! Edge pools are fixed: no group there can grow or shrink.

use std::collections::{HashMap, VecDeque};

use crate::act::Action;
use crate::decide::{Decision, Reason};
use crate::observe::{ClusterKind, ClusterView, NodeView};

/// Seconds between scans (`--scan-interval`).
pub const SCAN_INTERVAL_S: u32 = 10;
/// `--scale-down-utilization-threshold`.
pub const SCALE_DOWN_UTILISATION: f64 = 0.5;
/// `--scale-down-unneeded-time`, seconds.
pub const UNNEEDED_TIME_S: i64 = 600;
/// `--scale-down-delay-after-add`, seconds.
pub const DELAY_AFTER_ADD_S: i64 = 600;
/// `--max-empty-bulk-delete`.
pub const MAX_EMPTY_BULK_DELETE: u32 = 10;

/// A pod's requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PodRequest {
    /// Cores.
    pub cpu: f64,
    /// GiB.
    pub memory_gib: f64,
}

/// Packs pods, largest first, onto bins of free (cpu, memory), first fit; returns the pods
/// that did not fit. Bins are consumed.
pub fn pack(pods: &[PodRequest], bins: &mut [(f64, f64)]) -> Vec<PodRequest> {
    let mut sorted = pods.to_vec();
    sorted.sort_by(|a, b| b.cpu.total_cmp(&a.cpu).then(b.memory_gib.total_cmp(&a.memory_gib)));
    let mut left = Vec::new();
    for pod in sorted {
        match bins.iter_mut().find(|(c, m)| *c + 1e-9 >= pod.cpu && *m + 1e-9 >= pod.memory_gib) {
            Some(bin) => {
                bin.0 -= pod.cpu;
                bin.1 -= pod.memory_gib;
            }
            None => left.push(pod),
        }
    }
    left
}

/// One node group's answer to the pending pods: nodes to add and the waste they leave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Expansion {
    /// Pool index.
    pub pool: usize,
    /// Nodes to add.
    pub nodes: u32,
    /// Idle CPU fraction plus idle memory fraction of the new nodes once the pods are on them.
    pub waste: f64,
    /// Pods the new nodes take.
    pub pods: usize,
}

/// The least-waste expander's choice among the groups of a cluster, or `None` when no group
/// can take any of the pods.
pub fn least_waste(cluster: &ClusterView, pods: &[PodRequest]) -> Option<Expansion> {
    let mut best: Option<Expansion> = None;
    for (p, pool) in cluster.pools.iter().enumerate() {
        let room = pool.offering.max_nodes.saturating_sub(pool.ready + pool.provisioning);
        let (vcpu, gib) = (pool.offering.vcpu, pool.offering.memory_gib);
        if room == 0 || vcpu <= 0.0 {
            continue;
        }
        // Estimate by packing onto as many fresh nodes as the pods need, within the room.
        let mut bins: Vec<(f64, f64)> = Vec::new();
        let mut taken = 0;
        let (mut cpu, mut mem) = (0.0, 0.0);
        for pod in sorted_desc(pods) {
            if pod.cpu > vcpu + 1e-9 || pod.memory_gib > gib + 1e-9 {
                continue;
            }
            let slot =
                match bins.iter().position(|(c, m)| *c + 1e-9 >= pod.cpu && *m + 1e-9 >= pod.memory_gib) {
                    Some(i) => i,
                    None if (bins.len() as u32) < room => {
                        bins.push((vcpu, gib));
                        bins.len() - 1
                    }
                    None => continue,
                };
            bins[slot].0 -= pod.cpu;
            bins[slot].1 -= pod.memory_gib;
            taken += 1;
            cpu += pod.cpu;
            mem += pod.memory_gib;
        }
        if taken == 0 {
            continue;
        }
        let n = bins.len() as f64;
        let waste = (n * vcpu - cpu) / (n * vcpu) + (n * gib - mem) / (n * gib);
        let option = Expansion { pool: p, nodes: bins.len() as u32, waste, pods: taken };
        if best.is_none_or(|b| waste < b.waste - 1e-12) {
            best = Some(option);
        }
    }
    best
}

fn sorted_desc(pods: &[PodRequest]) -> Vec<PodRequest> {
    let mut sorted = pods.to_vec();
    sorted.sort_by(|a, b| b.cpu.total_cmp(&a.cpu).then(b.memory_gib.total_cmp(&a.memory_gib)));
    sorted
}

/// Whether a node is unneeded: under the threshold in CPU and memory, and its pods fit in the
/// free room of the other nodes (bins, consumed when it is).
fn unneeded(node: &NodeView, others_free: &mut (f64, f64)) -> bool {
    let cpu_used = node.cpu - node.cpu_free;
    let mem_used = node.memory_gib - node.memory_free_gib;
    let under =
        cpu_used < SCALE_DOWN_UTILISATION * node.cpu && mem_used < SCALE_DOWN_UTILISATION * node.memory_gib;
    if !under || cpu_used > others_free.0 + 1e-9 || mem_used > others_free.1 + 1e-9 {
        return false;
    }
    others_free.0 -= cpu_used;
    others_free.1 -= mem_used;
    true
}

/// The autoscaler of every cloud cluster, with the timers scale-down needs.
#[derive(Debug, Default)]
pub struct ClusterAutoscaler {
    /// Per (cluster, pool): how many nodes were unneeded at each scan, newest last.
    unneeded: HashMap<(usize, usize), VecDeque<(i64, u32)>>,
    /// Per cluster: when it last grew.
    last_add: HashMap<usize, i64>,
}

impl ClusterAutoscaler {
    /// Node requests and releases for cluster `c` at `now`, given the pods that cannot be
    /// scheduled there and its ready nodes. `scans` scans run in one call (a step spans
    /// several scan intervals).
    pub fn plan(
        &mut self,
        now: i64,
        c: usize,
        cluster: &ClusterView,
        nodes: &[NodeView],
        unschedulable: &[PodRequest],
        scans: u32,
    ) -> Vec<Decision> {
        if cluster.kind == ClusterKind::Edge || !cluster.up {
            return Vec::new();
        }
        let mut decisions = Vec::new();
        // Pods that fit on nodes already on their way are not waited for twice.
        let mut upcoming: Vec<(f64, f64)> = cluster
            .pools
            .iter()
            .flat_map(|p| {
                std::iter::repeat_n((p.offering.vcpu, p.offering.memory_gib), p.provisioning as usize)
            })
            .collect();
        let mut pods = pack(unschedulable, &mut upcoming);
        let mut pools = cluster.pools.clone();
        for _ in 0..scans {
            if pods.is_empty() {
                break;
            }
            let Some(choice) = least_waste(&ClusterView { pools: pools.clone(), ..cluster.clone() }, &pods)
            else {
                break;
            };
            let pool = &mut pools[choice.pool];
            pool.provisioning += choice.nodes;
            let mut bins = vec![(pool.offering.vcpu, pool.offering.memory_gib); choice.nodes as usize];
            pods = pack(&pods, &mut bins);
            decisions.push(Decision {
                action: Action::RequestNodes {
                    cluster: cluster.name.clone(),
                    offering: pool.offering.name.clone(),
                    count: choice.nodes,
                },
                reason: Reason {
                    summary: format!(
                        "cluster-autoscaler: {} unschedulable pods; least-waste expander picked {} × {} (waste {:.2})",
                        choice.pods, choice.nodes, pool.offering.name, choice.waste
                    ),
                    plugins: vec!["baseline:cluster-autoscaler".into()],
                    ..Reason::default()
                },
            });
            self.last_add.insert(c, now);
        }
        if !decisions.is_empty() || !unschedulable.is_empty() {
            // A cluster that is growing, or has pods waiting, does not shrink.
            self.unneeded.retain(|&(cc, _), _| cc != c);
            return decisions;
        }
        decisions.extend(self.scale_down(now, c, cluster, nodes, scans));
        decisions
    }

    fn scale_down(
        &mut self,
        now: i64,
        c: usize,
        cluster: &ClusterView,
        nodes: &[NodeView],
        scans: u32,
    ) -> Vec<Decision> {
        let total_free = nodes.iter().fold((0.0, 0.0), |a, n| (a.0 + n.cpu_free, a.1 + n.memory_free_gib));
        // Emptiest first, as the autoscaler (and the backend's release) prefers them.
        let mut order: Vec<&NodeView> = nodes.iter().collect();
        order.sort_by(|a, b| (a.cpu - a.cpu_free).total_cmp(&(b.cpu - b.cpu_free)));
        let mut count = vec![0u32; cluster.pools.len()];
        let mut empty = vec![0u32; cluster.pools.len()];
        let mut free = total_free;
        for node in order {
            // Its own free room is not somewhere else to go.
            let mut others = (free.0 - node.cpu_free, free.1 - node.memory_free_gib);
            if unneeded(node, &mut others) {
                free = (others.0, others.1);
                count[node.pool as usize] += 1;
                if node.pods == 0 {
                    empty[node.pool as usize] += 1;
                }
            }
        }
        let recently_added = self.last_add.get(&c).is_some_and(|&t| now - t < DELAY_AFTER_ADD_S);
        let mut decisions = Vec::new();
        for (p, pool) in cluster.pools.iter().enumerate() {
            let history = self.unneeded.entry((c, p)).or_default();
            history.push_back((now, count[p]));
            while history.len() > 1 && history[1].0 <= now - UNNEEDED_TIME_S {
                history.pop_front();
            }
            // Nodes unneeded at every scan of the last ten minutes.
            let observed_long_enough = history.front().is_some_and(|&(t, _)| t <= now - UNNEEDED_TIME_S);
            if !observed_long_enough || recently_added {
                continue;
            }
            let steady = history.iter().map(|&(_, n)| n).min().unwrap_or(0);
            let empties = empty[p].min(steady).min(MAX_EMPTY_BULK_DELETE);
            let others = (steady - empties).min(scans);
            let release = (empties + others).min(pool.ready);
            if release == 0 {
                continue;
            }
            decisions.push(Decision {
                action: Action::ReleaseNodes {
                    cluster: cluster.name.clone(),
                    offering: pool.offering.name.clone(),
                    count: release,
                },
                reason: Reason {
                    summary: format!(
                        "cluster-autoscaler: {release} × {} under {:.0} % requested for {} min",
                        pool.offering.name,
                        SCALE_DOWN_UTILISATION * 100.0,
                        UNNEEDED_TIME_S / 60
                    ),
                    plugins: vec!["baseline:cluster-autoscaler".into()],
                    ..Reason::default()
                },
            });
            // The released nodes' timers start again.
            history.clear();
        }
        decisions
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::observe::PoolView;
    use foresight_sdk::Offering;

    fn pool(name: &str, vcpu: f64, gib: f64, ready: u32, max: u32) -> PoolView {
        PoolView {
            offering: Offering {
                name: name.into(),
                vcpu,
                memory_gib: gib,
                hourly_price: 0.1 * vcpu,
                max_nodes: max,
                current_nodes: ready,
                lead_time_s: 240,
                ..Offering::default()
            },
            ready,
            provisioning: 0,
        }
    }

    pub(crate) fn cluster(pools: Vec<PoolView>) -> ClusterView {
        ClusterView {
            name: "cloud".into(),
            kind: ClusterKind::Cloud,
            up: true,
            rtt_ms: vec![],
            peer_rtt_ms: vec![],
            pools,
            cpu_capacity: 0.0,
            cpu_allocated: 0.0,
            pending_pods: 0,
        }
    }

    fn pods(n: usize, cpu: f64, memory_gib: f64) -> Vec<PodRequest> {
        vec![PodRequest { cpu, memory_gib }; n]
    }

    #[test]
    fn least_waste_picks_the_group_left_least_idle() {
        // Six 1-core, 2-GiB pods: two 4×16 nodes leave (8−6)/8 + (32−12)/32 = 0.875 idle; one
        // 16×32 node leaves (16−6)/16 + (32−12)/32 = 1.25; one 8×16 node, 0.25 + 0.25 = 0.5.
        let c = cluster(vec![
            pool("m4", 4.0, 16.0, 0, 10),
            pool("c16", 16.0, 32.0, 0, 10),
            pool("e8", 8.0, 16.0, 0, 10),
        ]);
        let choice = least_waste(&c, &pods(6, 1.0, 2.0)).unwrap();
        assert_eq!((choice.pool, choice.nodes, choice.pods), (2, 1, 6));
        assert!((choice.waste - 0.5).abs() < 1e-12);
        let m4 = least_waste(&cluster(vec![pool("m4", 4.0, 16.0, 0, 10)]), &pods(6, 1.0, 2.0)).unwrap();
        assert_eq!(m4.nodes, 2);
        assert!((m4.waste - 0.875).abs() < 1e-12);
    }

    #[test]
    fn a_full_group_and_a_pod_too_big_are_passed_over() {
        let c = cluster(vec![pool("full", 8.0, 16.0, 3, 3), pool("small", 2.0, 4.0, 0, 10)]);
        assert_eq!(least_waste(&c, &pods(1, 4.0, 2.0)), None);
    }

    #[test]
    fn pods_that_fit_on_upcoming_nodes_ask_for_nothing() {
        let mut c = cluster(vec![pool("m4", 4.0, 16.0, 1, 10)]);
        c.pools[0].provisioning = 1;
        let mut ca = ClusterAutoscaler::default();
        assert!(ca.plan(0, 0, &c, &[], &pods(4, 1.0, 2.0), 6).is_empty());
        // Eight pods: four wait for the upcoming node, four need one more.
        let d = ca.plan(0, 0, &c, &[], &pods(8, 1.0, 2.0), 6);
        assert_eq!(d.len(), 1);
        assert!(matches!(&d[0].action, Action::RequestNodes { count: 1, .. }));
    }

    fn node(cpu_used: f64, pods: u32) -> NodeView {
        NodeView {
            pool: 0,
            cpu: 4.0,
            cpu_free: 4.0 - cpu_used,
            memory_gib: 16.0,
            memory_free_gib: 16.0 - 2.0 * cpu_used,
            pods,
            serving: Default::default(),
        }
    }

    #[test]
    fn nodes_go_after_ten_minutes_unneeded_and_not_right_after_a_scale_up() {
        let c = cluster(vec![pool("m4", 4.0, 16.0, 3, 10)]);
        // One empty node, one at 25 %, one at 100 %. Either of the first two could go (the 25 %
        // one's pod fits on the empty one), not both: the pod needs somewhere to land.
        let nodes = [node(0.0, 0), node(1.0, 1), node(4.0, 4)];
        let mut ca = ClusterAutoscaler::default();
        for t in (0..600).step_by(60) {
            assert!(ca.plan(t, 0, &c, &nodes, &[], 6).is_empty(), "at {t} s not yet ten minutes");
        }
        let d = ca.plan(600, 0, &c, &nodes, &[], 6);
        assert!(matches!(&d[..], [Decision { action: Action::ReleaseNodes { count: 1, .. }, .. }]), "{d:?}");

        // After a scale-up the same nodes stay for ten minutes.
        let mut ca = ClusterAutoscaler::default();
        ca.plan(0, 0, &c, &nodes, &pods(1, 8.0, 1.0), 6);
        ca.plan(0, 0, &c, &nodes, &pods(5, 1.0, 1.0), 6);
        for t in (60..660).step_by(60) {
            assert!(ca.plan(t, 0, &c, &nodes, &[], 6).is_empty(), "at {t} s the delay after add holds");
        }
        assert!(!ca.plan(660, 0, &c, &nodes, &[], 6).is_empty());
    }

    #[test]
    fn a_node_above_half_requested_stays() {
        let c = cluster(vec![pool("m4", 4.0, 16.0, 2, 10)]);
        let nodes = [node(2.0, 2), node(0.5, 1)];
        let mut ca = ClusterAutoscaler::default();
        for t in (0..=1200).step_by(60) {
            let d = ca.plan(t, 0, &c, &nodes, &[], 6);
            assert!(d.iter().all(|d| matches!(d.action, Action::ReleaseNodes { count: 1, .. })));
        }
    }
}
