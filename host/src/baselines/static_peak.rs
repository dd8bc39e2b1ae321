//! Capacity fixed at the peak: every cluster holds, all the time, the replicas the peak of the
//! demand routed to it needs at the HPA's target utilisation, on the cheapest on-demand nodes
//! that hold them. Each region is planned to its service's nearest home; an edge site keeps
//! the share of the peak its nodes hold (packed by CPU and memory) and the nearest cloud home
//! is sized for the rest. Requests follow the plan, and the capacity that serves: what a
//! cluster's missing replicas would have carried goes to the service's other homes.

use crate::act::Action;
use crate::backends::sim::Scenario;
use crate::decide::{Decision, Reason, replicas_at};
use crate::observe::{ClusterKind, Observation};

use super::autoscaler::{PodRequest, pack};
use super::hpa::HpaSpec;

const LABEL: &str = "baseline:static-peak";

/// The fixed plan.
#[derive(Debug, Clone, PartialEq)]
pub struct StaticPeak {
    /// Replicas per service and cluster.
    replicas: Vec<Vec<u32>>,
    /// Nodes per cluster and pool (cloud clusters; edge pools stay as they are).
    nodes: Vec<Vec<u32>>,
    homes: Vec<Vec<bool>>,
    /// Share of each region's requests per cluster, per service, as planned.
    weights: Vec<Vec<Vec<f64>>>,
}

/// Peak requests/s each cluster receives per service over the whole scenario when each region
/// `r` of service `s` sends the share `weights[s][r][c]` to cluster `c`.
pub fn routed_peaks(scenario: &Scenario, weights: &[Vec<Vec<f64>>]) -> Vec<Vec<f64>> {
    let mut peaks = vec![vec![0.0; scenario.clusters.len()]; scenario.services.len()];
    let mut at = vec![0.0; scenario.clusters.len()];
    for tick in 0..scenario.ticks() as i64 {
        let t = scenario.start + tick * i64::from(scenario.step_s);
        for s in 0..scenario.services.len() {
            at.iter_mut().for_each(|x| *x = 0.0);
            for (r, d) in scenario.demand(s, t).into_iter().enumerate() {
                for (x, w) in at.iter_mut().zip(&weights[s][r]) {
                    *x += d * w;
                }
            }
            for (p, a) in peaks[s].iter_mut().zip(&at) {
                *p = f64::max(*p, *a);
            }
        }
    }
    peaks
}

/// The nearest of the clusters `allowed` to region `r`.
fn nearest(scenario: &Scenario, r: usize, allowed: impl Fn(usize) -> bool) -> Option<usize> {
    (0..scenario.clusters.len())
        .filter(|&c| allowed(c))
        .min_by(|&a, &b| scenario.clusters[a].rtt_ms[r].total_cmp(&scenario.clusters[b].rtt_ms[r]))
}

impl StaticPeak {
    /// The plan for `scenario`, its peaks read off the whole run. Each region goes to its
    /// service's nearest home; where an edge site cannot hold the peak of everything sent to
    /// it, the share it cannot hold goes to the service's nearest cloud home, all the time.
    pub fn from_scenario(scenario: &Scenario) -> Self {
        let homes: Vec<Vec<bool>> =
            scenario.services.iter().map(|s| s.replicas.iter().map(|&n| n > 0).collect()).collect();
        let clusters = scenario.clusters.len();
        let mut weights: Vec<Vec<Vec<f64>>> = homes
            .iter()
            .map(|h| {
                (0..scenario.regions.len())
                    .map(|r| {
                        let mut row = vec![0.0; clusters];
                        if let Some(c) = nearest(scenario, r, |c| h[c]) {
                            row[c] = 1.0;
                        }
                        row
                    })
                    .collect()
            })
            .collect();
        let target = HpaSpec::default().target_utilisation;
        let peaks = routed_peaks(scenario, &weights);
        for (e, cluster) in scenario.clusters.iter().enumerate().filter(|(_, c)| c.kind == ClusterKind::Edge)
        {
            // An edge site holds what packs onto its nodes, CPU and memory both; the share of
            // every region sent there is scaled down by one factor until the peak packs, and
            // the rest goes to the nearest cloud home.
            let nodes: Vec<(f64, f64)> = cluster
                .pools
                .iter()
                .flat_map(|p| {
                    let o = &scenario.offerings[p.offering];
                    std::iter::repeat_n((o.vcpu, o.memory_gib), p.nodes as usize)
                })
                .collect();
            let packs = |keep: f64| {
                let pods: Vec<PodRequest> = (0..scenario.services.len())
                    .filter(|&s| peaks[s][e] > 0.0)
                    .flat_map(|s| {
                        let spec = &scenario.services[s];
                        let n =
                            replicas_at(keep * peaks[s][e], spec.service_ms, spec.cpu_per_replica, target)
                                .max(1);
                        std::iter::repeat_n(
                            PodRequest { cpu: spec.cpu_per_replica, memory_gib: spec.memory_gib_per_replica },
                            n as usize,
                        )
                    })
                    .collect();
                pack(&pods, &mut nodes.clone()).is_empty()
            };
            if packs(1.0) {
                continue;
            }
            let (mut lo, mut hi) = (0.0, 1.0);
            for _ in 0..30 {
                let mid = 0.5 * (lo + hi);
                if packs(mid) { lo = mid } else { hi = mid }
            }
            let keep = lo;
            for (rows, home) in weights.iter_mut().zip(&homes) {
                for (r, row) in rows.iter_mut().enumerate() {
                    if row[e] <= 0.0 {
                        continue;
                    }
                    let cloud =
                        nearest(scenario, r, |c| home[c] && scenario.clusters[c].kind == ClusterKind::Cloud);
                    if let Some(cloud) = cloud {
                        let moved = row[e] * (1.0 - keep);
                        row[e] -= moved;
                        row[cloud] += moved;
                    }
                }
            }
        }
        let peaks = routed_peaks(scenario, &weights);
        let replicas: Vec<Vec<u32>> = scenario
            .services
            .iter()
            .zip(&peaks)
            .zip(&homes)
            .map(|((spec, peak), home)| {
                peak.iter()
                    .zip(home)
                    .zip(&scenario.clusters)
                    .map(|((&rps, &h), cluster)| {
                        let most: f64 = cluster
                            .pools
                            .iter()
                            .map(|p| f64::from(p.max_nodes) * scenario.offerings[p.offering].vcpu)
                            .sum();
                        let n = replicas_at(rps, spec.service_ms, spec.cpu_per_replica, target).max(1);
                        if h { n.min((most / spec.cpu_per_replica).floor() as u32) } else { 0 }
                    })
                    .collect()
            })
            .collect();
        let nodes = scenario
            .clusters
            .iter()
            .enumerate()
            .map(|(c, cluster)| {
                let mut counts: Vec<u32> = cluster.pools.iter().map(|p| p.nodes).collect();
                if cluster.kind == ClusterKind::Edge {
                    return counts;
                }
                let pods: Vec<PodRequest> = scenario
                    .services
                    .iter()
                    .zip(&replicas)
                    .flat_map(|(spec, r)| {
                        std::iter::repeat_n(
                            PodRequest { cpu: spec.cpu_per_replica, memory_gib: spec.memory_gib_per_replica },
                            r[c] as usize,
                        )
                    })
                    .collect();
                // The cheapest on-demand pool per core that holds the largest pod.
                let largest =
                    pods.iter().fold((0.0f64, 0.0f64), |a, p| (a.0.max(p.cpu), a.1.max(p.memory_gib)));
                let Some(pool) = (0..cluster.pools.len())
                    .filter(|&p| {
                        let o = &scenario.offerings[cluster.pools[p].offering];
                        !o.spot && o.vcpu >= largest.0 && o.memory_gib >= largest.1
                    })
                    .min_by(|&a, &b| {
                        let per_core = |p: usize| {
                            let o = &scenario.offerings[cluster.pools[p].offering];
                            o.hourly_price / o.vcpu
                        };
                        per_core(a).total_cmp(&per_core(b))
                    })
                else {
                    return counts;
                };
                let o = &scenario.offerings[cluster.pools[pool].offering];
                let mut needed = 0;
                let mut left = pods;
                while !left.is_empty() && needed < cluster.pools[pool].max_nodes {
                    let mut bins = vec![(o.vcpu, o.memory_gib)];
                    left = pack(&left, &mut bins);
                    needed += 1;
                }
                counts.iter_mut().for_each(|n| *n = 0);
                counts[pool] = needed;
                counts
            })
            .collect();
        Self { replicas, nodes, homes, weights }
    }

    /// Routing as planned, following the capacity that serves: a cluster with fewer ready
    /// replicas than planned (pods that could not start, a site that is down) keeps only the
    /// share its ready replicas carry, and the rest goes to the service's other homes that are
    /// up, in proportion to their ready replicas (to the nearest home up when none is ready).
    pub fn routing(&self, o: &Observation) -> Vec<Decision> {
        let mut decisions = Vec::new();
        for (s, service) in o.services.iter().enumerate() {
            let ready: Vec<f64> = (0..o.clusters.len())
                .map(|c| {
                    let up = o.clusters[c].up && self.homes[s][c];
                    if up { f64::from(service.placements[c].ready) * service.cpu_per_replica } else { 0.0 }
                })
                .collect();
            for (r, region) in o.regions.iter().enumerate() {
                let mut row = self.weights[s][r].clone();
                let mut moved = 0.0;
                for c in 0..row.len() {
                    let planned = f64::from(self.replicas[s][c]) * service.cpu_per_replica;
                    let carried = if planned > 0.0 { (ready[c] / planned).min(1.0) } else { 0.0 };
                    moved += row[c] * (1.0 - carried);
                    row[c] *= carried;
                }
                if moved > 0.0 {
                    let total: f64 = ready.iter().sum();
                    if total > 0.0 {
                        row.iter_mut().zip(&ready).for_each(|(w, x)| *w += moved * x / total);
                    } else if let Some(h) = (0..o.clusters.len())
                        .filter(|&c| self.homes[s][c] && o.clusters[c].up)
                        .min_by(|&a, &b| o.clusters[a].rtt_ms[r].total_cmp(&o.clusters[b].rtt_ms[r]))
                    {
                        row[h] += moved;
                    }
                }
                let total: f64 = row.iter().sum();
                if total <= 0.0 {
                    continue;
                }
                row.iter_mut().for_each(|w| *w /= total);
                let same = row.iter().zip(&service.routing[r]).all(|(a, b)| (a - b).abs() < 0.02);
                let stale = service.routing[r].iter().zip(&o.clusters).any(|(w, c)| *w > 0.0 && !c.up);
                if same && !stale {
                    continue;
                }
                decisions.push(Decision {
                    action: crate::decide::routing_action(o, s, r, &row),
                    reason: Reason {
                        summary: format!(
                            "static-peak: {region}'s {} requests as planned for the peak, moved off capacity that is not serving",
                            service.name
                        ),
                        plugins: vec![LABEL.into()],
                        ..Reason::default()
                    },
                });
            }
        }
        decisions
    }

    /// Replica decisions for every deployment not at its fixed count.
    pub fn replicas(&self, o: &Observation) -> Vec<Decision> {
        let mut decisions = Vec::new();
        for (s, service) in o.services.iter().enumerate() {
            for (c, cluster) in o.clusters.iter().enumerate() {
                let p = &service.placements[c];
                let want = self.replicas[s][c];
                if p.total() == want || !cluster.up {
                    continue;
                }
                decisions.push(Decision {
                    action: Action::SetReplicas {
                        service: service.name.clone(),
                        cluster: cluster.name.clone(),
                        replicas: want,
                    },
                    reason: Reason {
                        summary: format!(
                            "static-peak: {} in {} fixed at {want} replicas for its peak",
                            service.name, cluster.name
                        ),
                        plugins: vec![LABEL.into()],
                        ..Reason::default()
                    },
                });
            }
        }
        decisions
    }

    /// Node decisions for every cloud pool not at its fixed count.
    pub fn nodes(&self, o: &Observation) -> Vec<Decision> {
        let mut decisions = Vec::new();
        for (c, cluster) in o.clusters.iter().enumerate() {
            if cluster.kind == ClusterKind::Edge || !cluster.up {
                continue;
            }
            // Old nodes go only once the new ones serve, so the pods on them have somewhere to go.
            let arrived = cluster.pools.iter().zip(&self.nodes[c]).all(|(pool, &want)| pool.ready >= want);
            for (p, pool) in cluster.pools.iter().enumerate() {
                let (have, want) = (pool.ready + pool.provisioning, self.nodes[c][p]);
                if have > want && !arrived {
                    continue;
                }
                let action = if want > have {
                    Action::RequestNodes {
                        cluster: cluster.name.clone(),
                        offering: pool.offering.name.clone(),
                        count: want - have,
                    }
                } else if have > want {
                    Action::ReleaseNodes {
                        cluster: cluster.name.clone(),
                        offering: pool.offering.name.clone(),
                        count: have - want,
                    }
                } else {
                    continue;
                };
                decisions.push(Decision {
                    action,
                    reason: Reason {
                        summary: format!(
                            "static-peak: {} holds {want} × {} for the peak",
                            cluster.name, pool.offering.name
                        ),
                        plugins: vec![LABEL.into()],
                        ..Reason::default()
                    },
                });
            }
        }
        decisions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::sim::Simulator;
    use crate::backends::sim::tests::Fixture;

    #[test]
    fn the_plan_holds_the_peak_at_the_target_on_the_cheapest_on_demand_nodes() {
        let scenario = Fixture::new(100.0).scenario("").expect("scenario");
        // Flat demand, every region to the one home (the cloud): its peak is the total.
        let total: f64 = scenario.demand(0, scenario.start).iter().sum();
        let plan = StaticPeak::from_scenario(&scenario);
        // 10 ms per request at 50 %: total / 50 single-core replicas, four to a 4-core node.
        let replicas = (total * 0.010 / 0.5).ceil() as u32;
        assert_eq!(plan.replicas[0], vec![0, replicas]);
        assert_eq!(plan.nodes[1], vec![replicas.div_ceil(4).min(4), 0]);
        let o = Simulator::from_scenario(scenario).snapshot();
        let d = plan.replicas(&o);
        assert!(
            matches!(&d[..], [Decision { action: Action::SetReplicas { replicas: n, .. }, .. }] if *n == replicas),
            "{d:?}"
        );
    }
}
